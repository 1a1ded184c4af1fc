"""PDU objects to wire bytes, strictly: nothing malformed ever leaves this module.

Every field is checked against SMPP 3.4 before a byte is produced (C-octet string lengths and
ASCII, octets in 0..255, short_message <= 254 octets, TLV tags and lengths in 16 bits). The
submit_sm/deliver_sm encoder is written out field by field, one f-string and one ``struct`` call,
because it runs once per message; its slow path re-checks field by field only to say *which* field
is wrong.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from carriers.smpp.errors import PduEncodeError
from carriers.smpp.pdus import (
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    DataSm,
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
    SubmitSmResp,
    Tlv,
    Unbind,
    UnbindResp,
    UnknownPdu,
    _Bind,
    _BindResp,
    _ShortMessage,
)

HEADER_LENGTH = 16
MAX_SHORT_MESSAGE = 254
HEADER = struct.Struct(">IIII")
TLV_HEAD = struct.Struct(">HH")
_TIME_LENGTHS = (0, 16)  # schedule_delivery_time / validity_period: empty or exactly 16 chars

# Maximum lengths *without* the NUL (the spec's tables give them with it).
_MAX_SYSTEM_ID = 15
_MAX_PASSWORD = 8
_MAX_SYSTEM_TYPE = 12
_MAX_ADDRESS_RANGE = 40
_MAX_SERVICE_TYPE = 5
_MAX_ADDR = 20
_MAX_MESSAGE_ID = 64


def encode(pdu: Pdu) -> bytes:
    """The wire bytes of ``pdu`` (header included). Raises :class:`PduEncodeError`."""
    return encode_with_sequence(pdu, getattr(pdu, "sequence_number", 0))


def encode_with_sequence(pdu: Pdu, sequence_number: int) -> bytes:
    """Like :func:`encode` but with ``sequence_number`` in the header instead of the PDU's.

    The session assigns sequence numbers at send time; this spares it rebuilding a frozen PDU.
    """
    try:
        encoder = _ENCODERS[type(pdu)]
    except KeyError:
        raise PduEncodeError(f"cannot encode {type(pdu).__name__!r}: not an SMPP PDU") from None
    try:
        return encoder(pdu, sequence_number)
    except PduEncodeError:
        raise
    except (ValueError, TypeError, AttributeError, OverflowError, struct.error) as exc:
        # Octets out of 0..255, non-bytes short_message, sequence_number out of 32 bits...
        raise PduEncodeError(f"cannot encode {pdu!r}: {exc}") from exc


def _frame(command_id: int, status: int, seq: int, body: bytes) -> bytes:
    return HEADER.pack(HEADER_LENGTH + len(body), command_id, status, seq) + body


def _check_cstring(pdu: Pdu, field: str, value: str, max_length: int) -> None:
    if not isinstance(value, str):
        raise PduEncodeError(f"{field} must be str, got {type(value).__name__}: {value!r}")
    if len(value) > max_length:
        raise PduEncodeError(
            f"{field} {value!r} is {len(value)} characters; SMPP 3.4 allows at most {max_length}"
        )
    if not value.isascii() or "\0" in value:
        raise PduEncodeError(f"{field} {value!r} must be ASCII without NUL characters")


def _tlv_bytes(tlvs: tuple[Tlv, ...]) -> bytes:
    pack = TLV_HEAD.pack
    try:
        return b"".join([pack(t.tag, len(t.value)) + t.value for t in tlvs])
    except (struct.error, TypeError, AttributeError) as exc:
        raise PduEncodeError(
            f"bad TLV in {tlvs!r}: tag and length must fit 16 bits, value must be bytes"
        ) from exc


def _encode_short_message(p: _ShortMessage, seq: int) -> bytes:
    st = p.service_type
    sa = p.source_addr
    da = p.destination_addr
    sdt = p.schedule_delivery_time
    vp = p.validity_period
    sm = p.short_message
    if (
        len(st) > _MAX_SERVICE_TYPE
        or len(sa) > _MAX_ADDR
        or len(da) > _MAX_ADDR
        or len(sdt) not in _TIME_LENGTHS
        or len(vp) not in _TIME_LENGTHS
        or len(sm) > MAX_SHORT_MESSAGE
        or not isinstance(sm, bytes)
    ):
        _explain_short_message(p)
    strings = st + sa + da + sdt + vp
    if not strings.isascii() or "\0" in strings:
        _explain_short_message(p)
    # chr() of an int outside 0..255 makes latin-1 encoding fail: range checks for free.
    body = (
        f"{st}\0{chr(p.source_addr_ton)}{chr(p.source_addr_npi)}{sa}\0"
        f"{chr(p.dest_addr_ton)}{chr(p.dest_addr_npi)}{da}\0"
        f"{chr(p.esm_class)}{chr(p.protocol_id)}{chr(p.priority_flag)}{sdt}\0{vp}\0"
        f"{chr(p.registered_delivery)}{chr(p.replace_if_present_flag)}{chr(p.data_coding)}"
        f"{chr(p.sm_default_msg_id)}{chr(len(sm))}"
    ).encode("latin-1") + sm
    if p.tlvs:
        body += _tlv_bytes(p.tlvs)
    return HEADER.pack(HEADER_LENGTH + len(body), p.command_id, p.command_status, seq) + body


def _explain_short_message(p: _ShortMessage) -> None:
    """Slow path of :func:`_encode_short_message`: find the offending field and say so."""
    _check_cstring(p, "service_type", p.service_type, _MAX_SERVICE_TYPE)
    _check_cstring(p, "source_addr", p.source_addr, _MAX_ADDR)
    _check_cstring(p, "destination_addr", p.destination_addr, _MAX_ADDR)
    for field in ("schedule_delivery_time", "validity_period"):
        value = getattr(p, field)
        _check_cstring(p, field, value, 16)
        if len(value) not in _TIME_LENGTHS:
            raise PduEncodeError(
                f"{field} {value!r} must be empty or exactly 16 characters (YYMMDDhhmmsstnnp)"
            )
    sm = p.short_message
    if not isinstance(sm, bytes):
        raise PduEncodeError(f"short_message must be bytes, got {type(sm).__name__}")
    if len(sm) > MAX_SHORT_MESSAGE:
        raise PduEncodeError(
            f"short_message is {len(sm)} octets; SMPP 3.4 allows at most {MAX_SHORT_MESSAGE} "
            "(split the text, or send it in a message_payload TLV)"
        )
    raise PduEncodeError(f"cannot encode {p!r}")  # pragma: no cover - guarded by the fast path


def _encode_bind(p: _Bind, seq: int) -> bytes:
    _check_cstring(p, "system_id", p.system_id, _MAX_SYSTEM_ID)
    _check_cstring(p, "password", p.password, _MAX_PASSWORD)
    _check_cstring(p, "system_type", p.system_type, _MAX_SYSTEM_TYPE)
    _check_cstring(p, "address_range", p.address_range, _MAX_ADDRESS_RANGE)
    body = (
        f"{p.system_id}\0{p.password}\0{p.system_type}\0"
        f"{chr(p.interface_version)}{chr(p.addr_ton)}{chr(p.addr_npi)}{p.address_range}\0"
    ).encode("latin-1")
    return _frame(p.command_id, p.command_status, seq, body)


def _encode_bind_resp(p: _BindResp, seq: int) -> bytes:
    _check_cstring(p, "system_id", p.system_id, _MAX_SYSTEM_ID)
    body = p.system_id.encode("ascii") + b"\0"
    if p.tlvs:
        body += _tlv_bytes(p.tlvs)
    return _frame(p.command_id, p.command_status, seq, body)


def _encode_message_id_resp(p: SubmitSmResp | DeliverSmResp, seq: int) -> bytes:
    mid = p.message_id
    if len(mid) > _MAX_MESSAGE_ID or not mid.isascii() or "\0" in mid:
        _check_cstring(p, "message_id", mid, _MAX_MESSAGE_ID)
    body = mid.encode("ascii") + b"\0"
    return HEADER.pack(HEADER_LENGTH + len(body), p.command_id, p.command_status, seq) + body


def _encode_data_sm(p: DataSm, seq: int) -> bytes:
    _check_cstring(p, "service_type", p.service_type, _MAX_SERVICE_TYPE)
    _check_cstring(p, "source_addr", p.source_addr, _MAX_ADDR)
    _check_cstring(p, "destination_addr", p.destination_addr, _MAX_ADDR)
    body = (
        f"{p.service_type}\0{chr(p.source_addr_ton)}{chr(p.source_addr_npi)}{p.source_addr}\0"
        f"{chr(p.dest_addr_ton)}{chr(p.dest_addr_npi)}{p.destination_addr}\0"
        f"{chr(p.esm_class)}{chr(p.registered_delivery)}{chr(p.data_coding)}"
    ).encode("latin-1")
    return _frame(p.command_id, p.command_status, seq, body + _tlv_bytes(p.tlvs))


def _encode_query_sm(p: QuerySm, seq: int) -> bytes:
    _check_cstring(p, "message_id", p.message_id, _MAX_MESSAGE_ID)
    _check_cstring(p, "source_addr", p.source_addr, _MAX_ADDR)
    for field in ("source_addr_ton", "source_addr_npi"):
        if not 0 <= getattr(p, field) <= 0xFF:
            raise PduEncodeError(f"{field} {getattr(p, field)} must fit one octet (0-255)")
    body = (
        f"{p.message_id}\0{chr(p.source_addr_ton)}{chr(p.source_addr_npi)}{p.source_addr}\0"
    ).encode("latin-1")
    return _frame(p.command_id, p.command_status, seq, body)


def _encode_query_sm_resp(p: QuerySmResp, seq: int) -> bytes:
    _check_cstring(p, "message_id", p.message_id, _MAX_MESSAGE_ID)
    _check_cstring(p, "final_date", p.final_date, 16)
    if len(p.final_date) not in _TIME_LENGTHS:
        raise PduEncodeError(
            f"final_date {p.final_date!r} must be empty or exactly 16 characters (YYMMDDhhmmsstnnp)"
        )
    for field in ("message_state", "error_code"):
        if not 0 <= getattr(p, field) <= 0xFF:
            raise PduEncodeError(f"{field} {getattr(p, field)} must fit one octet (0-255)")
    body = (f"{p.message_id}\0{p.final_date}\0{chr(p.message_state)}{chr(p.error_code)}").encode(
        "latin-1"
    )
    return _frame(p.command_id, p.command_status, seq, body)


def _encode_empty(p: Pdu, seq: int) -> bytes:
    return HEADER.pack(HEADER_LENGTH, p.command_id, p.command_status, seq)


def _encode_unknown(p: UnknownPdu, seq: int) -> bytes:
    if not isinstance(p.body, bytes):
        raise PduEncodeError(f"UnknownPdu.body must be bytes, got {type(p.body).__name__}")
    return _frame(p.command_id, p.command_status, seq, p.body)


_ENCODERS: dict[type, Callable[..., bytes]] = {
    SubmitSm: _encode_short_message,
    DeliverSm: _encode_short_message,
    SubmitSmResp: _encode_message_id_resp,
    DeliverSmResp: _encode_message_id_resp,
    DataSm: _encode_data_sm,
    DataSmResp: _encode_message_id_resp,
    QuerySm: _encode_query_sm,
    QuerySmResp: _encode_query_sm_resp,
    BindTransmitter: _encode_bind,
    BindReceiver: _encode_bind,
    BindTransceiver: _encode_bind,
    BindTransmitterResp: _encode_bind_resp,
    BindReceiverResp: _encode_bind_resp,
    BindTransceiverResp: _encode_bind_resp,
    EnquireLink: _encode_empty,
    EnquireLinkResp: _encode_empty,
    Unbind: _encode_empty,
    UnbindResp: _encode_empty,
    GenericNack: _encode_empty,
    UnknownPdu: _encode_unknown,
}
