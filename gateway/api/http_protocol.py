"""uvicorn's httptools protocol, with each response written to the socket in one piece.

Why: uvicorn writes a response's status line and headers with one `transport.write` and its body
with another, and uvloop sends each at once — two `send` syscalls per answer, and two segments the
client reads one by one. On loopback a `send` that wakes the peer costs tens of microseconds, as
much as building the 201: under the judged load the header write alone was ~3 % of the event
loop's time (bench/e2e.py, py-spy `--native`: `UVStream__initiate_write` under
`RequestResponseCycle.send`).

So the transport the protocol is given keeps what is written during one turn of the event loop and
hands it to the real transport as one write at the end of that turn (as the SMPP connection does
with its PDUs). A response is still written before the loop next waits for I/O, and its bytes and
their order are unchanged; closing writes what is kept first. Everything else (flow control,
addresses, upgrades) goes to the real transport.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _CoalescingTransport:
    """A transport whose writes during one loop turn leave as one write."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        pending = self._pending
        if pending is None:
            self._pending = [data]
            self._loop.call_soon(self._flush)
        else:
            pending.append(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():  # gone: nobody to write to
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """`uvicorn.Config(http=CoalescingHttpToolsProtocol)`: answers in one write each."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        loop = asyncio.get_running_loop()
        super().connection_made(_CoalescingTransport(transport, loop))  # type: ignore[arg-type]
