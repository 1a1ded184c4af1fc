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
import ssl as ssl_module
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from carriers.smpp.codec import encode
from carriers.smpp.connection import Connection
from carriers.smpp.constants import status_name
from carriers.smpp.errors import BindRefused, PduEncodeError, SmppError, SubmitNotSent
from carriers.smpp.pdus import BIND_REQUESTS, BindTransmitter, DeliverSm, SubmitSm
from carriers.smpp.results import ClientStats, SubmitResult
from carriers.smpp.throttle import Throttle

__all__ = ["BindConfig", "ClientClosed", "ClientStats", "SmppClient", "SubmitResult"]


class ClientClosed(SmppError):
    """The client was closed while waiting for a bind."""


@dataclass(frozen=True)
class BindConfig:
    """Everything one bind needs; the gateway builds it from its configuration file."""

    name: str  # the carrier/bind name used in logs and metrics
    host: str
    port: int
    system_id: str
    password: str
    bind_type: str = "transceiver"  # "transmitter" | "receiver" | "transceiver"
    system_type: str = ""
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""
    window: int = 10
    throughput: float | None = None  # messages/s, fractional ok; None = unlimited
    enquire_link_interval: float = 30.0
    response_timeout: float = 30.0
    connect_timeout: float = 10.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    bind_refused_backoff: float = 60.0  # do not hammer a carrier that refuses our credentials
    ssl: ssl_module.SSLContext | None = None  # TLS to the SMSC (or a stunnel in front of it)

    def __post_init__(self) -> None:
        # Fail at configuration time with the field's name rather than at every connect.
        if self.bind_type not in BIND_REQUESTS:
            raise ValueError(
                f"bind_type {self.bind_type!r} for {self.name!r} must be one of "
                f"{sorted(BIND_REQUESTS)}"
            )
        try:
            encode(
                BindTransmitter(
                    system_id=self.system_id,
                    password=self.password,
                    system_type=self.system_type,
                    addr_ton=self.addr_ton,
                    addr_npi=self.addr_npi,
                    address_range=self.address_range,
                )
            )
        except PduEncodeError as exc:
            raise ValueError(f"bind {self.name!r}: {exc}") from None
        if self.window < 1:
            raise ValueError(f"bind {self.name!r}: window must be at least 1, got {self.window}")
        if self.reconnect_min <= 0 or self.reconnect_max < self.reconnect_min:
            raise ValueError(
                f"bind {self.name!r}: need 0 < reconnect_min <= reconnect_max, got "
                f"{self.reconnect_min} and {self.reconnect_max}"
            )

    def __repr__(self) -> str:
        return (
            f"BindConfig(name={self.name!r}, host={self.host!r}, port={self.port}, "
            f"system_id={self.system_id!r}, password='***', bind_type={self.bind_type!r})"
        )


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
        return await future

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
        """Exponential back-off with "equal jitter": half fixed, half random, so a fleet of
        gateways that lost the same carrier does not reconnect in lockstep."""
        base = min(self.config.reconnect_max, self.config.reconnect_min * 2**failures)
        return base / 2 + self._rng.random() * base / 2

    async def _connect_and_serve(self) -> object:
        config = self.config
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: Connection(self), config.host, config.port, ssl=config.ssl
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
