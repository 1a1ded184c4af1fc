"""A lean keep-alive HTTP/1.1 client for one job: POSTing form-encoded status callbacks.

Why not aiohttp or httpx: the gateway posts three StatusCallback webhooks per message, so the
client's per-request CPU scales with traffic. An end-to-end measurement (DECISIONS.md, "End-to-end
ceiling") found aiohttp costs ~100 µs more CPU per request than a minimal keep-alive client, which
made the whole gateway 2.2× slower; httpx is slower still (bench/webhook_clients.py measures all
three against the same loopback receiver). Their generality — cookie jars, redirects, multidict
headers, tracing signals, streaming bodies, a URL object per request — is what we pay for and
don't use.

What is written by hand here is only the connection handling: a per-origin pool of keep-alive
connections (asyncio.Protocol, no streams), one request in flight per connection, one
transport.write per request. Responses are parsed by httptools' binding of llhttp (Node.js's C
parser) rather than by hand: HTTP/1.1 framing (chunked encoding, Content-Length vs
Transfer-Encoding conflicts, 1xx interim responses, obs-fold, lenient-vs-strict choices) is where
hand parsers grow request-smuggling and desync bugs, and the C parser is also the cheaper one —
it runs at memcpy-like speed and calls back into Python only a few times per response.

Semantics:
- post_form() returns a Response for any status code (a 500 is an answer, not an error) and
  raises WebhookError for everything that is not an answer: invalid or unsupported URL, connect
  failure (refused, DNS, TLS), timeout, malformed response, connection closed before the response
  was complete. The timeout covers waiting for a pooled connection, connecting and the exchange.
- A request sent on a reused keep-alive connection that the server closed just before (closed or
  reset with no response byte received) is retried once on a fresh connection: the classic
  keep-alive race. A request is never retried once any response byte has arrived. The retry makes
  delivery at-least-once (so are webhook retries in general): a server that read the request and
  then died without answering may see it twice.
- Cancelling post_form() closes the connection it was using; a connection goes back to the pool
  only after a complete response that allows reuse (HTTP/1.1 without `Connection: close`, no
  stray bytes after it).
- Response bodies are read to the end (so the connection can be reused) but only the first
  MAX_BODY bytes are kept.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from collections import deque
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote, urlsplit

import msgspec
from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

__all__ = ["MAX_BODY", "Response", "WebhookClient", "WebhookError"]

MAX_BODY = 64 * 1024  # response body bytes kept; the rest is read and discarded
_ROUTE_CACHE_SIZE = 1024  # parsed URLs kept per client
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Every printable ASCII character but space stays as written in the request target.
_TARGET_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))
# RFC 3986 reg-name characters, plus ':' for IPv6 literals (brackets already removed).
_HOST_CHARS = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:%-]+")
# Set by the client itself; a caller's duplicate would make the request ambiguous (smuggling).
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "content-type", "connection", "transfer-encoding", "user-agent"}
)


class WebhookError(Exception):
    """The webhook could not be delivered: no HTTP answer was obtained (see the message)."""


class _StaleConnection(Exception):
    """A reused idle connection was closed by the server before any response byte arrived."""


class Response(msgspec.Struct, frozen=True):
    status: int
    body: bytes  # at most MAX_BODY bytes


class _Route:
    """What one URL resolves to, computed once per URL and cached per client."""

    __slots__ = ("head", "host", "key", "origin", "port", "server_hostname", "tls")

    def __init__(self, url: str, user_agent: str) -> None:
        try:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            host = parts.hostname
            port = parts.port
        except ValueError as exc:
            raise WebhookError(f"invalid URL {url!r}: {exc}") from None
        if scheme not in _DEFAULT_PORTS:
            raise WebhookError(f"unsupported URL scheme {scheme!r} (http or https only)")
        if not host:
            raise WebhookError("no host in the URL")
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError as exc:
                raise WebhookError(f"invalid host name {host!r}: {exc}") from None
        if not _HOST_CHARS.fullmatch(host):
            raise WebhookError(f"invalid host name {host!r}")
        default_port = _DEFAULT_PORTS[scheme]
        if port is None:
            port = default_port
        ipv6 = ":" in host
        host_header = f"[{host}]" if ipv6 else host
        if port != default_port:
            host_header += f":{port}"
        # Path and query exactly as written (only bytes illegal on a request line are
        # percent-encoded); the fragment is not sent.
        target = parts.path or "/"
        if "?" in url.partition("#")[0]:
            target += "?" + parts.query
        target = quote(target, safe=_TARGET_SAFE)
        head = (
            f"POST {target} HTTP/1.1\r\n"
            f"Host: {host_header}\r\n"
            f"User-Agent: {user_agent}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Connection: keep-alive\r\n"
        )
        if parts.username is not None or parts.password is not None:
            # Twilio-style credentials in the callback URL: sent as HTTP Basic authentication.
            credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            token = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
            head += f"Authorization: Basic {token}\r\n"
        self.key = (scheme, host, port)
        self.head = head.encode("latin-1")
        self.host = host
        self.port = port
        self.tls = scheme == "https"
        self.server_hostname = host if self.tls else None
        self.origin = f"{scheme}://[{host}]:{port}" if ipv6 else f"{scheme}://{host}:{port}"


class _Pool:
    """Connections to one (scheme, host, port). `count` is the number of slots taken: idle
    connections plus requests holding or opening a connection; it never exceeds max_per_host."""

    __slots__ = ("count", "idle", "waiters")

    def __init__(self) -> None:
        self.count = 0
        self.idle: list[_Connection] = []  # LIFO: append/pop at the end; oldest at index 0
        # Requests waiting for a slot; each future gets a connection (handed over, ready to use)
        # or None (a slot: open a new connection).
        self.waiters: deque[asyncio.Future[_Connection | None]] = deque()

    def free_slot(self) -> None:
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.count -= 1


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight."""

    __slots__ = (
        "alive",
        "body",
        "client",
        "done",
        "extra",
        "framed",
        "fut",
        "got_bytes",
        "headers_done",
        "idle",
        "idle_since",
        "keep",
        "loop",
        "parser",
        "pool",
        "reused",
        "route",
        "status",
        "timer",
        "transport",
    )

    def __init__(self, client: WebhookClient, pool: _Pool, route: _Route) -> None:
        self.client = client
        self.pool = pool
        self.route = route
        self.loop = asyncio.get_running_loop()
        self.parser = HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.alive = False
        self.idle = False  # in pool.idle
        self.idle_since = 0.0
        self.reused = False  # has served a request before
        self.fut: asyncio.Future[Response] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.got_bytes = False
        self.done = False
        self.extra = False
        self.keep = False
        self.headers_done = False
        self.framed = False
        self.status = 0
        self.body = b""

    # -- request side ---------------------------------------------------------------------

    def send(self, request: bytes, deadline: float) -> asyncio.Future[Response]:
        fut = self.fut = self.loop.create_future()
        self.got_bytes = self.done = self.extra = self.keep = self.headers_done = False
        self.timer = self.loop.call_at(deadline, self._timed_out)
        self.transport.write(request)  # type: ignore[union-attr]
        return fut

    def abort(self) -> None:
        """Close now, whatever state the exchange is in; the connection is never reused."""
        self.fut = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.alive:
            self.alive = False
            self.transport.abort()  # type: ignore[union-attr]

    def _timed_out(self) -> None:
        self.timer = None
        fut = self.fut
        if fut is not None and not fut.done():
            fut.set_exception(
                WebhookError(
                    f"no complete response from {self.route.origin} "
                    f"within {self.client.timeout:g} s"
                )
            )
        self.abort()

    def _finish(self, outcome: Response | BaseException) -> None:
        fut = self.fut
        self.fut = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if fut is not None and not fut.done():
            if isinstance(outcome, BaseException):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.alive = True
        self.client._conns.add(self)

    def data_received(self, data: bytes) -> None:
        if self.fut is None:  # nothing asked: a stray response or garbage; don't reuse
            self.abort()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade:
            if not self.done:
                self._fail(WebhookError(f"{self.route.origin} switched protocols unasked"))
                return
            self.extra = True
        except HttpParserError as exc:
            if not self.done:
                self._fail(WebhookError(f"malformed response from {self.route.origin}: {exc}"))
                return
            self.extra = True  # bytes after the response: answer stands, connection doesn't
        if self.done:
            body = self.body
            if len(body) > MAX_BODY:
                body = body[:MAX_BODY]
            if self.extra:
                self.keep = False
            self._finish(Response(self.status, body))
            self.body = b""

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost settles the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        self.client._connection_lost(self)
        if self.idle:
            self.idle = False
            self.pool.idle.remove(self)
            self.pool.free_slot()
        fut = self.fut
        if fut is None or fut.done():
            self.fut = None
            return
        origin = self.route.origin
        if self.headers_done and not self.framed:
            # Neither Content-Length nor chunked: the body ends where the connection does.
            self.keep = False
            body = self.body[:MAX_BODY]
            self.body = b""
            self._finish(Response(self.status, body))
        elif not self.got_bytes and self.reused:
            self._finish(_StaleConnection())
        elif not self.got_bytes:
            reason = f": {exc}" if exc else ""
            self._finish(WebhookError(f"{origin} closed the connection before a response{reason}"))
        else:
            reason = f": {exc}" if exc else ""
            self._finish(WebhookError(f"{origin} closed the connection mid-response{reason}"))

    def _fail(self, exc: WebhookError) -> None:
        self._finish(exc)
        self.abort()

    # -- llhttp callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.done:  # a second response to one request
            self.extra = True
            return
        self.headers_done = False
        self.framed = False
        self.body = b""

    def on_header(self, name: bytes, value: bytes) -> None:
        # Only framing matters to us: at EOF, an unframed body is complete, a framed one is cut.
        n = len(name)
        if n == 14:
            if name.lower() == b"content-length":
                self.framed = True
        elif (
            n == 17
            and name.lower() == b"transfer-encoding"
            and value.rstrip().lower().endswith(b"chunked")
        ):
            self.framed = True

    def on_headers_complete(self) -> None:
        if not self.done:
            self.headers_done = True
            self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if not self.done and len(self.body) < MAX_BODY:
            self.body += body

    def on_message_complete(self) -> None:
        if self.done:
            return
        if self.status < 200:  # 1xx interim response: the real one follows
            self.headers_done = False
            return
        self.done = True
        parser = self.parser
        self.keep = parser.should_keep_alive() and parser.get_http_version() == "1.1"


