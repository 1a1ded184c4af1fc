"""The asyncio SMPP client for one bind: connect, bind, submit, receive receipts, reconnect.

The gateway creates one :class:`SmppClient` per configured bind, runs :meth:`SmppClient.run` as a
task for the daemon's lifetime, and calls :meth:`SmppClient.submit` from its delivery workers.
Everything protocol-related happens in :class:`~carriers.smpp.session.Session`; this module adds
what needs a clock and a socket: connecting, back-off, pacing, waiting.

What the caller can rely on:

* ``submit`` returns a :class:`SubmitResult` for every answer the SMSC gives, success or error.
  It raises :class:`SubmitNotSent` only when the PDU provably never left (safe to requeue) and
  :class:`SubmitUncertain` when it left but no answer came (the SMSC may have it).
* ``on_deliver`` is awaited for every deliver_sm before it is acknowledged; if it raises, the
  SMSC is answered ESME_RX_T_APPN and will retry. That makes receipts at-least-once.
* A refused bind (bad credentials) waits ``bind_refused_backoff`` before trying again: carriers
  lock accounts that hammer them with failing binds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from carriers.backoff import backoff_delay
from carriers.smpp.bind_config import BindConfig
from carriers.smpp.connection import Connection
from carriers.smpp.constants import ESME_RMSGQFUL, ESME_RTHROTTLED, status_name
from carriers.smpp.errors import BindRefused, QueryUnanswered, SmppError, SubmitNotSent
from carriers.smpp.pdus import DeliverSm, QuerySm, SubmitSm
from carriers.smpp.results import ClientStats, QueryResult, SubmitResult
from carriers.smpp.throttle import Throttle

_THROTTLING = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})  # the carrier asks us to slow down

__all__ = ["BindConfig", "ClientClosed", "ClientStats", "SmppClient", "SubmitResult"]


class ClientClosed(SmppError):
    """The client was closed while waiting for a bind."""


class SmppClient:
    """One bind to one SMSC, kept up by :meth:`run` until :meth:`close`."""

    def __init__(
        self,
        config: BindConfig,
        *,
        on_deliver: Callable[[DeliverSm], Awaitable[None]],
        logger: Any = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.on_deliver = on_deliver
        self.clock = clock
        self.log = (logger if logger is not None else structlog.get_logger()).bind(
            carrier=config.name
        )
        self.stats = ClientStats()
        self._rng = rng or random.Random()
        self._throttle = Throttle(config.throughput, clock=clock)
        self._window = asyncio.Semaphore(config.window)
        self._conn: Connection | None = None  # the bound connection, if any
        self._connecting: Connection | None = None
        self._closing = False
        self._running = False
        self._stopped = asyncio.Event()
        self._changed = asyncio.Event()  # replaced after every set(): a one-shot broadcast
        self._wakeup = asyncio.Event()  # cuts a back-off sleep short on close()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- state ------------------------------------------------------------------------------
    @property
    def bound(self) -> bool:
        """True while a connection is bound and accepting submits."""
        return self._conn is not None and self._conn.ready

    async def wait_bound(self, timeout: float | None = None) -> None:
        """Return once bound; ``TimeoutError`` after ``timeout``, ClientClosed if closed."""
        async with asyncio.timeout(timeout):
            while not self.bound:
                if self._closing:
                    raise ClientClosed(f"client {self.config.name!r} is closed")
                await self._changed.wait()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- submitting -------------------------------------------------------------------------
    async def submit(self, pdu: SubmitSm) -> SubmitResult:
        """Send one submit_sm and return the SMSC's answer.

        Waits (without limit: wrap in ``asyncio.timeout`` to bound it) until bound, for a window
        slot and for a throughput slot. Raises ``PduEncodeError`` for an invalid PDU,
        :class:`SubmitNotSent` if the client closes before it was written and
        :class:`SubmitUncertain` if it was written but never answered.
        """
        if type(pdu) is not SubmitSm:
            raise TypeError(f"submit() takes a SubmitSm, not {type(pdu).__name__}")
        if self._closing:
            raise SubmitNotSent(f"client {self.config.name!r} is closing")
        await self._window.acquire()
        try:
            while True:
                conn = await self._wait_ready()
                await self._throttle.acquire()
                if conn.ready and conn is self._conn and not self._closing:
                    break
            # From here the connection owns the window slot and releases it on the outcome.
            future = conn.submit(pdu)
        except BaseException:
            self._window.release()
            raise
        self.stats.submitted += 1
        result = await future
        self._pace(result)
        return result

    async def query(self, pdu: QuerySm) -> QueryResult:
        """Ask the SMSC for the state of a message (query_sm) on this bind, if it is bound for
        sending now; QueryUnanswered if not, or if no answer comes (ask again later: a query is
        never worth waiting for a bind)."""
        conn = self._conn
        if self._closing or conn is None or not conn.ready:
            raise QueryUnanswered(f"bind {self.config.name!r} cannot send a query_sm now")
        return await conn.query(pdu)

    def _pace(self, result: SubmitResult) -> None:
        """Slow the bind down when the carrier throttles, speed it up again when it accepts."""
        throttle = self._throttle
        if result.command_status in _THROTTLING:
            if throttle.throttled():
                self.log.warning(
                    "throughput.lowered",
                    rate=round(throttle.rate or 0.0, 2),
                    limit=throttle.limit,
                    status=status_name(result.command_status),
                )
        elif result.ok and throttle.accepted():
            self.log.info("throughput.raised", rate=throttle.rate and round(throttle.rate, 2),
                          limit=throttle.limit)  # fmt: skip

    async def _wait_ready(self) -> Connection:
        while True:
            if self._closing:
                raise SubmitNotSent(f"client {self.config.name!r} is closing")
            conn = self._conn
            if conn is not None and conn.ready:
                return conn
            await self._changed.wait()

    # --- lifecycle --------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, bind and serve; reconnect with back-off; return only after :meth:`close`."""
        if self._running:
            raise RuntimeError(f"client {self.config.name!r} is already running")
        self._running = True
        self._stopped.clear()
        failures = 0
        try:
            while not self._closing:
                outcome = await self._connect_and_serve()
                if self._closing:
                    break
                if outcome == "served":
                    failures = 0
                    delay = self._backoff(0)
                elif isinstance(outcome, BindRefused):
                    delay = self.config.bind_refused_backoff * (1 + 0.1 * self._rng.random())
                else:
                    delay = self._backoff(failures)
                    failures += 1
                self.log.info("reconnect.scheduled", delay=round(delay, 3))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), delay)
        finally:
            self._running = False
            self._stopped.set()

    def _backoff(self, failures: int) -> float:
        """The shared :func:`~carriers.backoff.backoff_delay` from ``reconnect_min`` up to
        ``reconnect_max``: its jitter keeps a fleet of gateways that lost the same carrier from
        reconnecting in lockstep."""
        config = self.config
        return backoff_delay(failures + 1, config.reconnect_min, config.reconnect_max, self._rng)

    def _new_connection(self) -> Connection:
        # The connection gets what it uses and nothing else: it never sees the client.
        return Connection(
            self.config,
            log=self.log,
            clock=self.clock,
            stats=self.stats,
            on_deliver=self.on_deliver,
            release_slot=self._window.release,
            track=self._track,
        )

    async def _connect_and_serve(self) -> object:
        config = self.config
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    self._new_connection,
                    config.host,
                    config.port,
                    ssl=config.ssl,
                    server_hostname=config.tls_server_name if config.ssl else None,
                ),
                config.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            self.log.warning(
                "connect.failed", host=config.host, port=config.port, error=str(exc) or repr(exc)
            )
            return "connect_failed"
        if self._closing:  # close() ran while we were connecting
            conn.close("closed")
            await conn.closed
            return "closed"
        self._connecting = conn
        try:
            outcome = await conn.bind_outcome
        finally:
            self._connecting = None
        if self._closing:  # close() saw this connection in _connecting and shuts it down
            await conn.closed
            return "closed"
        if isinstance(outcome, BindRefused):
            self.stats.bind_refusals += 1
            self.log.error(
                "bind.refused",
                system_id=config.system_id,
                status=status_name(outcome.command_status),
            )
            await conn.closed
            return outcome
        if outcome != "bound":
            self.log.warning("bind.failed", system_id=config.system_id, reason=outcome)
            conn.close(str(outcome))
            await conn.closed
            return "bind_failed"
        self._conn = conn
        self._notify()
        try:
            reason = await conn.closed
        finally:
            self._conn = None
            self._notify()
        if self._closing:
            self.log.info("bind.closed", system_id=config.system_id)
        else:
            self.stats.reconnects += 1
            self.log.warning("bind.lost", system_id=config.system_id, reason=reason)
        return "served"

    async def close(self, timeout: float = 5.0) -> None:
        """Stop new submits, let in-flight ones finish (bounded by ``timeout``), unbind, close.

        Submits still unanswered when the time is up fail with SubmitUncertain; deliver
        handlers still running are cancelled (their deliver_sm will be resent by the SMSC).
        ``run()`` returns once this is done.
        """
        if not self._closing:
            self._closing = True
            self._notify()
            self._wakeup.set()
            conn = self._conn or self._connecting
            if conn is not None:
                await conn.shutdown(timeout)
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._running:
            await self._stopped.wait()
