"""One TCP connection of an :class:`~carriers.smpp.client.SmppClient`: the asyncio glue.

This is the "thin loop" around the sans-IO :class:`~carriers.smpp.session.Session`: bytes from
the socket go to ``receive_data``, the events that come out resolve submit futures and start
deliver handlers, and the session's outgoing buffer is written back. An ``asyncio.Protocol``
rather than streams because it costs no task switch and no ``drain()`` per PDU: writes made in
one loop iteration are coalesced into one ``transport.write``.

A connection lives from connect to close and is never reused: the client makes a new one (with a
new session) for every reconnect, so no state of a dead link can leak into the next.

It does not know the client: it is handed the bind's configuration and the few things it shares
with the client (logger, clock, counters, the deliver handler, and two callables: give back a
window slot, keep a deliver task alive), so the two modules do not import each other.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from carriers.smpp import constants as c
from carriers.smpp.bind_config import BindConfig
from carriers.smpp.errors import (
    BindRefused,
    LocalProtocolError,
    QueryUnanswered,
    SubmitNotSent,
    SubmitUncertain,
)
from carriers.smpp.events import (
    BindFailed,
    Bound,
    DeliverReceived,
    LateSubmitResponse,
    LateWindowClosed,
    Notified,
    PeerUnbound,
    ProtocolError,
    QueryAnswered,
    QueryFailed,
    RequestRefused,
    RequestTimedOut,
    SubmitAccepted,
    SubmitRejected,
    Unbound,
    UnmatchedResponse,
)
from carriers.smpp.pdus import DeliverSm, QuerySm, SubmitSm
from carriers.smpp.receipts import is_receipt
from carriers.smpp.results import ClientStats, QueryResult, SubmitResult
from carriers.smpp.session import BindState, Session

_MOVED_TO_LATE = SubmitUncertain("awaiting a late answer")  # a marker: the slot only is freed
_MIN_TIMER = 0.001  # never spin when the injected clock and the loop's disagree


class Connection(asyncio.Protocol):
    """Client-side state of one connection. Created by the client, driven by asyncio."""

    def __init__(
        self,
        config: BindConfig,
        *,
        log: Any,
        clock: Callable[[], float],
        stats: ClientStats,
        on_deliver: Callable[[DeliverSm], Awaitable[None]],
        release_slot: Callable[[], None],
        track: Callable[[asyncio.Task[None]], None],
    ) -> None:
        """``release_slot`` is called once per submit when its outcome is known (the caller took
        a window slot for it); ``track`` is given every deliver task, to cancel on close."""
        self.config = config
        self.log = log
        self.loop = asyncio.get_running_loop()
        self.clock = clock
        self.stats = stats
        self._on_deliver = on_deliver
        self._release_slot = release_slot
        self._track = track
        self.session = Session(
            window=config.window,
            response_timeout=config.response_timeout,
            enquire_link_interval=config.enquire_link_interval,
            late_response_window=config.late_response_window,
        )
        self.transport: asyncio.Transport | None = None
        #: Resolved once with "bound", a BindRefused, or the reason the link died first.
        self.bind_outcome: asyncio.Future[object] = self.loop.create_future()
        #: Resolved with the reason when the connection is gone.
        self.closed: asyncio.Future[str] = self.loop.create_future()
        self.close_reason: str | None = None
        self.waiters: dict[int, asyncio.Future[SubmitResult]] = {}
        self.queries: dict[int, asyncio.Future[QueryResult]] = {}
        # Timed-out submits still awaiting a late answer: out of the window, slot released.
        self.late_waiters: dict[int, asyncio.Future[SubmitResult]] = {}
        self._unwritten: set[int] = set()  # submits still in the session's outgoing buffer
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._idle = asyncio.Event()  # no submit awaiting a response, no deliver unanswered
        self._idle.set()
        self._delivers = 0

    # --- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        config = self.config
        self.session.bind(
            config.bind_type,
            config.system_id,
            config.password,
            config.system_type,
            config.addr_ton,
            config.addr_npi,
            config.address_range,
            interface_version=config.interface_version,
            now=self.clock(),
        )
        self._flush()
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        self.session.receive_data(data, self.clock())
        self._process_events()
        self._flush()
        self._arm_timer()

    def eof_received(self) -> bool | None:
        self._set_reason("peer_closed")
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._set_reason(f"connection_lost: {exc}" if exc else "closed")
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        reason = self.close_reason or "closed"
        for seq, _future in list(self.waiters.items()):
            if seq in self._unwritten:
                error: Exception = SubmitNotSent(f"connection lost before sending: {reason}")
            else:
                error = SubmitUncertain(f"connection lost before submit_sm_resp: {reason}")
            self._resolve(seq, error)
        for future in self.queries.values():
            if not future.done():
                future.set_exception(QueryUnanswered(f"connection lost: {reason}"))
        self.queries.clear()
        for seq in list(self.late_waiters):
            self._resolve_late(
                seq, SubmitUncertain(f"connection lost before a late submit_sm_resp: {reason}")
            )
        if not self.bind_outcome.done():
            self.bind_outcome.set_result(reason)
        if not self.closed.done():
            self.closed.set_result(reason)
        self._idle.set()

    # --- used by the client -----------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Bound for sending and not closing: a submit may go out on this connection."""
        return (
            self.session.state in (BindState.BOUND_TX, BindState.BOUND_TRX)
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def submit(self, pdu: SubmitSm) -> asyncio.Future[SubmitResult]:
        """Queue ``pdu``; the future resolves with its result or a SubmitUncertain/NotSent."""
        seq = self.session.submit(pdu, self.clock())
        future: asyncio.Future[SubmitResult] = self.loop.create_future()
        self.waiters[seq] = future
        self._unwritten.add(seq)
        self._idle.clear()
        self._flush_soon()
        # Always: a timer already armed for a later deadline (the keepalive) must be brought
        # forward to this response's; `_arm_timer` keeps one that fires first.
        self._arm_timer()
        return future

    def close(self, reason: str) -> None:
        self._set_reason(reason)
        if self.transport is not None and not self.transport.is_closing():
            self._flush()
            self.transport.close()

    async def shutdown(self, timeout: float) -> None:
        """Graceful close: let in-flight work finish (bounded), unbind, close the socket."""
        deadline = self.loop.time() + timeout
        if self.session.bound:
            try:
                await asyncio.wait_for(self._idle.wait(), timeout)
            except TimeoutError:
                self.log.warning(
                    "bind.close_timed_out", in_flight=len(self.waiters), delivers=self._delivers
                )
        if self.session.bound and self.transport is not None and not self.transport.is_closing():
            self.session.unbind(self.clock())
            self._flush()
            self._arm_timer()
            remaining = max(0.0, deadline - self.loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.closed), remaining)
        self.close("closed")
        await self.closed

    # --- internals --------------------------------------------------------------------------
    def _set_reason(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason

    def _flush_soon(self) -> None:
        """Write what the session holds at the end of this loop iteration, with whatever else
        the iteration adds: one ``transport.write`` for all of it."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        data = self.session.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self._unwritten.clear()

    def _arm_timer(self) -> None:
        deadline = self.session.next_deadline()
        if deadline is None:
            return
        if self._timer is not None:
            if self._timer_at <= deadline:
                return  # fires first; it re-arms after ticking
            self._timer.cancel()
        self._timer_at = deadline
        delay = max(deadline - self.clock(), _MIN_TIMER)
        self._timer = self.loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.session.tick(self.clock())
        self._process_events()
        self._flush()
        self._arm_timer()

    def query(self, pdu: QuerySm) -> asyncio.Future[QueryResult]:
        """Send ``pdu``; the future resolves with the answer, or QueryUnanswered."""
        seq = self.session.query(pdu, self.clock())
        future: asyncio.Future[QueryResult] = self.loop.create_future()
        self.queries[seq] = future
        self.stats.queries += 1
        self._flush_soon()
        self._arm_timer()
        return future

    def _answer_query(self, seq: int, outcome: QueryResult | Exception) -> None:
        _settle(self.queries.pop(seq, None), outcome)

    def _resolve(self, seq: int, outcome: SubmitResult | Exception) -> None:
        future = self.waiters.pop(seq, None)
        if future is None:
            return
        self._release_slot()
        if not self.waiters and not self._delivers:
            self._idle.set()
        if outcome is not _MOVED_TO_LATE:  # moved: it waits on for a late answer
            _settle(future, outcome)

    def _resolve_late(self, seq: int, outcome: SubmitResult | Exception) -> None:
        _settle(self.late_waiters.pop(seq, None), outcome)

    def _process_events(self) -> None:
        session = self.session
        stats = self.stats
        while (event := session.next_event()) is not None:
            kind = type(event)
            if kind is SubmitAccepted:
                stats.accepted += 1
                self._resolve(event.seq, SubmitResult(c.ESME_ROK, event.message_id))
            elif kind is SubmitRejected:
                stats.rejected += 1
                self._resolve(event.seq, SubmitResult(event.command_status, None))
                if event.command_status == c.ESME_RINVBNDSTS:
                    # The SMSC no longer holds this bind as bound: every submit on it would be
                    # refused the same way. Bind again (the refused message is retried).
                    self.log.warning("bind.status_refused", system_id=self.config.system_id)
                    self.close("the SMSC answered ESME_RINVBNDSTS: binding again")
            elif kind is DeliverReceived:
                self._start_deliver(event)
            elif kind is RequestTimedOut:
                self._timed_out(event)
            elif kind is QueryAnswered:
                self._answer_query(
                    event.seq,
                    QueryResult(
                        c.ESME_ROK, event.message_state, event.final_date, event.error_code
                    ),
                )
            elif kind is QueryFailed:
                self._answer_query(event.seq, QueryResult(event.command_status, None))
            elif kind is LateSubmitResponse:
                self.log.warning(
                    "submit.late_response",
                    seq=event.seq,
                    status=c.status_name(event.command_status),
                    message_id=event.message_id,
                )
                if event.command_status == c.ESME_ROK:
                    stats.accepted += 1
                else:
                    stats.rejected += 1
                self._resolve_late(event.seq, SubmitResult(event.command_status, event.message_id))
            elif kind is LateWindowClosed:
                self.log.warning(
                    "submit.no_late_response",
                    seq=event.seq,
                    waited=self.config.late_response_window,
                )
                self._resolve_late(
                    event.seq,
                    SubmitUncertain(
                        f"no submit_sm_resp within {self.config.response_timeout}s, nor "
                        f"{self.config.late_response_window}s after"
                    ),
                )
            elif kind is Bound:
                self.log.info(
                    "bind.established",
                    system_id=self.config.system_id,
                    smsc_system_id=event.system_id,
                    bind_type=self.config.bind_type,
                )
                if not self.bind_outcome.done():
                    self.bind_outcome.set_result("bound")
            elif kind is BindFailed:
                if not self.bind_outcome.done():
                    self.bind_outcome.set_result(BindRefused(event.command_status))
                self.close("bind_refused")
            elif kind is PeerUnbound:
                self.close("peer_unbound")
            elif kind is Unbound:
                self.close("closed")
            elif kind is ProtocolError:
                self.close(event.reason)
            elif kind is Notified:
                self.log.info(
                    "pdu.notified",
                    seq=event.seq,
                    command=c.command_name(event.command_id),
                    body=event.body.hex(),
                )
            elif kind is RequestRefused:
                self.log.warning(
                    "pdu.refused",
                    seq=event.seq,
                    command_id=f"0x{event.command_id:08x}",
                    command=c.command_name(event.command_id),
                    status=c.status_name(event.command_status),
                    reason=event.reason,
                )
            elif kind is UnmatchedResponse:
                self.log.warning(
                    "response.unmatched",
                    seq=event.seq,
                    command=c.command_name(event.command_id),
                    status=c.status_name(event.command_status),
                )

    def _timed_out(self, event: RequestTimedOut) -> None:
        if event.command_id == c.SUBMIT_SM:
            self.stats.uncertain += 1
            late = self.config.late_response_window
            if late > 0:
                # Out of the window (its slot is free), but its answer may still come.
                self.log.warning("submit.timed_out", seq=event.seq, then=f"awaited {late}s more")
                future = self.waiters.get(event.seq)
                if future is not None:
                    self._resolve(event.seq, _MOVED_TO_LATE)
                    self.late_waiters[event.seq] = future
                return
            self.log.warning("submit.timed_out", seq=event.seq)
            self._resolve(
                event.seq,
                SubmitUncertain(f"no submit_sm_resp within {self.config.response_timeout}s"),
            )
        elif event.command_id == c.QUERY_SM:
            self._answer_query(
                event.seq,
                QueryUnanswered(f"no query_sm_resp within {self.config.response_timeout}s"),
            )
        elif event.command_id == c.UNBIND:
            self.close("closed")
        else:  # the bind went unanswered
            self.close("bind_timeout")

    def _start_deliver(self, event: DeliverReceived) -> None:
        stats = self.stats
        if is_receipt(event.pdu):
            stats.receipts += 1
        else:
            stats.inbound += 1
        self._delivers += 1
        self._idle.clear()
        task = self.loop.create_task(self._deliver(event.seq, event.pdu))
        self._track(task)

    async def _deliver(self, seq: int, pdu: DeliverSm) -> None:
        status = c.ESME_ROK
        try:
            await self._on_deliver(pdu)
        except Exception as exc:
            # Temporary application error: the SMSC keeps the message and retries later.
            status = c.ESME_RX_T_APPN
            self.log.error("deliver.handler_failed", seq=seq, error=repr(exc))
        finally:
            self._delivers -= 1
            if not self.waiters and not self._delivers:
                self._idle.set()
        try:
            self.session.acknowledge_deliver(seq, status)
        except LocalProtocolError:  # pragma: no cover - the session only reports a seq once
            return
        # With the other answers of this turn: receipts' handlers finish together (their store
        # commit is reported in one frame), and one write per deliver_sm_resp was one send
        # syscall per message on each side of the bind.
        self._flush_soon()


def _settle(future: asyncio.Future[Any] | None, outcome: object) -> None:
    """Resolve `future` with `outcome` (an exception is raised to its awaiter), unless nobody
    waits any more (absent, or cancelled by its caller)."""
    if future is None or future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
