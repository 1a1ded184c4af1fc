"""The Messages resource: create and fetch, Twilio 2010-04-01 compatible.

Create validates, routes (normalising numbers and splitting the body) and only then stores: a
message is committed to the store before the 201 leaves, so an answered message survives a crash.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import structlog
from starlette.responses import JSONResponse

from gateway.api.context import ApiContext
from gateway.api.errors import ApiError, not_found
from gateway.api.params import parse_params, read_body
from gateway.api.serialize import message_json
from gateway.ids import MESSAGE, is_sid, new_ordered_sid
from gateway.queue_cap import QUEUE_OVERFLOW
from gateway.queue_cap import RETRY_AFTER as QUEUE_RETRY_AFTER
from gateway.routes import stored_route
from gateway.schedule import ScheduleError, parse_schedule
from gateway.validity import parse_validity_period
from routing.errors import RoutingError
from routing.plan import plan
from store.commands import Accept, Cancel
from store.errors import (
    AlreadyExists,
    NotCancelable,
    QueueFull,
    StoreError,
    UnknownAccount,
    UnknownMessage,
)
from store.models import Message, NewMessage

log = structlog.get_logger("gateway.api")

MAX_BODY_CHARACTERS = 1600

# Twilio parameters that would change delivery and that smsgw does not implement yet: refusing
# them is honest, ignoring them would send something the caller did not ask for.
_UNSUPPORTED = {
    "MediaUrl": (
        21620,
        "MediaUrl is not supported: smsgw sends SMS over SMPP, which carries "
        "no media. Send the text only.",
    ),
    "ContentSid": (21619, "ContentSid (content templates) is not supported; send Body instead."),
    "MessagingServiceSid": (21701, "MessagingServiceSid is not supported yet; send From instead."),
}


def _single(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _check_callback_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(21609, 400, f"The StatusCallback URL {url} is not a valid http(s) URL.")
    return url


def _new_message(
    account_sid: str, params: dict[str, list[str]], context: ApiContext, now: datetime
):
    for name, (code, text) in _UNSUPPORTED.items():
        if _single(params, name):
            raise ApiError(code, 400, text)
    to = _single(params, "To")
    if not to:
        raise ApiError(21604, 400, "A 'To' phone number is required.")
    from_ = _single(params, "From")
    if not from_:
        raise ApiError(21603, 400, "A 'From' phone number is required.")
    body = _single(params, "Body")
    if not body:
        raise ApiError(21602, 400, "Message body is required.")
    if "\x00" in body:
        # Refused rather than stored cut short: SQLite's JSON functions, through which the store
        # writes its batches, end text at a NUL — and no handset shows one anyway.
        raise ApiError(20001, 400, "The 'Body' contains a NUL character (U+0000).")
    if len(body) > MAX_BODY_CHARACTERS:
        raise ApiError(
            21617,
            400,
            f"The concatenated message body exceeds the {MAX_BODY_CHARACTERS} character limit "
            f"({len(body)} characters).",
        )
    callback = _single(params, "StatusCallback")
    callback = _check_callback_url(callback) if callback else None
    validity = _single(params, "ValidityPeriod")
    try:
        seconds = (
            parse_validity_period(validity)
            if validity is not None
            else context.validity.for_account(account_sid)
        )
    except ValueError as exc:
        raise ApiError(21624, 400, str(exc)) from None
    try:
        send_at = parse_schedule(_single(params, "ScheduleType"), _single(params, "SendAt"), now)
    except ScheduleError as exc:
        raise ApiError(exc.code, 400, exc.message) from None
    try:
        route = plan(context.routes, to=to, from_=from_, body=body)
    except RoutingError as exc:
        raise ApiError(exc.code, 400, exc.message) from None
    return NewMessage(
        route=stored_route(route),
        sid=new_ordered_sid(MESSAGE),
        account_sid=account_sid,
        from_addr=route.source.display,
        to_addr=route.destination.display,
        body=body,
        num_segments=route.text.num_segments,
        encoding=route.text.encoding,
        carrier=route.carrier,
        status_callback=callback,
        validity_until=(send_at or now) + timedelta(seconds=seconds),  # from when it may go
        send_at=send_at,
    )


STORE_RETRY_AFTER = "2"


def store_unavailable(exc: StoreError) -> ApiError:
    """The store could not commit (disk full, locked, read-only): nothing was accepted, and the
    caller may safely send the same request again shortly."""
    log.warning("message.not_stored", error=str(exc))
    return ApiError(
        20503,
        503,
        "The gateway cannot store messages right now (its database refused the write); "
        "nothing was accepted. Retry shortly.",
        headers={"Retry-After": STORE_RETRY_AFTER},
    )


async def create_message(
    context: ApiContext,
    account_sid: str,
    content_type: str,
    content_length: str | None,
    chunks: AsyncIterator[bytes],
) -> Message:
    """Validate, route and store one message; the caller answers 201 with `message_json`."""
    accept = await prepare_message(context, account_sid, content_type, content_length, chunks)
    try:
        await context.store.write(accept)
    except Exception as exc:
        ok, outcome = False, exc
    else:
        ok, outcome = True, None
    return accepted_message(context, accept, ok, outcome)


async def prepare_message(
    context: ApiContext,
    account_sid: str,
    content_type: str,
    content_length: str | None,
    chunks: AsyncIterator[bytes],
) -> Accept:
    """Create's first half: read, validate and route the request into the store's command (an
    ApiError for anything refused). `accepted_message` is the second, once it is written."""
    if not context.accepting:
        raise ApiError(
            20503,
            503,
            "The gateway is shutting down; retry shortly.",
            headers={"Retry-After": "5"},
        )
    body = await read_body(content_length, chunks, context.max_body_bytes)
    params = parse_params(body, content_type)
    now = context.clock()
    new = _new_message(account_sid, params, context, now)
    return Accept(new, now, context.queue_cap.for_account(account_sid))


def accepted_message(context: ApiContext, accept: Accept, ok: bool, outcome: object) -> Message:
    """Create's second half: the store's outcome of `accept` as the stored message, or as the
    error to answer (ApiError; AlreadyExists and UnknownAccount as they are)."""
    if not ok:
        if isinstance(outcome, (AlreadyExists, UnknownAccount)):
            raise outcome
        if isinstance(outcome, QueueFull):
            log.warning(
                "message.queue_full",
                account=accept.message.account_sid,
                unsent=outcome.unsent,
                cap=outcome.cap,
            )
            raise ApiError(
                QUEUE_OVERFLOW,
                429,
                f"Queue overflow: {outcome} Nothing was accepted.",
                headers={"Retry-After": QUEUE_RETRY_AFTER},
            ) from None
        if isinstance(outcome, StoreError):
            raise store_unavailable(outcome) from None
        assert isinstance(outcome, BaseException)
        raise outcome
    message = accept.message.stored(accept.now)
    log.info(
        "message.accepted",
        sid=message.sid,
        carrier=message.carrier,
        segments=message.num_segments,
        encoding=message.encoding,
    )
    context.on_accepted(message)
    return message


async def cancel_message(
    context: ApiContext,
    account_sid: str,
    sid: str,
    content_type: str,
    content_length: str | None,
    chunks: AsyncIterator[bytes],
) -> Message:
    """`POST …/Messages/{Sid}.json` with `Status=canceled`: cancel a scheduled message (and,
    beyond Twilio, a queued one not yet on a carrier)."""
    path = f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json"
    if not is_sid(sid, MESSAGE):
        raise not_found(path)
    body = await read_body(content_length, chunks, context.max_body_bytes)
    params = parse_params(body, content_type)
    status = _single(params, "Status")
    if status != "canceled":
        raise ApiError(
            20001, 400, "Only Status=canceled can be set on a message (it cancels a scheduled one)."
        )
    try:
        message = await context.store.write(Cancel(account_sid, sid, context.clock()))
    except UnknownMessage:
        raise not_found(path) from None
    except NotCancelable as exc:
        raise ApiError(30409, 400, str(exc)) from None
    except StoreError as exc:
        raise store_unavailable(exc) from None
    log.info("message.canceled", sid=sid)
    return message


async def fetch_message(context: ApiContext, account_sid: str, sid: str):
    if not is_sid(sid, MESSAGE):
        raise not_found(f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json")
    message = await context.store.get_message(account_sid, sid)
    if message is None:
        raise not_found(f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json")
    return JSONResponse(message_json(message))
