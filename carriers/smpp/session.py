"""The ESME (client) side of one SMPP 3.4 connection, as a pure state machine.

Modelled on h11's ``Connection``: the session never touches a socket or a clock. Its owner

* feeds it bytes from the peer with :meth:`Session.receive_data` and then drains typed events
  (:mod:`carriers.smpp.events`) with :meth:`Session.next_event`;
* gives it commands (:meth:`~Session.bind`, :meth:`~Session.submit`, ...) that append PDUs to an
  outgoing buffer, and writes whatever :meth:`Session.data_to_send` returns;
* calls :meth:`Session.tick` with the current time whenever :meth:`Session.next_deadline` passes,
  which expires unanswered requests and sends enquire_link on an idle link.

Because of that, every protocol rule (window, sequence numbers, bind states, what to answer to
garbage) is tested by feeding bytes, without sockets or sleeps; the asyncio client is a thin loop.

Replies that need no decision are sent by the session itself: enquire_link_resp, unbind_resp,
generic_nack for unknown or malformed requests. deliver_sm is the exception: it is acknowledged
only when the owner says so, after it has durably recorded the receipt.
"""

from __future__ import annotations

import enum
from collections import deque

from carriers.smpp import constants as c
from carriers.smpp.codec import DEFAULT_MAX_FRAME, FrameReader, decode, encode_with_sequence
from carriers.smpp.errors import (
    FramingError,
    LocalProtocolError,
    NotBound,
    PduDecodeError,
    WindowFull,
)
from carriers.smpp.events import (
    BindFailed,
    Bound,
    DeliverReceived,
    Event,
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
from carriers.smpp.pdus import (
    BIND_REQUESTS,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    Unbind,
    UnbindResp,
)

MAX_SEQUENCE = 0x7FFFFFFF


class BindState(enum.Enum):
    OPEN = "open"  # connected, not bound
    BINDING = "binding"  # bind sent, no answer yet
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBINDING = "unbinding"  # our unbind sent
    CLOSED = "closed"  # nothing more may be sent; the owner closes the connection


_BOUND_STATE = {
    c.BIND_TRANSMITTER: BindState.BOUND_TX,
    c.BIND_RECEIVER: BindState.BOUND_RX,
    c.BIND_TRANSCEIVER: BindState.BOUND_TRX,
}
_BOUND = frozenset(_BOUND_STATE.values())
_CAN_SUBMIT = frozenset({BindState.BOUND_TX, BindState.BOUND_TRX})
_CAN_RECEIVE = frozenset({BindState.BOUND_RX, BindState.BOUND_TRX})
# Requests that have no response (answering them would be a protocol error of our own).
_NO_RESPONSE = frozenset({c.ALERT_NOTIFICATION, c.OUTBIND})


class Session:
    """Protocol state of one ESME connection. See the module docstring for the contract.

    ``window`` limits outstanding submit_sm only: bind, enquire_link and unbind must get through
    even when the window is full, or a saturated link could never prove it is alive.
    """

    def __init__(
        self,
        *,
        window: int = 10,
        response_timeout: float = 30.0,
        enquire_link_interval: float = 30.0,
        max_frame: int = DEFAULT_MAX_FRAME,
        late_response_window: float = 0.0,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        if late_response_window < 0:
            raise ValueError(f"late_response_window must be >= 0, got {late_response_window}")
        self.window = window
        self.response_timeout = response_timeout
        # A submit_sm unanswered in time leaves the window, but for this long after its timeout
        # a response to it is still recognised (LateSubmitResponse) instead of being unmatched.
        self.late_response_window = late_response_window
        # seq -> deadline, in deadline order, of timed-out submits whose answer may still come.
        self._late: dict[int, float] = {}
        self.enquire_link_interval = enquire_link_interval
        self.state = BindState.OPEN
        self._reader = FrameReader(max_frame)
        self._out = bytearray()
        self._events: deque[Event] = deque()
        # seq -> (command_id, deadline). Insertion order is deadline order (one timeout for all
        # requests, time never goes back), so the first entry is always the next to expire.
        self._pending: dict[int, tuple[int, float]] = {}
        self._submits = 0
        self._next_seq = 1
        # deliver_sm (and data_sm) awaiting our answer: sequence number -> the response's class
        self._unacked: dict[int, type[DeliverSmResp] | type[DataSmResp]] = {}
        self._enquire_seq: int | None = None
        self._now = 0.0
        self._last_received = 0.0
        self._bind_kind = 0

    # --- properties -------------------------------------------------------------------------
    @property
    def bound(self) -> bool:
        return self.state in _BOUND

    @property
    def window_free(self) -> int:
        """How many more submit_sm may be sent before a response must come back."""
        return self.window - self._submits

    @property
    def outstanding(self) -> int:
        """Requests of ours (any kind) still waiting for their response."""
        return len(self._pending)

    @property
    def outstanding_submits(self) -> int:
        return self._submits

    # --- commands ---------------------------------------------------------------------------
    def bind(
        self,
        kind: str,
        system_id: str,
        password: str,
        system_type: str = "",
        addr_ton: int = 0,
        addr_npi: int = 0,
        address_range: str = "",
        *,
        interface_version: int = c.SMPP_VERSION_34,
        now: float,
    ) -> int:
        """Send bind_transmitter/receiver/transceiver (``kind``); returns its sequence number."""
        if self.state is not BindState.OPEN:
            raise LocalProtocolError(f"cannot bind in state {self.state.value}")
        try:
            cls = BIND_REQUESTS[kind]
        except KeyError:
            raise ValueError(f"bind kind {kind!r} is not one of {sorted(BIND_REQUESTS)}") from None
        pdu = cls(
            system_id=system_id,
            password=password,
            system_type=system_type,
            addr_ton=addr_ton,
            addr_npi=addr_npi,
            address_range=address_range,
            interface_version=interface_version,
        )
        seq = self._send_request(pdu, now)
        self.state = BindState.BINDING
        self._bind_kind = cls.command_id
        self._last_received = now
        return seq

    def submit(self, pdu: SubmitSm, now: float) -> int:
        """Send ``pdu`` with a fresh sequence number, which is returned.

        Raises :class:`NotBound` unless bound as transmitter or transceiver, :class:`WindowFull`
        when ``window`` submits are unanswered, :class:`PduEncodeError` for an invalid PDU (in
        which case nothing was sent and no sequence number used).
        """
        if self.state not in _CAN_SUBMIT:
            raise NotBound(f"cannot submit_sm in state {self.state.value}")
        if self._submits >= self.window:
            raise WindowFull(f"all {self.window} window slots hold unanswered submit_sm")
        if type(pdu) is not SubmitSm:
            raise TypeError(f"submit() takes a SubmitSm, not {type(pdu).__name__}")
        seq = self._send_request(pdu, now)
        self._submits += 1
        return seq

    def query(self, pdu: QuerySm, now: float) -> int:
        """Send query_sm (the state of a message we submitted); returns its sequence number.

        Answered by QueryAnswered or QueryFailed, or RequestTimedOut. Not counted in the submit
        window: a query is small, and asked only of messages already sent. Raises NotBound
        unless bound as transmitter or transceiver (query_sm is an ESME → SMSC request).
        """
        if self.state not in _CAN_SUBMIT:
            raise NotBound(f"cannot query_sm in state {self.state.value}")
        if type(pdu) is not QuerySm:
            raise TypeError(f"query() takes a QuerySm, not {type(pdu).__name__}")
        return self._send_request(pdu, now)

    def enquire_link(self, now: float) -> int:
        """Send enquire_link (or return the one already outstanding)."""
        if self.state not in _BOUND:
            raise NotBound(f"cannot enquire_link in state {self.state.value}")
        if self._enquire_seq is None:
            self._enquire_seq = self._send_request(EnquireLink(), now)
        return self._enquire_seq

    def unbind(self, now: float) -> int:
        """Send unbind. Responses to outstanding requests are still processed until Unbound."""
        if self.state not in _BOUND:
            raise NotBound(f"cannot unbind in state {self.state.value}")
        seq = self._send_request(Unbind(), now)
        self.state = BindState.UNBINDING
        return seq

    def acknowledge_deliver(self, seq: int, command_status: int = c.ESME_ROK) -> None:
        """Answer the deliver_sm ``seq`` (from :class:`DeliverReceived`).

        Use ``ESME_RX_T_APPN`` to make the SMSC retry later. After the connection closed this is
        a no-op: the SMSC will redeliver on the next bind.
        """
        if self.state is BindState.CLOSED:
            self._unacked.pop(seq, None)
            return
        try:
            response = self._unacked.pop(seq)
        except KeyError:
            raise LocalProtocolError(
                f"deliver_sm {seq} is not awaiting an acknowledgement (acked twice?)"
            ) from None
        self._out += encode_with_sequence(response(command_status=command_status), seq)

    def data_to_send(self) -> bytes:
        """Everything the commands and automatic replies produced since the last call."""
        data = bytes(self._out)
        self._out.clear()
        return data

    # --- input ------------------------------------------------------------------------------
    def receive_data(self, data: bytes, now: float | None = None) -> None:
        """Feed bytes from the peer; the events they cause are then in :meth:`next_event`.

        ``now`` marks the link as alive at that time (for enquire_link); without it, the time
        of the last command or tick is used.
        """
        if self.state is BindState.CLOSED:
            return
        if now is not None:
            self._now = now
        self._last_received = self._now
        reader = self._reader
        reader.feed(data)
        try:
            for frame in reader:
                self._handle_frame(frame)
                if self.state is BindState.CLOSED:
                    return
        except FramingError as exc:
            self._fail(f"framing_lost: {exc}")

    def next_event(self) -> Event | None:
        """The next event, or None when everything received so far has been reported."""
        return self._events.popleft() if self._events else None

    # --- time -------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Expire overdue requests and keep an idle link alive. Events go to :meth:`next_event`."""
        self._now = now
        pending = self._pending
        while pending and self.state is not BindState.CLOSED:
            seq = next(iter(pending))
            command_id, deadline = pending[seq]
            if deadline > now:
                break
            del pending[seq]
            self._expired(seq, command_id)
        late = self._late
        while late and self.state is not BindState.CLOSED:
            seq = next(iter(late))
            if late[seq] > now:
                break
            del late[seq]
            self._events.append(LateWindowClosed(seq))
        if (
            self.state in _BOUND
            and self._enquire_seq is None
            and now - self._last_received >= self.enquire_link_interval
        ):
            self._enquire_seq = self._send_request(EnquireLink(), now)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must next be called, or None if nothing is timed."""
        if self.state is BindState.CLOSED:
            return None
        deadline = None
        if self._pending:
            deadline = self._pending[next(iter(self._pending))][1]
        if self._late:
            late = self._late[next(iter(self._late))]
            if deadline is None or late < deadline:
                deadline = late
        if self.state in _BOUND and self._enquire_seq is None:
            keepalive = self._last_received + self.enquire_link_interval
            if deadline is None or keepalive < deadline:
                deadline = keepalive
        return deadline

    # --- internals --------------------------------------------------------------------------
    def _send_request(self, pdu: Pdu, now: float) -> int:
        seq = self._next_seq
        while seq in self._pending or seq in self._late:
            seq = seq % MAX_SEQUENCE + 1
        frame = encode_with_sequence(pdu, seq)  # may raise: nothing is recorded before this
        self._next_seq = seq % MAX_SEQUENCE + 1
        self._now = now
        self._pending[seq] = (pdu.command_id, now + self.response_timeout)
        self._out += frame
        return seq

    def _fail(self, reason: str) -> None:
        self.state = BindState.CLOSED
        self._events.append(ProtocolError(reason))

    def _expired(self, seq: int, command_id: int) -> None:
        if command_id == c.ENQUIRE_LINK:
            self._enquire_seq = None
            self._fail("enquire_link_timeout")
            return
        if command_id == c.SUBMIT_SM:
            self._submits -= 1
            if self.late_response_window > 0:
                self._late[seq] = self._now + self.late_response_window
        elif command_id == c.UNBIND:
            self.state = BindState.CLOSED
        elif command_id in _BOUND_STATE:
            self.state = BindState.OPEN
        self._events.append(RequestTimedOut(seq, command_id))

    def _handle_frame(self, frame: bytes) -> None:
        try:
            pdu = decode(frame)
        except PduDecodeError as exc:
            if not exc.command_id & c.RESPONSE_BIT:
                self._reply(GenericNack(command_status=exc.command_status), exc.sequence_number)
                refused = RequestRefused(
                    exc.sequence_number, exc.command_id, exc.command_status, str(exc)
                )
                self._events.append(refused)
            # A garbled response is dropped: its request times out and is reported then.
            return
        command_id = pdu.command_id
        if command_id & c.RESPONSE_BIT:
            self._handle_response(pdu)
        elif command_id == c.DELIVER_SM:
            self._handle_deliver(pdu, DeliverSmResp)  # type: ignore[arg-type]
        elif command_id == c.DATA_SM:
            # A receipt or MO message in a data_sm: read as the deliver_sm it stands for,
            # answered with data_sm_resp.
            self._handle_deliver(pdu.as_deliver(), DataSmResp)  # type: ignore[attr-defined]
        elif command_id == c.ENQUIRE_LINK:
            self._reply(EnquireLinkResp(), pdu.sequence_number)
        elif command_id == c.UNBIND:
            self._reply(UnbindResp(), pdu.sequence_number)
            self.state = BindState.CLOSED
            self._events.append(PeerUnbound())
        elif command_id in _NO_RESPONSE:
            body = getattr(pdu, "body", b"")
            self._events.append(Notified(pdu.sequence_number, command_id, body))
        else:
            # Unknown, unsupported (data_sm, query_sm...) or SMSC-only (submit_sm, bind).
            self._reply(GenericNack(command_status=c.ESME_RINVCMDID), pdu.sequence_number)
            self._events.append(
                RequestRefused(
                    pdu.sequence_number, command_id, c.ESME_RINVCMDID, "command not supported"
                )
            )

    def _reply(self, pdu: Pdu, seq: int) -> None:
        self._out += encode_with_sequence(pdu, seq)

    def _handle_deliver(
        self, pdu: DeliverSm, response: type[DeliverSmResp] | type[DataSmResp]
    ) -> None:
        seq = pdu.sequence_number
        receiving = self.state in _CAN_RECEIVE or (
            self.state is BindState.UNBINDING and self._bind_kind != c.BIND_TRANSMITTER
        )
        if not receiving:
            self._reply(response(command_status=c.ESME_RINVBNDSTS), seq)
        elif seq in self._unacked:
            # The SMSC resent before we answered: the first copy's ack will answer it.
            return
        else:
            self._unacked[seq] = response
            self._events.append(DeliverReceived(seq, pdu))

    def _handle_response(self, pdu: Pdu) -> None:
        seq = pdu.sequence_number
        command_id = pdu.command_id
        status = pdu.command_status
        entry = self._pending.get(seq)
        nack = command_id == c.GENERIC_NACK
        if entry is None and seq in self._late and (nack or command_id == c.SUBMIT_SM_RESP):
            del self._late[seq]
            if nack and status == c.ESME_ROK:
                status = c.ESME_RSYSERR
            message_id = None if nack or status != c.ESME_ROK else pdu.message_id  # type: ignore[attr-defined]
            self._events.append(LateSubmitResponse(seq, status, message_id))
            return
        if entry is None or not (nack or command_id == entry[0] | c.RESPONSE_BIT):
            self._events.append(UnmatchedResponse(seq, command_id, status))
            return
        del self._pending[seq]
        request = entry[0]
        failed = nack or status != c.ESME_ROK
        if failed and status == c.ESME_ROK:
            status = c.ESME_RSYSERR  # a generic_nack claiming success still refused the request
        if request == c.SUBMIT_SM:
            self._submits -= 1
            if failed:
                self._events.append(SubmitRejected(seq, status))
            else:
                self._events.append(SubmitAccepted(seq, pdu.message_id))  # type: ignore[attr-defined]
        elif request == c.QUERY_SM:
            if failed:
                self._events.append(QueryFailed(seq, status))
            else:
                answer: QuerySmResp = pdu  # type: ignore[assignment]
                self._events.append(
                    QueryAnswered(
                        seq,
                        answer.message_id,
                        answer.message_state,
                        answer.final_date,
                        answer.error_code,
                    )
                )
        elif request == c.ENQUIRE_LINK:
            self._enquire_seq = None
        elif request == c.UNBIND:
            self.state = BindState.CLOSED
            self._events.append(Unbound())
        elif request in _BOUND_STATE:
            if failed:
                self.state = BindState.OPEN
                self._events.append(BindFailed(status))
            else:
                self.state = _BOUND_STATE[request]
                self._events.append(Bound(pdu.system_id))  # type: ignore[attr-defined]
