"""An SMSC simulator: a real SMPP 3.4 server on TCP for tests, benchmarks and demos.

It behaves like a well-mannered carrier: checks bind credentials, answers every submit_sm with a
fresh message id, and ``receipt_delay`` later sends a delivery receipt (esm_class 0x04, Appendix B
text plus receipted_message_id and message_state TLVs) to a receiver or transceiver bind of the
same system_id, preferring the connection the message came in on. Like a real SMSC it keeps a
receipt until a deliver_sm_resp ESME_ROK comes back, redelivering on error or after a reconnect.

Tests steer it with a few switches (``hold_responses``, ``disconnect_all``, ``submit_status``)
and wait on its counters with :meth:`Simulator.wait_for` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import random
import ssl as ssl_module
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from carriers.sim.owed import OwedDeliveries
from carriers.sim.rules import DELIVERED, Outcome, Rule, outcome_for
from carriers.sim.smsc import (
    BindRequested,
    ClientUnbound,
    DeliverAnswered,
    LinkEnquired,
    QueryReceived,
    SmscSession,
    StreamBroken,
    SubmitReceived,
)
from carriers.smpp import constants as c
from carriers.smpp.pdus import DeliverSm, QuerySm, QuerySmResp, SubmitSm, Tlv, _Bind
from carriers.smpp.receipts import format_receipt_text, is_receipt, state_for_stat
from carriers.smpp.text import encode_text, message_text

__all__ = ["ReceivedSubmit", "Simulator", "SimulatorConfig", "SimulatorStats"]


@dataclass(frozen=True)
class SimulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port; read Simulator.port after start()
    system_id: str = "smsgw"
    password: str = "secret"
    receipt_delay: float = 0.05
    message_id_format: str = "hex"  # "hex" | "decimal": carriers use both
    #: How receipts write that id: None, as the response (and in the receipted_message_id TLV);
    #: "hex" | "decimal": the same number in that base, in the text only (no TLV), as carriers
    #: that mix the two do.
    receipt_id_format: str | None = None
    send_receipts: bool = True
    receipt_retry_delay: float = 1.0  # after a deliver_sm answered with an error
    record_submits: bool = True  # keep submits in stats.submitted (off for benchmarks)
    record_limit: int = 100_000  # only the newest are kept: a demo daemon runs for weeks
    #: Decides the submit_sm_resp status per message (e.g. reject a test number); None: all OK.
    submit_status: Callable[[SubmitSm], int] | None = None
    #: Decides the receipt per message as (stat, err), e.g. ("UNDELIV", "001"); None: DELIVRD.
    receipt_outcome: Callable[[SubmitSm], tuple[str, str]] | None = None
    #: Answer ESME_RTHROTTLED to submits past this many accepted in the last second (per
    #: simulator, as a carrier caps an account); None: no cap.
    max_submit_rate: float | None = None
    #: Serve SMPP over TLS with this context (certificate loaded); None: plain TCP.
    ssl: ssl_module.SSLContext | None = None
    #: Outcomes by destination pattern (carriers/sim/rules.py), the first match deciding; they
    #: apply before `submit_status` / `receipt_outcome`, which see only unmatched submits.
    rules: tuple[Rule, ...] = ()
    #: Send each receipt before the submit_sm_resp it belongs to (as busy SMSCs sometimes do).
    receipts_first: bool = False
    #: Drop the connection right after answering every Nth submit (scripted); 0: never.
    disconnect_every: int = 0
    #: Keep receipts and MO messages not yet acknowledged in this file, delivered again after a
    #: restart once a receiver binds (carriers/sim/owed.py); None: in memory only.
    owed_path: str | None = None

    def __post_init__(self) -> None:
        if self.receipt_id_format not in (None, "hex", "decimal"):
            raise ValueError(
                "receipt_id_format must be 'hex', 'decimal' or None, "
                f"got {self.receipt_id_format!r}"
            )
        if self.message_id_format not in ("hex", "decimal"):
            raise ValueError(
                f"message_id_format must be 'hex' or 'decimal', got {self.message_id_format!r}"
            )


@dataclass(frozen=True, slots=True)
class ReceivedSubmit:
    """One submit_sm as the simulator saw it, for tests to inspect."""

    message_id: str
    system_id: str
    source_addr: str
    destination_addr: str
    short_message: bytes
    data_coding: int
    esm_class: int
    registered_delivery: int
    command_status: int
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    received_at: float = 0.0  # time.monotonic() when it arrived
    validity_period: str = ""


@dataclass
class SimulatorStats:
    connections: int = 0
    bind_attempts: int = 0
    binds: int = 0  # accepted binds
    submits: int = 0
    throttled: int = 0  # submits answered ESME_RTHROTTLED by max_submit_rate
    unanswered: int = 0  # submits left without a response by a no-response rule
    answered_late: int = 0  # submit_sm_resp held back by a late:SECONDS rule
    queries: int = 0  # query_sm answered (known message or not)
    scripted_disconnects: int = 0  # connections dropped by disconnect_every
    receipts_sent: int = 0  # deliver_sm receipts written (redeliveries included)
    receipts_acked: int = 0  # answered ESME_ROK
    deliver_errors: int = 0  # deliver_sm answered with an error (redelivered later)
    mo_sent: int = 0
    mo_acked: int = 0
    unbinds: int = 0
    enquire_links: int = 0
    #: Every bind request received, as sent (what an ESME announced about itself).
    bind_requests: list[_Bind] = field(default_factory=list)
    #: The newest submits received (oldest dropped past SimulatorConfig.record_limit).
    submitted: deque[ReceivedSubmit] = field(default_factory=deque)


class _Connection(asyncio.Protocol):
    """One ESME connection: feeds the sans-IO SmscSession, lets the Simulator decide."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.session = SmscSession()
        self.transport: asyncio.Transport | None = None
        self.outstanding: dict[int, DeliverSm] = {}
        self.held: list[tuple[int, str, int]] = []  # submit answers held back by the test
        self.submits = 0  # submit_sm received on this connection
        self._flush_scheduled = False

    @property
    def alive(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.sim._connections.add(self)
        self.sim.stats.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.sim._lost(self)

    def data_received(self, data: bytes) -> None:
        session = self.session
        session.receive_data(data)
        sim = self.sim
        while (event := session.next_event()) is not None:
            kind = type(event)
            if kind is SubmitReceived:
                sim._on_submit(self, event.seq, event.pdu)
            elif kind is QueryReceived:
                sim._on_query(self, event.seq, event.pdu)
            elif kind is DeliverAnswered:
                sim._on_deliver_answered(self, event.seq, event.command_status)
            elif kind is BindRequested:
                sim._on_bind(self, event.seq, event.pdu)
            elif kind is LinkEnquired:
                sim.stats.enquire_links += 1
            elif kind is ClientUnbound:
                sim.stats.unbinds += 1
                self.flush()
                self.transport.close()  # type: ignore[union-attr]
            elif kind is StreamBroken:
                sim.log.warning("sim.garbage_received", reason=event.reason)
                self.transport.abort()  # type: ignore[union-attr]
                return
        self.flush()
        sim._notify()

    def deliver(self, pdu: DeliverSm) -> None:
        seq = self.session.deliver(pdu)
        self.outstanding[seq] = pdu
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        data = self.session.data_to_send()
        if data and self.alive:
            self.transport.write(data)  # type: ignore[union-attr]


class Simulator:
    """The SMSC simulator server. Use as ``async with Simulator(config) as sim:``."""

    def __init__(self, config: SimulatorConfig | None = None, *, logger: Any = None) -> None:
        self.config = config or SimulatorConfig()
        self.log = (logger if logger is not None else structlog.get_logger()).bind(
            component="smsc_sim"
        )
        self.stats = SimulatorStats(submitted=deque(maxlen=self.config.record_limit))
        self.port: int = self.config.port
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._binds: dict[str, list[_Connection]] = defaultdict(list)
        self._pending: dict[str, deque[DeliverSm]] = defaultdict(deque)
        self._timers: set[asyncio.TimerHandle] = set()
        self._next_id = random.getrandbits(31)
        self._hold = False
        self._accepted_at: deque[float] = deque()  # for max_submit_rate
        self._changed = asyncio.Event()
        self._waiting = 0
        self._owed: OwedDeliveries | None = None
        self._owed_keys: dict[int, tuple[int, DeliverSm]] = {}  # id(pdu) -> (key, pdu)
        # What query_sm is told: message id -> (source_addr, final at (monotonic), state, err),
        # the newest `record_limit` accepted messages (an SMSC forgets old ones too).
        self._states: OrderedDict[str, tuple[str, float, int, int]] = OrderedDict()

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.config.host, self.config.port, ssl=self.config.ssl
        )
        self.port = self._server.sockets[0].getsockname()[1]
        owed = self._load_owed() if self.config.owed_path else 0
        self.log.info(
            "sim.started", host=self.config.host, port=self.port, tls=self.config.ssl is not None,
            owed=owed,
        )  # fmt: skip

    def _load_owed(self) -> int:
        """Open the owed file and schedule what an earlier run left undelivered."""
        self._owed = OwedDeliveries(self.config.owed_path)
        owed = self._owed.load()
        now = time.time()
        for item in owed:
            self._owed_keys[id(item.pdu)] = (item.key, item.pdu)
            self._later(max(0.0, item.due - now), item.system_id, item.pdu, None)
        return len(owed)

    @staticmethod
    def _answer_late(conn: _Connection, seq: int, message_id: str, status: int) -> None:
        if conn.transport is None or conn.transport.is_closing():
            return  # the link is gone: a response belongs to its session
        conn.session.answer_submit(seq, message_id, status)
        conn.flush()

    def _owe(self, system_id: str, pdu: DeliverSm, delay: float) -> None:
        if self._owed is not None:
            self._owed_keys[id(pdu)] = (self._owed.add(system_id, pdu, delay), pdu)

    async def stop(self) -> None:
        """Close the listener and every connection; cancel pending receipts."""
        if self._server is not None:
            self._server.close()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self.disconnect_all()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._owed is not None:  # what is still owed stays in the file for the next run
            self._owed.close()
            self._owed = None
            self._owed_keys.clear()
        # Let connection_lost callbacks run so nothing fires after stop() returns.
        await asyncio.sleep(0)

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- steering (for tests) ---------------------------------------------------------------
    def disconnect_all(self) -> None:
        """Drop every connection abruptly, as a carrier's failing link would."""
        for conn in list(self._connections):
            if conn.transport is not None:
                conn.transport.abort()

    def hold_responses(self) -> None:
        """Stop answering submit_sm (they are recorded, answers kept) until released."""
        self._hold = True

    def release_responses(self) -> None:
        self._hold = False
        for conn in list(self._connections):
            for seq, message_id, status in conn.held:
                conn.session.answer_submit(seq, message_id, status)
            conn.held.clear()
            conn.flush()

    def queued(self, system_id: str | None = None) -> int:
        """deliver_sm waiting for a receiver of ``system_id`` to bind."""
        return len(self._pending.get(system_id or self.config.system_id, ()))

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Return once ``predicate()`` is true, re-checked after every protocol event.

        Raises ``TimeoutError`` after ``timeout``: tests fail loudly instead of hanging.
        """
        async with asyncio.timeout(timeout):
            while not predicate():
                self._waiting += 1
                try:
                    await self._changed.wait()
                finally:
                    self._waiting -= 1

    def send_mo(
        self,
        *,
        source_addr: str,
        destination_addr: str,
        text: str,
        encoding: str = "gsm7",
        system_id: str | None = None,
    ) -> None:
        """Queue an inbound (MO) message to a receiving bind of ``system_id``."""
        data_coding, data = encode_text(text, encoding)
        pdu = DeliverSm(
            source_addr_ton=c.TON_INTERNATIONAL,
            source_addr_npi=c.NPI_ISDN,
            source_addr=source_addr,
            destination_addr=destination_addr,
            data_coding=data_coding,
            short_message=data,
        )
        self._owe(system_id or self.config.system_id, pdu, 0.0)
        self._route(system_id or self.config.system_id, pdu, None)

    def submits_by_connection(self) -> list[int]:
        """submit_sm received on each connection bound now (how a pool spread its submits)."""
        return [conn.submits for binds in self._binds.values() for conn in binds]

    def send_deliver(self, pdu: DeliverSm, *, system_id: str | None = None) -> None:
        """Queue any deliver_sm as it is (a malformed receipt, say) to a receiving bind."""
        self._owe(system_id or self.config.system_id, pdu, 0.0)
        self._route(system_id or self.config.system_id, pdu, None)

    # --- protocol decisions -----------------------------------------------------------------
    def _notify(self) -> None:
        if self._waiting:
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    def _on_bind(self, conn: _Connection, seq: int, pdu: _Bind) -> None:
        self.stats.bind_attempts += 1
        self.stats.bind_requests.append(pdu)
        config = self.config
        if pdu.system_id != config.system_id:
            status = c.ESME_RINVSYSID
        elif pdu.password != config.password:
            status = c.ESME_RINVPASWD
        else:
            status = c.ESME_ROK
        conn.session.answer_bind(seq, pdu.command_id, pdu.system_id, status)
        if status != c.ESME_ROK:
            self.log.info("sim.bind_refused", system_id=pdu.system_id, status=c.status_name(status))
            return
        self.stats.binds += 1
        self._binds[pdu.system_id].append(conn)
        self.log.info("sim.bound", system_id=pdu.system_id, command=c.command_name(pdu.command_id))
        if conn.session.can_receive:
            pending = self._pending[pdu.system_id]
            while pending:
                self._deliver(conn, pending.popleft())

    def _new_message_id(self) -> str:
        self._next_id += 1
        if self.config.message_id_format == "decimal":
            return str(self._next_id)
        return f"{self._next_id:010x}"

    def _remember(self, pdu: SubmitSm, message_id: str, rule: Outcome | None, at: float) -> None:
        """The final state query_sm will report from `at` on: the receipt's stat, whether or not
        the receipt is sent (a carrier without receipts still delivers)."""
        if rule is not None and rule.receipt is not None:
            stat, err = rule.receipt
        elif self.config.receipt_outcome is not None:
            stat, err = self.config.receipt_outcome(pdu)
        else:
            stat, err = "DELIVRD", "000"
        state = state_for_stat(stat) or c.UNKNOWN
        self._states[message_id] = (pdu.source_addr, at, state, int(err) if err.isdigit() else 0)
        while len(self._states) > self.config.record_limit:
            self._states.popitem(last=False)

    def _on_query(self, conn: _Connection, seq: int, pdu: QuerySm) -> None:
        self.stats.queries += 1
        known = self._states.get(pdu.message_id)
        if known is None or known[0] != pdu.source_addr:
            answer = QuerySmResp(command_status=c.ESME_RQUERYFAIL)
        else:
            _source, final_at, state, err = known
            if time.monotonic() < final_at:
                answer = QuerySmResp(message_id=pdu.message_id, message_state=c.ENROUTE)
            else:
                final = datetime.now(UTC).strftime("%y%m%d%H%M%S") + "000+"
                answer = QuerySmResp(
                    message_id=pdu.message_id,
                    final_date=final,
                    message_state=state,
                    error_code=min(err, 255),
                )
        conn.session.answer_query(seq, answer)

    def _on_submit(self, conn: _Connection, seq: int, pdu: SubmitSm) -> None:
        self.stats.submits += 1
        conn.submits += 1
        config = self.config
        message_id = self._new_message_id()
        rule = outcome_for(config.rules, pdu.destination_addr) if config.rules else None
        if rule is DELIVERED:
            rule = None  # no rule matched: the callables (or the defaults) decide
        if rule is not None:
            status = rule.submit_status
        elif config.submit_status is not None:
            status = config.submit_status(pdu)
        else:
            status = c.ESME_ROK
        if status == c.ESME_ROK and config.max_submit_rate is not None and self._over_rate():
            status = c.ESME_RTHROTTLED
            self.stats.throttled += 1
        system_id = conn.session.system_id or ""
        if config.record_submits:
            self.stats.submitted.append(
                ReceivedSubmit(
                    message_id=message_id,
                    system_id=system_id,
                    source_addr=pdu.source_addr,
                    destination_addr=pdu.destination_addr,
                    short_message=pdu.short_message,
                    data_coding=pdu.data_coding,
                    esm_class=pdu.esm_class,
                    registered_delivery=pdu.registered_delivery,
                    command_status=status,
                    source_addr_ton=pdu.source_addr_ton,
                    source_addr_npi=pdu.source_addr_npi,
                    dest_addr_ton=pdu.dest_addr_ton,
                    dest_addr_npi=pdu.dest_addr_npi,
                    received_at=time.monotonic(),
                    validity_period=pdu.validity_period,
                )
            )
        if rule is not None and not rule.respond:
            self.stats.unanswered += 1
            return  # never answered: the ESME's response timeout plays out
        late = rule.response_delay if rule is not None else 0.0
        if status == c.ESME_ROK:
            final_in = config.receipt_delay
            if rule is not None and rule.receipt_delay is not None:
                final_in = rule.receipt_delay
            self._remember(pdu, message_id, rule, time.monotonic() + late + final_in)
        receipt = None
        wants_receipt = config.send_receipts and pdu.registered_delivery & 0x03
        if status == c.ESME_ROK and wants_receipt and (rule is None or rule.receipt is not None):
            receipt = self._receipt_for(pdu, message_id, rule)
            delay = config.receipt_delay
            if rule is not None and rule.receipt_delay is not None:
                delay = rule.receipt_delay
            if config.receipts_first:
                delay = 0.0
            delay += late  # after the late response
            self._owe(system_id, receipt, delay)
            if config.receipts_first:
                self._route(system_id, receipt, conn)  # ahead of the response, on purpose
        if late > 0:
            self.stats.answered_late += 1
            asyncio.get_running_loop().call_later(
                late, self._answer_late, conn, seq, message_id, status
            )
        elif self._hold:
            conn.held.append((seq, message_id, status))
        else:
            conn.session.answer_submit(seq, message_id, status)
        if receipt is not None and not config.receipts_first:
            if delay > 0:
                self._later(delay, system_id, receipt, conn)
            else:
                self._route(system_id, receipt, conn)
        if config.disconnect_every and self.stats.submits % config.disconnect_every == 0:
            conn.flush()  # the answer goes out first; then the link drops, without an unbind
            if conn.transport is not None:
                conn.transport.close()
            self.stats.scripted_disconnects += 1

    def _over_rate(self) -> bool:
        """True if accepting one more submit now would pass `max_submit_rate` (1 s window)."""
        now = asyncio.get_running_loop().time()
        accepted = self._accepted_at
        while accepted and accepted[0] <= now - 1.0:
            accepted.popleft()
        if len(accepted) >= (self.config.max_submit_rate or 0):
            return True
        accepted.append(now)
        return False

    def _receipt_for(
        self, submit: SubmitSm, message_id: str, rule: Outcome | None = None
    ) -> DeliverSm:
        now = datetime.now()
        outcome = self.config.receipt_outcome
        if rule is not None and rule.receipt is not None:
            stat, err = rule.receipt
        else:
            stat, err = outcome(submit) if outcome is not None else ("DELIVRD", "000")
        receipt_id = message_id
        tlvs = (Tlv(c.RECEIPTED_MESSAGE_ID, message_id.encode("ascii") + b"\0"),)
        if self.config.receipt_id_format is not None:
            number = int(message_id, 16 if self.config.message_id_format == "hex" else 10)
            decimal = self.config.receipt_id_format == "decimal"
            receipt_id = str(number) if decimal else f"{number:x}"
            tlvs = ()
        text = format_receipt_text(
            receipt_id,
            submit_date=now,
            done_date=now,
            stat=stat,
            err=err,
            dlvrd=1 if stat == "DELIVRD" else 0,
            text=message_text(submit.short_message, submit.esm_class, submit.data_coding),
        )
        return DeliverSm(
            source_addr_ton=submit.dest_addr_ton,
            source_addr_npi=submit.dest_addr_npi,
            source_addr=submit.destination_addr,
            dest_addr_ton=submit.source_addr_ton,
            dest_addr_npi=submit.source_addr_npi,
            destination_addr=submit.source_addr,
            esm_class=c.ESM_CLASS_SMSC_DELIVERY_RECEIPT,
            # Receipt text is ASCII; non-ASCII message text is replaced, as carriers do.
            short_message=text.encode("ascii", errors="replace"),
            tlvs=(*tlvs, Tlv(c.MESSAGE_STATE, bytes([state_for_stat(stat) or c.UNKNOWN]))),
        )

    def _later(
        self, delay: float, system_id: str, pdu: DeliverSm, preferred: _Connection | None
    ) -> None:
        def fire() -> None:
            self._timers.discard(handle)
            self._route(system_id, pdu, preferred)

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(handle)

    def _route(self, system_id: str, pdu: DeliverSm, preferred: _Connection | None) -> None:
        conn = preferred
        if conn is None or not conn.alive or not conn.session.can_receive:
            conn = next(
                (b for b in self._binds.get(system_id, ()) if b.alive and b.session.can_receive),
                None,
            )
        if conn is None:
            self._pending[system_id].append(pdu)  # kept until a receiver binds
        else:
            self._deliver(conn, pdu)
        self._notify()

    def _deliver(self, conn: _Connection, pdu: DeliverSm) -> None:
        if is_receipt(pdu):
            self.stats.receipts_sent += 1
        else:
            self.stats.mo_sent += 1
        conn.deliver(pdu)

    def _on_deliver_answered(self, conn: _Connection, seq: int, status: int) -> None:
        pdu = conn.outstanding.pop(seq, None)
        if pdu is None:
            return
        if status == c.ESME_ROK:
            if is_receipt(pdu):
                self.stats.receipts_acked += 1
            else:
                self.stats.mo_acked += 1
            owed = self._owed_keys.pop(id(pdu), None)
            if owed is not None and self._owed is not None:
                self._owed.done(owed[0])
            return
        self.stats.deliver_errors += 1
        self._later(self.config.receipt_retry_delay, conn.session.system_id or "", pdu, None)

    def _lost(self, conn: _Connection) -> None:
        self._connections.discard(conn)
        system_id = conn.session.system_id
        if system_id is not None:
            binds = self._binds[system_id]
            if conn in binds:
                binds.remove(conn)
            # Unanswered deliver_sm go to another receiver, or wait for the next bind.
            outstanding = list(conn.outstanding.values())
            conn.outstanding.clear()
            for pdu in outstanding:
                self._route(system_id, pdu, None)
        conn.outstanding.clear()
        self._notify()
