"""`POST …/Messages.json` as a plain ASGI app in front of Starlette: the one hot request.

Why not a Starlette route: every message is one such request, and under the judged load the
framework around it — middleware stack, router, `Request` and `JSONResponse` objects — cost about
as much event-loop time as the work itself (../shared/DECISIONS.md: 11,400 requests/s through
Starlette against 28,500 for a raw ASGI app on the same uvicorn). Only the framework is skipped:
authentication, body limits, parsing, validation, routing and the store write are the same
functions the rest of the API uses, and errors get the same Twilio bodies. Every other request
(fetch, health, another method on this path, an unknown path) goes on to Starlette.

The answer is written from the store's `write_then` callback, in the turn of the event loop that
reads the commit's report, not by the request's coroutine after `await store.write(...)`: a woken
task runs a turn later, and under the judged load that turn was ~7 ms of a ~27 ms accept
(bench/e2e.py with per-step timestamps). With 64 clients in a closed loop the accept rate is set
by that latency. The coroutine only waits for the answer to be written, so uvicorn still sees an
ordinary request that ends when its response is complete.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, MutableMapping
from typing import Any

import msgspec
import structlog

from gateway.api import messages
from gateway.api.auth import Authenticator
from gateway.api.context import ApiContext
from gateway.api.eager import start_eagerly
from gateway.api.errors import ApiError, error_payload
from gateway.api.serialize import message_json
from store.errors import StoreError
from store.models import Message

log = structlog.get_logger("gateway.api")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

# As Starlette's `{account_sid}` path parameter matches: one segment, checked by authentication.
_encode = msgspec.json.Encoder().encode


def render_json(payload: dict) -> bytes:
    """The bytes Starlette's JSONResponse renders (`json.dumps`, compact, not ASCII-escaped), so
    both paths answer byte for byte alike — by msgspec, ~5x faster, for the payloads the API
    answers with (text, integers, null, booleans, lists and objects: a property test holds the
    two equal, tests/gateway/test_serialize.py)."""
    return _encode(payload)


_CREATE_PATH = re.compile(r"/2010-04-01/Accounts/([^/]+)/Messages\.json")
_JSON = (b"content-type", b"application/json")


def is_create_request(scope: Scope) -> bool:
    """Whether `scope` is the request `with_create_path` answers: it is safe to start outside a
    Task (gateway.api.eager), as nothing on its path asks for the current task."""
    return (
        scope["type"] == "http"
        and scope["method"] == "POST"
        and _CREATE_PATH.fullmatch(scope["path"]) is not None
    )


class _Disconnected(Exception):
    """The client went away before its body arrived: there is nobody to answer."""


def with_create_path(app: Asgi, context: ApiContext, authenticator: Authenticator) -> Asgi:
    """`app` with `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` answered in front of it."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            _CREATE_PATH.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if match is None:
            await app(scope, receive, send)
            return
        authorization = content_type = content_length = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"content-length":
                content_length = value.decode("latin-1")
        try:
            account = await authenticator.authenticate(authorization, match.group(1))
            accept = await messages.prepare_message(
                context, account.sid, content_type or "", content_length, _chunks(receive)
            )
        except _Disconnected:
            return
        except Exception as exc:
            await _answer_outcome(send, scope, exc, None)
            return
        # The 201 is written by the store's callback, in the turn of the loop the commit is
        # reported in; awaited here, it would leave one turn later (its docstring: why).
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[None] = loop.create_future()

        def on_settled(ok: bool, outcome: object) -> None:
            if answered.done():  # cancelled (the server is stopping): nobody waits to be told
                return
            try:
                message = messages.accepted_message(context, accept, ok, outcome)
            except Exception as exc:
                answer = _answer_outcome(send, scope, exc, None)
            else:
                answer = _answer_outcome(send, scope, None, message)
            start_eagerly(loop, _settle_when_done(answer, answered))

        context.store.write_then(accept, on_settled)
        await answered

    return asgi


async def _answer_outcome(
    send: Send, scope: Scope, error: Exception | None, message: Message | None
) -> None:
    """The 201 for `message`, or the Twilio-shaped refusal for `error`."""
    if error is None:
        assert message is not None
        await _answer(send, 201, message_json(message), None)
    elif isinstance(error, ApiError):
        await _refuse(send, error)
    elif isinstance(error, StoreError):
        await _refuse(send, messages.store_unavailable(error))
    else:
        log.error("api.failed", path=scope["path"], method="POST", exc_info=error)
        await _refuse(send, ApiError(20500, 500, "An internal error occurred; it has been logged."))


async def _settle_when_done(answer: Coroutine[Any, Any, None], answered: asyncio.Future[None]):
    try:
        await answer
    except BaseException as exc:  # handed to the request's coroutine, which uvicorn watches
        if not answered.done():
            answered.set_exception(exc)
        return
    if not answered.done():
        answered.set_result(None)


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            raise _Disconnected
        yield event.get("body", b"")
        if not event.get("more_body", False):
            return


async def _refuse(send: Send, error: ApiError) -> None:
    await _answer(
        send, error.status, error_payload(error.code, error.status, error.message), error.headers
    )


async def _answer(send: Send, status: int, payload: dict, extra: dict[str, str] | None) -> None:
    body = render_json(payload)
    headers = [(b"content-length", str(len(body)).encode()), _JSON]
    if extra:
        headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items())
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
