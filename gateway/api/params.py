"""Request bodies: form-encoded (what Twilio clients send) or JSON, bounded and strictly decoded.

Parsed by hand with `urllib.parse` rather than Starlette's multipart machinery: we accept one
small body type, and a malformed or oversized one must become a precise 400/413, never a 500.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

from gateway.api.errors import ApiError


def _too_large(limit: int) -> ApiError:
    return ApiError(21618, 413, f"The request body is larger than {limit} bytes.")


async def read_body(declared: str | None, chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The whole body from `chunks`, refused with 413 as soon as it passes `limit` bytes (or the
    Content-Length header `declared` says it will)."""
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(20001, 400, "The Content-Length header is not a number.")
        if int(declared) > limit:
            raise _too_large(limit)
    parts = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def parse_params(body: bytes, content_type: str) -> dict[str, list[str]]:
    """Parameters by name (a name may repeat, as MediaUrl does); ApiError 400 if malformed."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(20001, 400, "The request body is not valid UTF-8.") from None
    if media_type == "application/json":
        return _json_params(text)
    if media_type in ("application/x-www-form-urlencoded", ""):
        try:
            pairs = parse_qsl(
                text,
                keep_blank_values=True,
                strict_parsing=bool(text),
                errors="strict",
                max_num_fields=100,
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(20001, 400, f"The form-encoded body is malformed: {exc}.") from None
        params: dict[str, list[str]] = {}
        for name, value in pairs:
            params.setdefault(name, []).append(value)
        return params
    raise ApiError(
        20001,
        415,
        f"Unsupported Content-Type {media_type!r}: send application/x-www-form-urlencoded "
        "or application/json.",
    )


def _json_params(text: str) -> dict[str, list[str]]:
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ApiError(20001, 400, f"The JSON body is malformed: {exc.msg} at {exc.pos}.") from None
    if not isinstance(data, dict):
        raise ApiError(20001, 400, "The JSON body must be an object of parameters.")
    params: dict[str, list[str]] = {}
    for name, value in data.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, dict | list) or item is None:
                raise ApiError(20001, 400, f"Parameter {name!r} must be a string or number.")
            text_value = ("true" if item else "false") if isinstance(item, bool) else str(item)
            try:
                text_value.encode("utf-8")
            except UnicodeEncodeError:
                raise ApiError(
                    20001, 400, f"Parameter {name!r} is not valid Unicode (a lone surrogate)."
                ) from None
            params.setdefault(name, []).append(text_value)
    return params