class WebhookClient:
    """POSTs form-encoded bodies over pooled keep-alive HTTP/1.1 connections.

    Use as `async with WebhookClient(...) as client:` or call close() when done. One client per
    event loop.
    """

    def __init__(
        self,
        *,
        max_per_host: int = 16,
        timeout: float = 10.0,
        idle_timeout: float = 15.0,
        user_agent: str = "smsgw",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_per_host < 1:
            raise ValueError("max_per_host must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if "\r" in user_agent or "\n" in user_agent:
            raise ValueError("user_agent must not contain CR or LF")
        user_agent.encode("latin-1")  # raises UnicodeEncodeError (a ValueError) if unsendable
        self.max_per_host = max_per_host
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.user_agent = user_agent
        self._ssl = ssl_context
        self._routes: dict[str, _Route] = {}
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self._conns: set[_Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False
        self._all_lost: asyncio.Future[None] | None = None

    async def __aenter__(self) -> WebhookClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def post_form(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    ) -> Response:
        """POST `body` (already form-encoded) to `url`; return the response, whatever its status.

        `headers` are extra request headers (e.g. the signature); Host, User-Agent,
        Content-Type, Content-Length and Connection are the client's own. Raises WebhookError
        when no HTTP response could be obtained, ValueError for an invalid header.
        """
        if self._closed:
            raise WebhookError("the webhook client is closed")
        route = self._routes.get(url)
        if route is None:
            route = self._add_route(url)
        request = b"".join(
            (
                route.head,
                _header_block(headers) if headers else b"",
                b"Content-Length: %d\r\n\r\n" % len(body),
                body,
            )
        )
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = now + self.timeout
        pool = self._pools.get(route.key)
        if pool is None:
            pool = self._pools[route.key] = _Pool()

        conn = None
        idle = pool.idle
        while idle:  # LIFO: the most recently used connection is the likeliest still open
            conn = idle.pop()
            conn.idle = False
            if conn.alive and now - conn.idle_since < self.idle_timeout:
                break
            conn.abort()
            pool.free_slot()
            conn = None
        if conn is None:
            conn = await self._slot(pool, route, deadline)

        retried = False
        while True:  # we hold conn and its slot
            if not conn.alive:  # a pooled connection closed as it was handed over: nothing sent
                if conn.reused:
                    conn = await self._connect(pool, route, deadline)
                    continue
                pool.free_slot()
                raise WebhookError(f"{route.origin} closed the connection before a response")
            fut = conn.send(request, deadline)
            try:
                response = await fut
            except _StaleConnection:
                if retried:  # cannot happen (fresh connections are not 'reused'); be safe
                    pool.free_slot()
                    raise WebhookError(
                        f"{route.origin} closed the connection before a response"
                    ) from None
                retried = True
                conn = await self._connect(pool, route, deadline)
                continue
            except BaseException:  # error, timeout or cancellation: never reuse this one
                conn.abort()
                pool.free_slot()
                raise
            if conn.keep and conn.alive and not self._closed:
                self._release(pool, conn, loop)
            else:
                conn.abort()
                pool.free_slot()
            return response

    async def close(self) -> None:
        """Close every connection; pending and later post_form() calls raise WebhookError."""
        if self._closed:
            return
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for pool in self._pools.values():
            for waiter in pool.waiters:
                if not waiter.done():
                    waiter.set_exception(WebhookError("the webhook client is closed"))
            pool.waiters.clear()
            pool.idle.clear()
        for conn in list(self._conns):
            conn.idle = False
            conn._finish(WebhookError("the webhook client is closed"))
            conn.abort()
        if self._conns:
            self._all_lost = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(2.0):
                    await asyncio.shield(self._all_lost)
            except TimeoutError:
                pass
        self._pools.clear()

    # -- internals ------------------------------------------------------------------------

    def _add_route(self, url: str) -> _Route:
        route = _Route(url, self.user_agent)
        routes = self._routes
        if len(routes) >= _ROUTE_CACHE_SIZE:
            del routes[next(iter(routes))]  # oldest first
        routes[url] = route
        return route

    async def _slot(self, pool: _Pool, route: _Route, deadline: float) -> _Connection:
        """A connection for one request: a new one if the pool has room, else wait for one."""
        if pool.count < self.max_per_host:
            pool.count += 1
            return await self._connect(pool, route, deadline)
        waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        pool.waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                conn = await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                got = waiter.result()  # handed to us as we were cancelled: give it back
                if got is None:
                    pool.free_slot()
                else:
                    self._release(pool, got, asyncio.get_running_loop())
            if isinstance(exc, TimeoutError):
                raise WebhookError(
                    f"timed out after {self.timeout:g} s waiting for a free connection to "
                    f"{route.origin} (max_per_host={self.max_per_host})"
                ) from None
            raise
        if conn is None:  # a slot was freed for us
            return await self._connect(pool, route, deadline)
        return conn

    async def _connect(self, pool: _Pool, route: _Route, deadline: float) -> _Connection:
        """Open a connection in a slot the caller holds; on failure the slot is freed."""
        loop = asyncio.get_running_loop()
        ssl_context = None
        if route.tls:
            ssl_context = self._ssl
            if ssl_context is None:
                ssl_context = self._ssl = ssl.create_default_context()
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self, pool, route),
                    route.host,
                    route.port,
                    ssl=ssl_context,
                    server_hostname=route.server_hostname,
                )
        except TimeoutError:
            pool.free_slot()
            raise WebhookError(
                f"timed out after {self.timeout:g} s connecting to {route.origin}"
            ) from None
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            pool.free_slot()
            raise WebhookError(f"cannot connect to {route.origin}: {exc}") from exc
        except BaseException:
            pool.free_slot()
            raise
        if self._closed:
            conn.abort()
            pool.free_slot()
            raise WebhookError("the webhook client is closed")
        return conn

    def _release(self, pool: _Pool, conn: _Connection, loop: asyncio.AbstractEventLoop) -> None:
        """Give a healthy connection (and its slot) to the next waiter, or park it idle."""
        if not conn.alive:
            pool.free_slot()
            return
        conn.reused = True
        waiters = pool.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        conn.idle = True
        conn.idle_since = loop.time()
        pool.idle.append(conn)
        if self._sweeper is None:
            self._sweeper = loop.call_later(max(self.idle_timeout / 2, 0.01), self._sweep)

    def _sweep(self) -> None:
        """Close connections idle longer than idle_timeout; forget pools with nothing left."""
        self._sweeper = None
        loop = asyncio.get_running_loop()
        cutoff = loop.time() - self.idle_timeout
        any_idle = False
        for key, pool in list(self._pools.items()):
            idle = pool.idle
            while idle and idle[0].idle_since <= cutoff:
                conn = idle.pop(0)
                conn.idle = False
                conn.abort()
                pool.free_slot()
            if idle:
                any_idle = True
            elif pool.count == 0 and not pool.waiters:
                del self._pools[key]
        if any_idle and not self._closed:
            self._sweeper = loop.call_later(max(self.idle_timeout / 2, 0.01), self._sweep)

    def _connection_lost(self, conn: _Connection) -> None:
        self._conns.discard(conn)
        if self._all_lost is not None and not self._conns and not self._all_lost.done():
            self._all_lost.set_result(None)


def _header_block(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> bytes:
    items = headers.items() if isinstance(headers, Mapping) else headers
    lines = []
    for name, value in items:
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by the webhook client")
        lines.append(f"{name}: {value}\r\n")
    block = "".join(lines)
    if block.count("\n") != len(lines) or block.count("\r") != len(lines):
        raise ValueError("header names and values must not contain CR or LF")
    return block.encode("latin-1")
