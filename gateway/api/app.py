"""The HTTP API: routes, authentication, and where errors become Twilio bodies.

Creating a message is answered by `gateway.api.create_path` in front of Starlette (why: there);
everything else is a Starlette route here.
"""

from __future__ import annotations

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.accounts import AccountCache
from gateway.api import messages
from gateway.api.auth import Authenticator
from gateway.api.context import ApiContext
from gateway.api.create_path import Asgi, with_create_path
from gateway.api.errors import ApiError, error_response
from gateway.api.messages import store_unavailable
from gateway.api.serialize import message_json
from store.errors import StoreError

log = structlog.get_logger("gateway.api")

PREFIX = "/2010-04-01/Accounts/{account_sid}"


def create_app(context: ApiContext) -> Asgi:
    """The HTTP API: creating a message on its own fast path, everything else through Starlette."""
    authenticator = Authenticator(AccountCache(context.store.get_account))
    return with_create_path(_starlette_app(context, authenticator), context, authenticator)


def _starlette_app(context: ApiContext, authenticator: Authenticator) -> Starlette:

    async def authenticated(request: Request) -> str:
        account_sid = request.path_params["account_sid"]
        account = await authenticator.authenticate(
            request.headers.get("authorization"), account_sid
        )
        return account.sid

    async def messages_collection(request: Request):
        # Not reached in the daemon (`with_create_path` answers this request first); kept so the
        # Starlette app alone is the whole API, and other methods on the path get 405.
        account_sid = await authenticated(request)
        message = await messages.create_message(
            context,
            account_sid,
            request.headers.get("content-type", ""),
            request.headers.get("content-length"),
            request.stream(),
        )
        return JSONResponse(message_json(message), status_code=201)

    async def message_instance(request: Request):
        account_sid = await authenticated(request)
        return await messages.fetch_message(context, account_sid, request.path_params["sid"])

    async def message_update(request: Request):
        account_sid = await authenticated(request)
        message = await messages.cancel_message(
            context,
            account_sid,
            request.path_params["sid"],
            request.headers.get("content-type", ""),
            request.headers.get("content-length"),
            request.stream(),
        )
        return JSONResponse(message_json(message))

    async def health(request: Request):
        """200 while the gateway accepts and stores messages; 503 while it stops or while its
        store cannot commit (then `store` says why), so a load balancer sends traffic elsewhere."""
        error = context.store.write_error
        if not context.accepting:
            status = "stopping"
        elif error is not None:
            status = "degraded"
        else:
            status = "ok"
        body = {"status": status, "store": "ok" if error is None else f"cannot commit: {error}"}
        return JSONResponse(body, status_code=200 if status == "ok" else 503)

    async def store_error(request: Request, exc: StoreError):
        return store_unavailable(exc).response()

    async def api_error(request: Request, exc: ApiError):
        return exc.response()

    async def http_error(request: Request, exc: HTTPException):
        if exc.status_code == 404:
            return error_response(
                20404, 404, f"The requested resource {request.url.path} was not found"
            )
        if exc.status_code == 405:
            return error_response(
                20004, 405, f"Method {request.method} not allowed on {request.url.path}"
            )
        return error_response(20001, exc.status_code, str(exc.detail))

    async def internal_error(request: Request, exc: Exception):
        log.exception("api.failed", path=request.url.path, method=request.method)
        return error_response(20500, 500, "An internal error occurred; it has been logged.")

    return Starlette(
        routes=[
            Route(f"{PREFIX}/Messages.json", messages_collection, methods=["POST"]),
            Route(f"{PREFIX}/Messages/{{sid}}.json", message_instance, methods=["GET"]),
            Route(f"{PREFIX}/Messages/{{sid}}.json", message_update, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ],
        exception_handlers={
            ApiError: api_error,
            StoreError: store_error,
            HTTPException: http_error,
            Exception: internal_error,
        },
    )
