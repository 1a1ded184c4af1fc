"""WebhookClient over loopback: a real aiohttp server for the normal cases, raw sockets for the
hostile ones (servers that close, stall, lie or babble)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import ssl
import struct
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from gateway.engine.http_client import MAX_BODY, Response, WebhookClient, WebhookError, _Route

pytestmark = pytest.mark.timeout(30)

FORM = b"MessageSid=SM123&MessageStatus=delivered&To=%2B14155552671"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


# -- servers --------------------------------------------------------------------------------


class AppServer:
    """An aiohttp.web server that records each request and the client connection it came on."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.requests: list[dict] = []
        self.peers: set[tuple] = set()
        self.runner: web.AppRunner | None = None
        self.url = ""

    def record(self, request: web.Request, body: bytes) -> None:
        self.peers.add(request.transport.get_extra_info("peername"))
        self.requests.append(
            {"path": request.raw_path, "headers": request.headers.copy(), "body": body}
        )

    async def start(self, host: str = "127.0.0.1", ssl_context=None) -> None:
        self.runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, 0, ssl_context=ssl_context)
        await site.start()
        port = self.runner.addresses[0][1]
        scheme = "https" if ssl_context else "http"
        netloc = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{netloc}:{port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def app_server() -> AsyncIterator[Callable[..., Awaitable[AppServer]]]:
    servers: list[AppServer] = []

    async def start(handler, *, host: str = "127.0.0.1", ssl_context=None) -> AppServer:
        server = AppServer()

        async def recording(request: web.Request) -> web.StreamResponse:
            server.record(request, await request.read())
            return await handler(request)

        server.app.router.add_route("*", "/{tail:.*}", recording)
        await server.start(host, ssl_context)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


async def ok_handler(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One request (head and Content-Length body), or None if the client closed first."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return head + await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


class RawServer:
    """A TCP server whose per-connection behaviour is a coroutine
    `behave(server, conn_no, reader, writer)`. Counts connections, requests read, and
    connections ended (by the client closing, or by the behaviour); wait_for() waits on those."""

    def __init__(self, behave) -> None:
        self.behave = behave
        self.connections = 0
        self.requests = 0
        self.ended = 0
        self.changed = asyncio.Condition()
        self.tasks: set[asyncio.Task] = set()
        self.server: asyncio.Server | None = None
        self.url = ""

    async def _bump(self, counter: str) -> None:
        async with self.changed:
            setattr(self, counter, getattr(self, counter) + 1)
            self.changed.notify_all()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        request = await read_request(reader)
        if request is not None:
            await self._bump("requests")
        return request

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(5), self.changed:
            await self.changed.wait_for(predicate)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        await self._bump("connections")
        try:
            await self.behave(self, self.connections, reader, writer)
            with contextlib.suppress(ConnectionError):
                await reader.read()  # until the client closes
        except ConnectionError:
            pass
        finally:
            writer.close()
            self.tasks.discard(task)
            self.ended += 1
            async with self.changed:
                self.changed.notify_all()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[..., Awaitable[RawServer]]]:
    servers: list[RawServer] = []

    async def start(behave) -> RawServer:
        server = RawServer(behave)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def answer_each(replies: list[bytes]):
    """A behaviour: read a request and write the next reply, for each reply in turn."""

    async def behave(server, conn_no, reader, writer) -> None:
        for reply in replies:
            if await server.read_request(reader) is None:
                return
            writer.write(reply)
            await writer.drain()

    return behave


@pytest.fixture
async def client() -> AsyncIterator[WebhookClient]:
    async with WebhookClient(max_per_host=4, timeout=5.0, user_agent="smsgw-test/1") as c:
        yield c


# -- normal exchanges -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204, 400, 404, 500, 503])
async def test_any_status_is_a_response_not_an_error(app_server, client, status):
    async def handler(request):
        return web.Response(status=status, body=b"" if status == 204 else b"<Response/>")

    server = await app_server(handler)
    response = await client.post_form(f"{server.url}/status", FORM, {})
    assert response == Response(status, b"" if status == 204 else b"<Response/>")


async def test_server_receives_the_form_and_headers_intact(app_server, client):
    server = await app_server(ok_handler)
    signature = "Wm8XoTq2eTDRwzIpJH+1wVVdz6A="
    response = await client.post_form(
        f"{server.url}/cb",
        FORM,
        {"X-Twilio-Signature": signature, "I-Twilio-Idempotency-Token": "t1"},
    )
    assert response == Response(200, b"ok")
    [request] = server.requests
    headers = request["headers"]
    assert request["body"] == FORM
    assert headers["Host"] == server.url.removeprefix("http://")
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["Content-Length"] == str(len(FORM))
    assert headers["User-Agent"] == "smsgw-test/1"
    assert headers["Connection"] == "keep-alive"
    assert headers["X-Twilio-Signature"] == signature
    assert headers["I-Twilio-Idempotency-Token"] == "t1"


async def test_headers_may_be_a_list_with_repeated_names(app_server, client):
    server = await app_server(ok_handler)
    await client.post_form(server.url, b"", [("X-Tag", "a"), ("X-Tag", "b")])
    [request] = server.requests
    assert request["headers"].getall("X-Tag") == ["a", "b"]
    assert request["path"] == "/"
    assert request["headers"]["Content-Length"] == "0"


async def test_path_and_query_are_sent_exactly_as_written(app_server, client):
    server = await app_server(ok_handler)
    target = "/hooks/status;v=1?a=1&b=%2F%3D&c=%20x&a=2&empty=&plus=+&tilde=~#fragment"
    await client.post_form(server.url + target, FORM, {})
    await client.post_form(server.url + "?only=query", FORM, {})
    assert [r["path"] for r in server.requests] == [
        "/hooks/status;v=1?a=1&b=%2F%3D&c=%20x&a=2&empty=&plus=+&tilde=~",
        "/?only=query",
    ]


async def test_credentials_in_the_url_are_sent_as_basic_auth(app_server, client):
    server = await app_server(ok_handler)
    url = server.url.replace("http://", "http://user:p%40ss@") + "/cb"
    await client.post_form(url, FORM, {})
    [request] = server.requests
    assert request["headers"]["Authorization"] == "Basic dXNlcjpwQHNz"  # user:p@ss


async def test_sequential_requests_reuse_one_keep_alive_connection(app_server, client):
    server = await app_server(ok_handler)
    for i in range(10):
        response = await client.post_form(f"{server.url}/cb?n={i}", FORM, {})
        assert response.status == 200
    assert len(server.requests) == 10
    assert len(server.peers) == 1


async def test_concurrency_is_capped_at_max_per_host_connections(app_server, client):
    in_flight = 0
    most = 0
    pool_full = asyncio.Event()

    async def handler(request):
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        if in_flight == client.max_per_host:
            pool_full.set()
        await pool_full.wait()  # the first requests hold their connections until all 4 are open
        in_flight -= 1
        return web.Response(text=request.query["n"])

    server = await app_server(handler)
    responses = await asyncio.wait_for(
        asyncio.gather(*(client.post_form(f"{server.url}/?n={i}", FORM, {}) for i in range(40))),
        10,
    )
    assert [r.body for r in responses] == [str(i).encode() for i in range(40)]
    assert most == client.max_per_host == 4
    assert len(server.peers) == 4


async def test_chunked_response_body_is_reassembled(app_server, client):
    async def handler(request):
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for piece in (b"<Resp", b"onse>", b"x" * 5000, b"</Response>"):
            await response.write(piece)
        await response.write_eof()
        return response

    server = await app_server(handler)
    for _ in range(2):
        response = await client.post_form(server.url, FORM, {})
        assert response == Response(200, b"<Response>" + b"x" * 5000 + b"</Response>")
    assert len(server.peers) == 1


async def test_body_beyond_the_cap_is_consumed_and_dropped_and_connection_reused(
    app_server, client
):
    big = bytes(range(256)) * 400  # 100 KiB

    async def handler(request):
        return web.Response(body=big)

    server = await app_server(handler)
    first = await client.post_form(server.url, FORM, {})
    second = await client.post_form(server.url, FORM, {})
    assert first.body == second.body == big[:MAX_BODY]
    assert len(server.peers) == 1


async def test_ipv6_literal_host(app_server, client):
    try:
        server = await app_server(ok_handler, host="::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    response = await client.post_form(f"{server.url}/v6?x=1", FORM, {})
    assert response == Response(200, b"ok")
    [request] = server.requests
    assert request["headers"]["Host"] == server.url.removeprefix("http://")
    assert request["headers"]["Host"].startswith("[::1]:")


@pytest.mark.parametrize(
    ("url", "key", "host", "target"),
    [
        ("http://example.com", ("http", "example.com", 80), "example.com", "/"),
        ("https://Example.COM/a?b#c", ("https", "example.com", 443), "example.com", "/a?b"),
        ("http://example.com:80/", ("http", "example.com", 80), "example.com", "/"),
        ("https://example.com:8443/", ("https", "example.com", 8443), "example.com:8443", "/"),
        ("http://[2001:db8::1]/x", ("http", "2001:db8::1", 80), "[2001:db8::1]", "/x"),
        ("http://h/a b/é?q=é x", ("http", "h", 80), "h", "/a%20b/%C3%A9?q=%C3%A9%20x"),
        ("http://bücher.example/", ("http", "xn--bcher-kva.example", 80), "xn--bcher-kva.example",
         "/"),
    ],
)  # fmt: skip
def test_url_gives_pool_key_and_request_head_with_default_ports_left_out(url, key, host, target):
    route = _Route(url, "ua")
    assert route.key == key
    assert route.head.startswith(f"POST {target} HTTP/1.1\r\nHost: {host}\r\n".encode())
    assert route.tls == (key[0] == "https")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "example.com/cb",
        "http:///nohost",
        "http://h:99999/",
        "http://exa\x00mple.com/",
        "http://a b/",
        "",
    ],
)
async def test_unusable_url_is_a_webhook_error(client, url):
    with pytest.raises(WebhookError):
        await client.post_form(url, FORM, {})


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Evil": "a\r\nX-Injected: 1"},
        {"X-Evil\r\nX-Injected": "1"},
        {"Content-Length": "0"},
        [("host", "elsewhere")],
    ],
)
async def test_header_that_would_break_the_request_is_refused(app_server, client, headers):
    server = await app_server(ok_handler)
    with pytest.raises(ValueError):
        await client.post_form(server.url, FORM, headers)
    assert server.requests == []


