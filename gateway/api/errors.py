"""API errors: one exception type with Twilio's numeric code, mapped to a JSON body in one place."""

from __future__ import annotations

from starlette.responses import JSONResponse


class ApiError(Exception):
    """An error the client sees: HTTP `status`, Twilio `code`, and a message saying what to do."""

    def __init__(self, code: int, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.headers = headers

    def response(self) -> JSONResponse:
        return error_response(self.code, self.status, self.message, self.headers)


def error_payload(code: int, status: int, message: str) -> dict:
    """Twilio's error body."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def error_response(code: int, status: int, message: str, headers: dict | None = None):
    return JSONResponse(error_payload(code, status, message), status_code=status, headers=headers)


def not_found(what: str) -> ApiError:
    return ApiError(20404, 404, f"The requested resource {what} was not found")


def unauthorized() -> ApiError:
    return ApiError(
        20003,
        401,
        "Authenticate: use HTTP Basic auth with your AccountSid and AuthToken.",
        headers={"WWW-Authenticate": 'Basic realm="smsgw"'},
    )
