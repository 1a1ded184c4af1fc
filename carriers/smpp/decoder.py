"""Wire bytes to PDU objects, leniently: accept what real carriers send.

Unknown TLVs are kept, unknown commands become :class:`UnknownPdu`, error responses without a
body decode to empty fields, a C-string missing its NUL at the very end of the body is forgiven,
zero padding after the TLVs is ignored, over-long C-strings are read as they are. What cannot be
read raises :class:`PduDecodeError` carrying the command_status to answer with: the stream is
intact (framing is separate), so the session nacks that one PDU and carries on.
"""

from __future__ import annotations

from collections.abc import Callable

from carriers.smpp import constants as c
from carriers.smpp.encoder import HEADER, HEADER_LENGTH, TLV_HEAD
from carriers.smpp.errors import PduDecodeError
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


class _Truncated(Exception):
    """Internal: a mandatory field runs past the end of the body."""


def decode(frame: bytes) -> Pdu:
    """Decode one complete frame (as :class:`FrameReader` yields) into a PDU.

    Unknown command_ids give an :class:`UnknownPdu`; a malformed body raises
    :class:`PduDecodeError` carrying the command_status to answer with.
    """
    if len(frame) < HEADER_LENGTH:
        raise PduDecodeError(
            f"frame of {len(frame)} octets is shorter than the 16-octet header",
            command_id=0,
            sequence_number=0,
            command_status=c.ESME_RINVCMDLEN,
        )
    length, command_id, status, seq = HEADER.unpack_from(frame)
    if length != len(frame):
        raise PduDecodeError(
            f"command_length {length} does not match the frame's {len(frame)} octets",
            command_id=command_id,
            sequence_number=seq,
            command_status=c.ESME_RINVCMDLEN,
        )
    decoder = _DECODERS.get(command_id)
    if decoder is None:
        return UnknownPdu(
            command_id=command_id,
            command_status=status,
            sequence_number=seq,
            body=bytes(frame[HEADER_LENGTH:]),
        )
    frame = bytes(frame)
    try:
        return decoder(frame, status, seq)
    except _Truncated:
        raise PduDecodeError(
            f"{c.command_name(command_id)} body ends inside a mandatory field",
            command_id=command_id,
            sequence_number=seq,
            command_status=c.ESME_RINVCMDLEN,
        ) from None
    except PduDecodeError as exc:
        exc.command_id = command_id
        exc.sequence_number = seq
        raise


def _cstring(frame: bytes, pos: int) -> tuple[str, int]:
    end = frame.find(b"\0", pos)
    if end < 0:
        raise _Truncated
    return frame[pos:end].decode("latin-1"), end + 1


def _last_cstring(frame: bytes, pos: int) -> tuple[str, int]:
    """A C-string that may end the body without its NUL (a frequent carrier slip)."""
    end = frame.find(b"\0", pos)
    if end < 0:
        return frame[pos:].decode("latin-1"), len(frame)
    return frame[pos:end].decode("latin-1"), end + 1


def _bad(message: str, status: int) -> PduDecodeError:
    # command_id and sequence_number are filled in by decode()
    return PduDecodeError(message, command_id=0, sequence_number=0, command_status=status)


def _parse_tlvs(frame: bytes, pos: int) -> tuple[Tlv, ...]:
    end = len(frame)
    if pos >= end:
        return ()
    tlvs = []
    unpack = TLV_HEAD.unpack_from
    while pos + 4 <= end:
        tag, length = unpack(frame, pos)
        pos += 4
        if pos + length > end:
            raise _bad(
                f"TLV 0x{tag:04X} claims {length} octets but only {end - pos} remain",
                c.ESME_RINVOPTPARSTREAM,
            )
        tlvs.append(Tlv(tag, frame[pos : pos + length]))
        pos += length
    if pos < end and frame.count(0, pos) != end - pos:
        # 1-3 stray octets: zero padding is forgiven, anything else is a broken stream.
        raise _bad(f"{end - pos} stray octets after the TLVs", c.ESME_RINVOPTPARSTREAM)
    return tuple(tlvs)