# -- hostile servers ------------------------------------------------------------------------


async def test_reused_connection_closed_by_server_is_retried_once_on_a_fresh_one(
    raw_server, client
):
    async def behave(server, conn_no, reader, writer):
        await server.read_request(reader)
        writer.write(OK)
        if conn_no == 1:  # keep-alive race: the next request arrives as the server closes
            await server.read_request(reader)
            writer.close()

    server = await raw_server(behave)
    assert await client.post_form(server.url, FORM, {}) == Response(200, b"ok")
    assert await client.post_form(server.url, FORM, {}) == Response(200, b"ok")
    assert (server.connections, server.requests) == (2, 3)


async def test_reused_connection_after_a_bodiless_response_is_retried_too(raw_server, client):
    # Nothing of the 204 (no Content-Length) may be taken for the start of the next response.
    async def behave(server, conn_no, reader, writer):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n" if conn_no == 1 else OK)
        if conn_no == 1:
            await server.read_request(reader)
            writer.close()

    server = await raw_server(behave)
    assert await client.post_form(server.url, FORM, {}) == Response(204, b"")
    assert await client.post_form(server.url, FORM, {}) == Response(200, b"ok")
    assert (server.connections, server.requests) == (2, 3)


async def test_reused_connection_reset_by_server_is_retried(raw_server, client):
    async def behave(server, conn_no, reader, writer):
        await server.read_request(reader)
        writer.write(OK)
        if conn_no == 1:
            await server.read_request(reader)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # RST, not FIN

    server = await raw_server(behave)
    await client.post_form(server.url, FORM, {})
    assert await client.post_form(server.url, FORM, {}) == Response(200, b"ok")
    assert server.connections == 2


