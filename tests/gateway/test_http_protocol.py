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


def _server(writes: list[bytes]):
    class Spied(CoalescingHttpToolsProtocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            coalescing = self.transport
            coalescing._transport = _CountingTransport(coalescing._transport, writes)

    return _serving(_app, Spied)


@contextlib.asynccontextmanager
async def _serving(app, protocol):
    """A real uvicorn server on 127.0.0.1 with `protocol`; yields its port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=protocol, lifespan="off", log_config=None, access_log=False)
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


# -- requests started eagerly (gateway.api.eager) --------------------------------------------------


def _eager_app(started_in_task: list[tuple[str, bool]]):
    """Answers with the body it read; records whether each request started inside a Task."""

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        started_in_task.append((scope["path"], asyncio.current_task() is not None))
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body", False):
                break
        if scope["path"].startswith("/slow"):
            await asyncio.sleep(0.02)  # suspends past the first step, as a store write does
        answer = b"%d:" % len(body) + body[:16]
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"content-length", str(len(answer)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    return app


def _eager_server(started_in_task: list[tuple[str, bool]]):
    protocol = http_protocol.starting_eagerly(
        lambda scope: scope["path"].startswith(("/e", "/slow"))
    )
    return _serving(_eager_app(started_in_task), protocol)


def _post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body
    )  # fmt: skip


async def test_picked_requests_start_outside_a_task_and_others_as_uvicorn_starts_them() -> None:
    started: list[tuple[str, bool]] = []
    async with _eager_server(started) as port:
        await _exchange(port, _post("/e1", b"hello"), b"5:hello", 1)
        await _exchange(port, _post("/other", b"hi"), b"2:hi", 1)
    assert started == [("/e1", False), ("/other", True)]


async def test_a_body_that_arrives_in_pieces_is_read_whole_before_the_start() -> None:
    started: list[tuple[str, bool]] = []
    async with _eager_server(started) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = _post("/e-split", b"0123456789")
        writer.write(request[:-6])  # the headers and part of the body
        await writer.drain()
        await asyncio.sleep(0.05)
        assert started == []  # not started while its body is incomplete
        writer.write(request[-6:])
        data = b""
        while b"10:0123456789" not in data:
            data += await asyncio.wait_for(reader.read(65536), 5)
        writer.close()
    assert started == [("/e-split", False)]


async def test_a_body_past_the_high_water_mark_starts_as_a_task_and_is_read_whole() -> None:
    started: list[tuple[str, bool]] = []
    body = b"x" * (http_protocol.HIGH_WATER_LIMIT * 3)
    async with _eager_server(started) as port:
        data = await _exchange(port, _post("/e-big", body), b"xxxxxxxxxxxxxxxx", 1)
    assert f"{len(body)}:".encode() + b"x" * 16 in data
    assert started == [("/e-big", True)]  # reading paused: only the app's reads resume it


async def test_expect_100_continue_starts_as_a_task_so_the_client_is_told_to_go_on() -> None:
    started: list[tuple[str, bool]] = []
    async with _eager_server(started) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = _post("/e-expect", b"payload", b"Expect: 100-continue\r\n")
        head, body = request.split(b"\r\n\r\n", 1)
        writer.write(head + b"\r\n\r\n")
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        writer.write(body)
        data = b""
        while b"7:payload" not in data:
            data += await asyncio.wait_for(reader.read(65536), 5)
        writer.close()
    assert started == [("/e-expect", True)]


async def test_pipelined_picked_requests_that_suspend_are_answered_in_order() -> None:
    started: list[tuple[str, bool]] = []
    async with _eager_server(started) as port:
        requests = _post("/slow1", b"a") + _post("/e2", b"bb") + _post("/slow3", b"ccc")
        data = await _exchange(port, requests, b"3:ccc", 1)
    answers = [part.split(b"\r\n\r\n", 1)[1] for part in data.split(b"HTTP/1.1 201")[1:]]
    assert answers == [b"1:a", b"2:bb", b"3:ccc"]
    assert [path for path, _ in started] == ["/slow1", "/e2", "/slow3"]


async def test_a_client_gone_before_its_body_came_starts_nothing() -> None:
    started: list[tuple[str, bool]] = []
    async with _eager_server(started) as port:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_post("/e-gone", b"0123456789")[:-4])
        await writer.drain()
        writer.close()
        await asyncio.sleep(0.05)
        assert started == []
        await _exchange(port, _post("/e-after", b"ok"), b"2:ok", 1)  # the server goes on
    assert started == [("/e-after", False)]