def _decode_short_message(cls: type[_ShortMessage]) -> Callable[[bytes, int, int], Pdu]:
    def decoder(frame: bytes, status: int, seq: int) -> Pdu:
        find = frame.find
        pos = HEADER_LENGTH
        try:
            end = find(b"\0", pos)
            if end < 0:
                raise _Truncated
            service_type = frame[pos:end].decode("latin-1")
            source_addr_ton = frame[end + 1]
            source_addr_npi = frame[end + 2]
            pos = end + 3
            end = find(b"\0", pos)
            if end < 0:
                raise _Truncated
            source_addr = frame[pos:end].decode("latin-1")
            dest_addr_ton = frame[end + 1]
            dest_addr_npi = frame[end + 2]
            pos = end + 3
            end = find(b"\0", pos)
            if end < 0:
                raise _Truncated
            destination_addr = frame[pos:end].decode("latin-1")
            esm_class = frame[end + 1]
            protocol_id = frame[end + 2]
            priority_flag = frame[end + 3]
            pos = end + 4
            end = find(b"\0", pos)
            if end < 0:
                raise _Truncated
            schedule_delivery_time = frame[pos:end].decode("latin-1")
            pos = end + 1
            end = find(b"\0", pos)
            if end < 0:
                raise _Truncated
            validity_period = frame[pos:end].decode("latin-1")
            registered_delivery = frame[end + 1]
            replace_if_present_flag = frame[end + 2]
            data_coding = frame[end + 3]
            sm_default_msg_id = frame[end + 4]
            sm_length = frame[end + 5]
        except IndexError:
            raise _Truncated from None
        pos = end + 6
        if pos + sm_length > len(frame):
            raise _bad(
                f"sm_length {sm_length} exceeds the {len(frame) - pos} octets left",
                c.ESME_RINVMSGLEN,
            )
        short_message = frame[pos : pos + sm_length]
        pos += sm_length
        tlvs = _parse_tlvs(frame, pos) if pos < len(frame) else ()
        return cls(
            sequence_number=seq,
            command_status=status,
            service_type=service_type,
            source_addr_ton=source_addr_ton,
            source_addr_npi=source_addr_npi,
            source_addr=source_addr,
            dest_addr_ton=dest_addr_ton,
            dest_addr_npi=dest_addr_npi,
            destination_addr=destination_addr,
            esm_class=esm_class,
            protocol_id=protocol_id,
            priority_flag=priority_flag,
            schedule_delivery_time=schedule_delivery_time,
            validity_period=validity_period,
            registered_delivery=registered_delivery,
            replace_if_present_flag=replace_if_present_flag,
            data_coding=data_coding,
            sm_default_msg_id=sm_default_msg_id,
            short_message=short_message,
            tlvs=tlvs,
        )

    return decoder


def _decode_bind(cls: type[_Bind]) -> Callable[[bytes, int, int], Pdu]:
    def decoder(frame: bytes, status: int, seq: int) -> Pdu:
        system_id, pos = _cstring(frame, HEADER_LENGTH)
        password, pos = _cstring(frame, pos)
        system_type, pos = _cstring(frame, pos)
        if pos + 3 > len(frame):
            raise _Truncated
        interface_version, addr_ton, addr_npi = frame[pos], frame[pos + 1], frame[pos + 2]
        address_range, pos = _last_cstring(frame, pos + 3)
        return cls(
            sequence_number=seq,
            command_status=status,
            system_id=system_id,
            password=password,
            system_type=system_type,
            interface_version=interface_version,
            addr_ton=addr_ton,
            addr_npi=addr_npi,
            address_range=address_range,
        )

    return decoder


def _decode_bind_resp(cls: type[_BindResp]) -> Callable[[bytes, int, int], Pdu]:
    def decoder(frame: bytes, status: int, seq: int) -> Pdu:
        if len(frame) == HEADER_LENGTH:  # error responses often come without a body
            return cls(sequence_number=seq, command_status=status)
        system_id, pos = _last_cstring(frame, HEADER_LENGTH)
        try:
            tlvs = _parse_tlvs(frame, pos)
        except PduDecodeError:
            tlvs = ()  # a bind answer is worth more than its sc_interface_version
        return cls(sequence_number=seq, command_status=status, system_id=system_id, tlvs=tlvs)

    return decoder


def _decode_submit_sm_resp(frame: bytes, status: int, seq: int) -> Pdu:
    if len(frame) == HEADER_LENGTH:
        return SubmitSmResp(sequence_number=seq, command_status=status)
    end = frame.find(b"\0", HEADER_LENGTH)
    # Bytes after the NUL (SMPP 5.0 TLVs, padding) are ignored: 3.4 defines none.
    message_id = frame[HEADER_LENGTH : end if end >= 0 else None].decode("latin-1")
    return SubmitSmResp(sequence_number=seq, command_status=status, message_id=message_id)


def _decode_deliver_sm_resp(frame: bytes, status: int, seq: int) -> Pdu:
    message_id = _last_cstring(frame, HEADER_LENGTH)[0] if len(frame) > HEADER_LENGTH else ""
    return DeliverSmResp(sequence_number=seq, command_status=status, message_id=message_id)