async def test_fresh_connection_closed_before_a_response_is_not_retried(raw_server, client):
    async def behave(server, conn_no, reader, writer):
        await server.read_request(reader)
        writer.close()

    server = await raw_server(behave)
    with pytest.raises(WebhookError, match="closed the connection before a response"):
        await client.post_form(server.url, FORM, {})
    assert (server.connections, server.requests) == (1, 1)


async def test_retry_is_only_once(raw_server, client):
    async def behave(server, conn_no, reader, writer):
        await server.read_request(reader)
        if conn_no == 1:
            writer.write(OK)
            await server.read_request(reader)
        writer.close()

    server = await raw_server(behave)
    await client.post_form(server.url, FORM, {})
    with pytest.raises(WebhookError, match="before a response"):
        await client.post_form(server.url, FORM, {})
    assert (server.connections, server.requests) == (2, 3)


async def test_no_retry_once_response_bytes_arrived(raw_server, client):
    async def behave(server, conn_no, reader, writer):
        await server.read_request(reader)
        writer.write(OK)
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Le")
        writer.close()

    server = await raw_server(behave)
    await client.post_form(server.url, FORM, {})
    with pytest.raises(WebhookError, match="mid-response"):
        await client.post_form(server.url, FORM, {})
    assert (server.connections, server.requests) == (1, 2)


