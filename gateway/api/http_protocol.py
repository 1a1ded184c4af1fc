"""uvicorn's httptools protocol, with each response written to the socket in one piece.

Why: uvicorn writes a response's status line and headers with one `transport.write` and its body
with another, and uvloop sends each at once — two `send` syscalls per answer, and two segments the
client reads one by one. On loopback a `send` that wakes the peer costs tens of microseconds, as
much as building the 201: under the judged load the header write alone was ~3 % of the event
loop's time (bench/e2e.py, py-spy `--native`: `UVStream__initiate_write` under
`RequestResponseCycle.send`).

So the transport the protocol is given holds a write (a response's status line and headers) until
the next one (its body), and hands both to the real transport as one write, at once: the answer
is not delayed by a loop turn. A write with nothing after it in the same turn (a streamed body
still coming) goes at the end of that turn. Bytes and their order are unchanged; closing writes
what is held first. Everything else (flow control, addresses, upgrades) goes to the real
transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from gateway.api.eager import start_eagerly


class _CoalescingTransport:
    """A transport that holds a write until the next one (or the end of the loop turn) and sends
    both together: a response's headers leave with its body, at once."""

    __slots__ = ("_flush_scheduled", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._flush_scheduled = False

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:  # a response's first write (its headers): wait for the body
            self._held = bytes(data)
            if not self._flush_scheduled:  # a body that never comes this turn goes anyway
                self._flush_scheduled = True
                self._loop.call_soon(self._flush)
        else:  # the body: both go now, not a loop turn later
            self._held = None
            self._transport.write(held + data)

    def _flush(self) -> None:
        self._flush_scheduled = False
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():  # gone: nobody to write to
            self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """`uvicorn.Config(http=CoalescingHttpToolsProtocol)`: answers in one write each.

    Requests that `starts_eagerly(scope)` picks (none here; see `starting_eagerly`) are not given
    a Task when their headers are read, as uvicorn does, but run once their body is complete, at
    once, in that same turn of the loop (`gateway.api.eager`: why). The exceptions start as
    uvicorn starts them: a body past uvicorn's high-water mark (reading pauses until the app
    reads) and `Expect: 100-continue` (the client waits for the app's first read to send it).
    """

    starts_eagerly: Callable[[dict[str, Any]], bool] | None = None
    _waiting_for_body: tuple[RequestResponseCycle, Any] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        loop = asyncio.get_running_loop()
        super().connection_made(_CoalescingTransport(transport, loop))  # type: ignore[arg-type]

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        eager = self.starts_eagerly
        if eager is None or cycle.waiting_for_100_continue or not eager(cycle.scope):
            super()._start_asgi_task(cycle, app)
        elif cycle.more_body:  # its body is still coming: start when it is complete
            self._waiting_for_body = (cycle, app)
        else:
            self._start_now(cycle, app)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        waiting = self._waiting_for_body
        if waiting is not None and len(waiting[0].body) > HIGH_WATER_LIMIT:
            self._waiting_for_body = None  # reading paused: only the app's reads resume it
            super()._start_asgi_task(*waiting)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        waiting = self._waiting_for_body
        if waiting is not None and waiting[0] is self.cycle:
            self._waiting_for_body = None
            self._start_now(*waiting)

    def _start_now(self, cycle: RequestResponseCycle, app: Any) -> None:
        task = start_eagerly(self.loop, cycle.run_asgi(app))
        if task is not None:
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)


def starting_eagerly(
    starts_eagerly: Callable[[dict[str, Any]], bool],
) -> type[CoalescingHttpToolsProtocol]:
    """The protocol class for uvicorn that starts the requests `starts_eagerly` picks at once."""
    return type(
        "EagerCoalescingHttpToolsProtocol",
        (CoalescingHttpToolsProtocol,),
        {"starts_eagerly": staticmethod(starts_eagerly)},
    )
