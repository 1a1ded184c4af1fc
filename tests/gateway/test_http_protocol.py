"""The API's HTTP protocol writes each answer in one piece (a real uvicorn server and socket)."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest
import uvicorn

from gateway.api import http_protocol
from gateway.api.http_protocol import CoalescingHttpToolsProtocol

pytestmark = pytest.mark.timeout(30)


class _CountingTransport:
    """Forwards to the real transport, counting the writes that reach it."""

    def __init__(self, real, writes: list[bytes]) -> None:
        self._real = real
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._real.write(data)

    def __getattr__(self, name):
        return getattr(self._real, name)


async def _app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    body = b'{"ok":true,"path":"' + scope["path"].encode() + b'"}'
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def _server(writes: list[bytes]):
    class Spied(CoalescingHttpToolsProtocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            coalescing = self.transport
            coalescing._transport = _CountingTransport(coalescing._transport, writes)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(_app, http=Spied, lifespan="off", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task


async def _exchange(port: int, request: bytes, until: bytes, count: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    data = b""
    while data.count(until) < count:
        chunk = await asyncio.wait_for(reader.read(65536), 5)
        if not chunk:
            break
        data += chunk
    writer.close()
    return data


def _get(path: str, extra: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n"


async def test_a_response_leaves_in_one_write_with_its_bytes_unchanged() -> None:
    writes: list[bytes] = []
    async with _server(writes) as port:
        data = await _exchange(port, _get("/a"), b'"/a"}', 1)
    assert data.startswith(b"HTTP/1.1 201 Created\r\n")
    assert data.endswith(b'\r\n\r\n{"ok":true,"path":"/a"}')
    assert writes == [data]  # status line, headers and body: one write


async def test_pipelined_requests_are_answered_in_order() -> None:
    writes: list[bytes] = []
    async with _server(writes) as port:
        data = await _exchange(port, _get("/1") + _get("/2") + _get("/3"), b"}", 3)
    paths = [part.split(b'"path":"')[1][:2] for part in data.split(b"HTTP/1.1 201")[1:]]
    assert paths == [b"/1", b"/2", b"/3"]
    assert b"".join(writes) == data


async def test_connection_close_gets_its_whole_answer_before_the_close() -> None:
    writes: list[bytes] = []
    async with _server(writes) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_get("/bye", b"Connection: close\r\n"))
        data = await asyncio.wait_for(reader.read(), 5)  # to EOF: the server closed
        writer.close()
    assert data.endswith(b'{"ok":true,"path":"/bye"}')
    assert b"connection: close" in data.lower()


class _Recording:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes | None]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing


async def test_close_writes_what_is_kept_first_and_nothing_is_written_after() -> None:
    real = _Recording()
    transport = http_protocol._CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"head")
    assert real.calls == []  # held for the body
    transport.write(b"body")
    assert real.calls == [("write", b"headbody")]  # at once, not a loop turn later
    transport.write(b"head2")
    transport.close()
    transport.write(b"late")  # after the close: dropped, as the real transport would
    await asyncio.sleep(0)
    assert real.calls == [("write", b"headbody"), ("write", b"head2"), ("close", None)]


async def test_a_write_with_nothing_after_it_goes_at_the_end_of_the_turn() -> None:
    real = _Recording()
    transport = http_protocol._CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"chunk")
    await asyncio.sleep(0)
    assert real.calls == [("write", b"chunk")]