@pytest.mark.parametrize(
    "garbage",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"HTTP/1.1 2OO OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
    ],
)
async def test_garbage_response_is_a_webhook_error_and_closes_the_connection(
    raw_server, client, garbage
):
    async def behave(server, conn_no, reader, writer):
        await server.read_request(reader)
        writer.write(garbage)

    server = await raw_server(behave)
    with pytest.raises(WebhookError, match="malformed response"):
        await client.post_form(server.url, FORM, {})
    await server.wait_for(lambda: server.ended == 1)


async def test_server_that_never_answers_times_out(raw_server):
    async def behave(server, conn_no, reader, writer):
        await server.read_request(reader)  # and then nothing

    server = await raw_server(behave)
    async with WebhookClient(timeout=0.2) as client:
        with pytest.raises(WebhookError, match=r"no complete response .* within 0.2 s"):
            await client.post_form(server.url, FORM, {})
        await server.wait_for(lambda: server.ended == 1)


async def test_response_that_stops_midway_times_out(raw_server):
    async def behave(server, conn_no, reader, writer):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")

    server = await raw_server(behave)
    async with WebhookClient(timeout=0.2) as client:
        with pytest.raises(WebhookError, match="no complete response"):
            await client.post_form(server.url, FORM, {})


async def test_connection_refused_is_a_webhook_error(client):
    with socket.socket() as sock:  # bound, not listening: connecting is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(
            WebhookError, match=re.escape(f"cannot connect to http://127.0.0.1:{port}")
        ):
            await client.post_form(f"http://127.0.0.1:{port}/cb", FORM, {})
        with pytest.raises(WebhookError, match="cannot connect"):  # the slot was given back
            await client.post_form(f"http://127.0.0.1:{port}/cb", FORM, {})


async def test_unresolvable_host_is_a_webhook_error(client):
    with pytest.raises(
        WebhookError, match=re.escape("cannot connect to http://no-such-host.invalid:80")
    ):
        await client.post_form("http://no-such-host.invalid/cb", FORM, {})


@pytest.mark.parametrize(
    "first_reply",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        OK + b"HTTP/1.1 200 OK\r\n",  # stray bytes after the response
    ],
    ids=["connection-close", "http-1.0", "stray-bytes"],
)
async def test_connection_not_reusable_is_replaced(raw_server, client, first_reply):
    async def behave(server, conn_no, reader, writer):
        await server.read_request(reader)
        writer.write(first_reply if conn_no == 1 else OK)  # and keep the socket open

    server = await raw_server(behave)
    assert await client.post_form(server.url, FORM, {}) == Response(200, b"ok")
    await server.wait_for(lambda: server.ended == 1)  # the client closed it
    assert await client.post_form(server.url, FORM, {}) == Response(200, b"ok")
    assert server.connections == 2


async def test_body_delimited_by_connection_close(raw_server, client):
    async def behave(server, conn_no, reader, writer):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, ")
        await writer.drain()
        writer.write(b"world")
        writer.close()

    server = await raw_server(behave)
    assert await client.post_form(server.url, FORM, {}) == Response(200, b"hello, world")
    assert await client.post_form(server.url, FORM, {}) == Response(200, b"hello, world")
    assert server.connections == 2


@pytest.mark.parametrize(
    "truncated",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Len",
    ],
)
async def test_framed_response_cut_short_by_close_is_an_error(raw_server, client, truncated):
    async def behave(server, conn_no, reader, writer):
        await server.read_request(reader)
        writer.write(truncated)
        writer.close()

    server = await raw_server(behave)
    with pytest.raises(WebhookError, match="mid-response"):
        await client.post_form(server.url, FORM, {})


