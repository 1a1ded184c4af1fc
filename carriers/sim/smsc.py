"""The SMSC side of one SMPP connection, sans-IO: the simulator's protocol logic.

The mirror image of :class:`carriers.smpp.session.Session`, and as small as a test carrier
allows: bytes in, events out for the decisions the simulator makes (accept this bind? which
message id?), automatic answers for the rest (enquire_link, unbind, garbage). Keeping it free of
sockets means the simulator's protocol rules are plain code that the server merely wires up.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from carriers.smpp import constants as c
from carriers.smpp.codec import FrameReader, decode, encode_with_sequence
from carriers.smpp.errors import FramingError, PduDecodeError
from carriers.smpp.pdus import (
    BindReceiverResp,
    BindTransceiverResp,
    BindTransmitterResp,
    DeliverSm,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    UnbindResp,
    _Bind,
)

_BIND_RESP = {
    c.BIND_TRANSMITTER: BindTransmitterResp,
    c.BIND_RECEIVER: BindReceiverResp,
    c.BIND_TRANSCEIVER: BindTransceiverResp,
}
_CAN_SUBMIT = frozenset({c.BIND_TRANSMITTER, c.BIND_TRANSCEIVER})
_CAN_RECEIVE = frozenset({c.BIND_RECEIVER, c.BIND_TRANSCEIVER})


@dataclass(frozen=True, slots=True)
class BindRequested:
    seq: int
    pdu: _Bind


@dataclass(frozen=True, slots=True)
class SubmitReceived:
    seq: int
    pdu: SubmitSm


@dataclass(frozen=True, slots=True)
class QueryReceived:
    seq: int
    pdu: QuerySm


@dataclass(frozen=True, slots=True)
class DeliverAnswered:
    seq: int
    command_status: int


@dataclass(frozen=True, slots=True)
class LinkEnquired:
    """An enquire_link came in (enquire_link_resp already queued)."""


@dataclass(frozen=True, slots=True)
class ClientUnbound:
    """The ESME unbound (unbind_resp already queued): close after writing."""


@dataclass(frozen=True, slots=True)
class StreamBroken:
    """Framing lost: close the connection without another word."""

    reason: str


SmscEvent = (
    BindRequested
    | SubmitReceived
    | QueryReceived
    | DeliverAnswered
    | LinkEnquired
    | ClientUnbound
    | StreamBroken
)


class SmscSession:
    """Protocol state of one ESME connection as seen from the SMSC."""

    def __init__(self, *, max_frame: int = 64 * 1024) -> None:
        self.bind_command: int | None = None  # BIND_* once a bind was accepted
        self.system_id: str | None = None
        self.closed = False
        self._reader = FrameReader(max_frame)
        self._out = bytearray()
        self._events: deque[SmscEvent] = deque()
        self._next_seq = 1
        self._awaiting_bind: int | None = None

    @property
    def can_receive(self) -> bool:
        return self.bind_command in _CAN_RECEIVE and not self.closed

    # --- input ------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        if self.closed:
            return
        self._reader.feed(data)
        try:
            for frame in self._reader:
                self._handle(frame)
                if self.closed:
                    return
        except FramingError as exc:
            self.closed = True
            self._events.append(StreamBroken(str(exc)))

    def next_event(self) -> SmscEvent | None:
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    # --- decisions --------------------------------------------------------------------------
    def answer_bind(self, seq: int, command_id: int, system_id: str, status: int) -> None:
        """Accept (status 0) or refuse the bind ``seq`` of type ``command_id``."""
        self._awaiting_bind = None
        if status == c.ESME_ROK:
            self.bind_command = command_id
            self.system_id = system_id
            self._reply(_BIND_RESP[command_id](system_id="smsgwsim"), seq)
        else:
            self._reply(_BIND_RESP[command_id](command_status=status), seq)

    def answer_submit(self, seq: int, message_id: str, status: int = c.ESME_ROK) -> None:
        if status == c.ESME_ROK:
            self._reply(SubmitSmResp(message_id=message_id), seq)
        else:
            self._reply(SubmitSmResp(command_status=status), seq)

    def answer_query(self, seq: int, answer: QuerySmResp) -> None:
        self._reply(answer, seq)

    def deliver(self, pdu: DeliverSm) -> int:
        """Queue a deliver_sm to the ESME; returns its sequence number."""
        seq = self._next_seq
        self._next_seq = seq % 0x7FFFFFFF + 1
        self._out += encode_with_sequence(pdu, seq)
        return seq

    # --- internals --------------------------------------------------------------------------
    def _reply(self, pdu: Pdu, seq: int) -> None:
        self._out += encode_with_sequence(pdu, seq)

    def _handle(self, frame: bytes) -> None:
        try:
            pdu = decode(frame)
        except PduDecodeError as exc:
            if not exc.command_id & c.RESPONSE_BIT:
                self._reply(GenericNack(command_status=exc.command_status), exc.sequence_number)
            return
        command_id = pdu.command_id
        seq = pdu.sequence_number
        if command_id == c.SUBMIT_SM:
            if self.bind_command in _CAN_SUBMIT:
                self._events.append(SubmitReceived(seq, pdu))  # type: ignore[arg-type]
            else:
                self._reply(SubmitSmResp(command_status=c.ESME_RINVBNDSTS), seq)
        elif command_id == c.QUERY_SM:
            if self.bind_command in _CAN_SUBMIT:
                self._events.append(QueryReceived(seq, pdu))  # type: ignore[arg-type]
            else:
                self._reply(QuerySmResp(command_status=c.ESME_RINVBNDSTS), seq)
        elif command_id == c.DELIVER_SM_RESP:
            self._events.append(DeliverAnswered(seq, pdu.command_status))
        elif command_id == c.GENERIC_NACK:
            # Only deliver_sm are ever sent by this side, so a nack refuses one of them.
            self._events.append(DeliverAnswered(seq, pdu.command_status or c.ESME_RSYSERR))
        elif command_id == c.ENQUIRE_LINK:
            self._reply(EnquireLinkResp(), seq)
            self._events.append(LinkEnquired())
        elif command_id in _BIND_RESP:
            if self.bind_command is not None or self._awaiting_bind is not None:
                self._reply(_BIND_RESP[command_id](command_status=c.ESME_RALYBND), seq)
            else:
                self._awaiting_bind = seq
                self._events.append(BindRequested(seq, pdu))  # type: ignore[arg-type]
        elif command_id == c.UNBIND:
            self._reply(UnbindResp(), seq)
            self.closed = True
            self._events.append(ClientUnbound())
        elif not command_id & c.RESPONSE_BIT:
            self._reply(GenericNack(command_status=c.ESME_RINVCMDID), seq)