def _decode_data_sm(frame: bytes, status: int, seq: int) -> Pdu:
    service_type, pos = _cstring(frame, HEADER_LENGTH)
    try:
        source_addr_ton, source_addr_npi = frame[pos], frame[pos + 1]
        source_addr, pos = _cstring(frame, pos + 2)
        dest_addr_ton, dest_addr_npi = frame[pos], frame[pos + 1]
        destination_addr, pos = _cstring(frame, pos + 2)
        esm_class, registered_delivery, data_coding = frame[pos], frame[pos + 1], frame[pos + 2]
    except IndexError:
        raise _Truncated from None
    return DataSm(
        sequence_number=seq,
        command_status=status,
        service_type=service_type,
        source_addr_ton=source_addr_ton,
        source_addr_npi=source_addr_npi,
        source_addr=source_addr,
        dest_addr_ton=dest_addr_ton,
        dest_addr_npi=dest_addr_npi,
        destination_addr=destination_addr,
        esm_class=esm_class,
        registered_delivery=registered_delivery,
        data_coding=data_coding,
        tlvs=_parse_tlvs(frame, pos + 3),
    )


def _decode_data_sm_resp(frame: bytes, status: int, seq: int) -> Pdu:
    message_id = _last_cstring(frame, HEADER_LENGTH)[0] if len(frame) > HEADER_LENGTH else ""
    return DataSmResp(sequence_number=seq, command_status=status, message_id=message_id)


def _decode_query_sm(frame: bytes, status: int, seq: int) -> Pdu:
    message_id, pos = _cstring(frame, HEADER_LENGTH)
    try:
        source_addr_ton, source_addr_npi = frame[pos], frame[pos + 1]
    except IndexError:
        raise _Truncated from None
    source_addr, _ = _last_cstring(frame, pos + 2)
    return QuerySm(
        sequence_number=seq,
        command_status=status,
        message_id=message_id,
        source_addr_ton=source_addr_ton,
        source_addr_npi=source_addr_npi,
        source_addr=source_addr,
    )


def _decode_query_sm_resp(frame: bytes, status: int, seq: int) -> Pdu:
    if len(frame) == HEADER_LENGTH:  # an error answer may carry no body (§4.8.2)
        return QuerySmResp(sequence_number=seq, command_status=status)
    message_id, pos = _cstring(frame, HEADER_LENGTH)
    final_date, pos = _cstring(frame, pos)
    try:
        message_state, error_code = frame[pos], frame[pos + 1]
    except IndexError:
        raise _Truncated from None
    return QuerySmResp(
        sequence_number=seq,
        command_status=status,
        message_id=message_id,
        final_date=final_date,
        message_state=message_state,
        error_code=error_code,
    )


def _decode_empty(cls: type[Pdu]) -> Callable[[bytes, int, int], Pdu]:
    # A body where none is defined is ignored: nothing in it could change the meaning.
    def decoder(frame: bytes, status: int, seq: int) -> Pdu:
        return cls(sequence_number=seq, command_status=status)

    return decoder


_DECODERS: dict[int, Callable[[bytes, int, int], Pdu]] = {
    c.SUBMIT_SM: _decode_short_message(SubmitSm),
    c.DELIVER_SM: _decode_short_message(DeliverSm),
    c.SUBMIT_SM_RESP: _decode_submit_sm_resp,
    c.DELIVER_SM_RESP: _decode_deliver_sm_resp,
    c.DATA_SM: _decode_data_sm,
    c.DATA_SM_RESP: _decode_data_sm_resp,
    c.QUERY_SM: _decode_query_sm,
    c.QUERY_SM_RESP: _decode_query_sm_resp,
    c.BIND_TRANSMITTER: _decode_bind(BindTransmitter),
    c.BIND_RECEIVER: _decode_bind(BindReceiver),
    c.BIND_TRANSCEIVER: _decode_bind(BindTransceiver),
    c.BIND_TRANSMITTER_RESP: _decode_bind_resp(BindTransmitterResp),
    c.BIND_RECEIVER_RESP: _decode_bind_resp(BindReceiverResp),
    c.BIND_TRANSCEIVER_RESP: _decode_bind_resp(BindTransceiverResp),
    c.ENQUIRE_LINK: _decode_empty(EnquireLink),
    c.ENQUIRE_LINK_RESP: _decode_empty(EnquireLinkResp),
    c.UNBIND: _decode_empty(Unbind),
    c.UNBIND_RESP: _decode_empty(UnbindResp),
    c.GENERIC_NACK: _decode_empty(GenericNack),
}