async def test_interim_1xx_responses_are_skipped(raw_server, client):
    behave = answer_each(
        [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK, OK]
    )
    server = await raw_server(behave)
    assert await client.post_form(server.url, FORM, {}) == Response(200, b"ok")
    assert await client.post_form(server.url, FORM, {}) == Response(200, b"ok")
    assert server.connections == 1


async def test_unasked_protocol_switch_is_an_error(raw_server, client):
    behave = answer_each(
        [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"]
    )
    server = await raw_server(behave)
    with pytest.raises(WebhookError, match="switched protocols"):
        await client.post_form(server.url, FORM, {})


async def test_cancelled_request_closes_its_connection_and_frees_the_slot(raw_server):
    async def behave(server, conn_no, reader, writer):
        await server.read_request(reader)
        if conn_no > 1:
            writer.write(OK)

    server = await raw_server(behave)
    async with WebhookClient(max_per_host=1, timeout=5.0) as client:
        task = asyncio.create_task(client.post_form(server.url, FORM, {}))
        await server.wait_for(lambda: server.requests == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await server.wait_for(lambda: server.ended == 1)
        assert await client.post_form(server.url, FORM, {}) == Response(200, b"ok")
        assert server.connections == 2


async def test_waiting_for_a_full_pool_counts_against_the_timeout(raw_server):
    async def behave(server, conn_no, reader, writer):
        await server.read_request(reader)  # never answers

    server = await raw_server(behave)
    async with WebhookClient(max_per_host=1, timeout=5.0) as client:
        hog = asyncio.create_task(client.post_form(server.url, FORM, {}))
        await server.wait_for(lambda: server.requests == 1)
        client.timeout = 0.1  # for the next request only
        with pytest.raises(WebhookError, match="waiting for a free connection"):
            await client.post_form(server.url, FORM, {})
        hog.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hog
    assert server.connections == 1


async def test_idle_connections_are_closed_after_idle_timeout(raw_server):
    server = await raw_server(answer_each([OK, OK]))
    async with WebhookClient(idle_timeout=0.05) as client:
        await client.post_form(server.url, FORM, {})
        await server.wait_for(lambda: server.ended == 1)
        assert await client.post_form(server.url, FORM, {}) == Response(200, b"ok")
    assert server.connections == 2


async def test_close_closes_idle_connections_and_refuses_new_requests(raw_server):
    server = await raw_server(answer_each([OK]))
    client = WebhookClient()
    await client.post_form(server.url, FORM, {})
    await client.close()
    await server.wait_for(lambda: server.ended == 1)
    with pytest.raises(WebhookError, match="closed"):
        await client.post_form(server.url, FORM, {})


async def test_close_fails_requests_in_flight(raw_server):
    async def behave(server, conn_no, reader, writer):
        await server.read_request(reader)  # never answers

    server = await raw_server(behave)
    client = WebhookClient()
    task = asyncio.create_task(client.post_form(server.url, FORM, {}))
    await server.wait_for(lambda: server.requests == 1)
    await client.close()
    with pytest.raises(WebhookError, match="closed"):
        await task


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A throwaway self-signed certificate for 127.0.0.1 and localhost (made by openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed: cannot make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = str(directory / "cert.pem"), str(directory / "key.pem")
    result = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {result.stderr.decode()[-300:]}")
    return cert, key


async def test_https_with_a_trusted_certificate(app_server, certificate):
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server = await app_server(ok_handler, ssl_context=server_context)
    client_context = ssl.create_default_context(cafile=cert)
    async with WebhookClient(ssl_context=client_context) as client:
        for _ in range(3):
            assert await client.post_form(f"{server.url}/tls?x=1", FORM, {}) == Response(200, b"ok")
    assert [r["path"] for r in server.requests] == ["/tls?x=1"] * 3
    assert server.requests[0]["body"] == FORM
    assert len(server.peers) == 1


async def test_https_with_an_untrusted_certificate_is_a_webhook_error(app_server, certificate):
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server = await app_server(ok_handler, ssl_context=server_context)
    async with WebhookClient() as client:  # system trust store: our certificate isn't in it
        with pytest.raises(WebhookError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.post_form(server.url, FORM, {})
    assert server.requests == []
