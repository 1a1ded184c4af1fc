"""Codec: round trips, strict encoding, lenient decoding, framing."""

from __future__ import annotations

import struct

import pytest

from carriers.smpp import constants as c
from carriers.smpp.codec import FrameReader, decode, encode, encode_with_sequence
from carriers.smpp.errors import FramingError, PduDecodeError, PduEncodeError, SmppCodecError
from carriers.smpp.pdus import (
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Unbind,
    UnbindResp,
    UnknownPdu,
    find_tlv,
)

SUBMIT = SubmitSm(
    sequence_number=7,
    service_type="CMT",
    source_addr_ton=c.TON_ALPHANUMERIC,
    source_addr="Acme",
    dest_addr_ton=c.TON_INTERNATIONAL,
    dest_addr_npi=c.NPI_ISDN,
    destination_addr="447700900123",
    esm_class=c.ESM_CLASS_UDHI,
    registered_delivery=1,
    validity_period="000001000000000R",
    data_coding=c.DATA_CODING_UCS2,
    short_message=b"\x05\x00\x03\x2a\x02\x01\x00H\x00i",
    tlvs=(Tlv(c.SAR_MSG_REF_NUM, b"\x00\x2a"), Tlv(0x1403, b"vendor")),
)

EVERY_PDU = [
    BindTransmitter(sequence_number=1, system_id="smsgw", password="secret", system_type="X"),
    BindReceiver(
        sequence_number=2, system_id="a", password="b", addr_ton=1, addr_npi=1, address_range="^44"
    ),
    BindTransceiver(sequence_number=3, system_id="smsgw", password="pw"),
    BindTransmitterResp(sequence_number=1, system_id="SMSC"),
    BindReceiverResp(
        sequence_number=2, system_id="SMSC", tlvs=(Tlv(c.SC_INTERFACE_VERSION, b"\x34"),)
    ),
    BindTransceiverResp(sequence_number=3, command_status=c.ESME_RINVPASWD),
    SUBMIT,
    SubmitSmResp(sequence_number=7, message_id="0af3b2"),
    SubmitSmResp(sequence_number=8, command_status=c.ESME_RTHROTTLED),
    DeliverSm(
        sequence_number=9,
        esm_class=c.ESM_CLASS_SMSC_DELIVERY_RECEIPT,
        source_addr="447700900123",
        destination_addr="Acme",
        short_message=b"id:1 stat:DELIVRD",
        tlvs=(Tlv(c.RECEIPTED_MESSAGE_ID, b"1\0"), Tlv(c.MESSAGE_STATE, b"\x02")),
    ),
    DeliverSmResp(sequence_number=9),
    EnquireLink(sequence_number=10),
    EnquireLinkResp(sequence_number=10),
    Unbind(sequence_number=11),
    UnbindResp(sequence_number=11),
    GenericNack(sequence_number=12, command_status=c.ESME_RINVCMDID),
    UnknownPdu(command_id=c.REPLACE_SM, sequence_number=13, body=b"abc\0\x01\x01x\0"),
    QuerySm(sequence_number=14, message_id="abc", source_addr_ton=1, source_addr_npi=1,
            source_addr="15017122661"),
    QuerySmResp(sequence_number=14, message_id="abc", final_date="261203120000000+",
                message_state=c.DELIVERED),
    QuerySmResp(sequence_number=15, command_status=c.ESME_RQUERYFAIL),
]  # fmt: skip


@pytest.mark.parametrize("pdu", EVERY_PDU, ids=lambda p: type(p).__name__)
def test_every_pdu_round_trips(pdu):
    frame = encode(pdu)
    assert struct.unpack(">I", frame[:4])[0] == len(frame)
    assert decode(frame) == pdu


def test_submit_sm_wire_layout_matches_the_spec():
    pdu = SubmitSm(
        source_addr="A",
        destination_addr="B",
        short_message=b"hi",
        registered_delivery=1,
        sequence_number=5,
    )
    assert encode(pdu) == (
        struct.pack(">IIII", 16 + 1 + 2 + 2 + 2 + 2 + 3 + 1 + 1 + 5 + 2, c.SUBMIT_SM, 0, 5)
        + b"\0"
        + b"\0\0"
        + b"A\0"
        + b"\0\0"
        + b"B\0"
        + b"\0\0\0"
        + b"\0"
        + b"\0"
        + b"\x01\0\0\0"
        + b"\x02"
        + b"hi"
    )


def test_encode_with_sequence_overrides_the_pdu_sequence_number():
    frame = encode_with_sequence(SUBMIT, 0x7FFFFFFF)
    assert decode(frame).sequence_number == 0x7FFFFFFF


def test_bind_repr_hides_the_password():
    assert "hunter2" not in repr(BindTransmitter(system_id="x", password="hunter2"))


@pytest.mark.parametrize(
    ("pdu", "message"),
    [
        (SubmitSm(destination_addr="1" * 21), "destination_addr"),
        (SubmitSm(source_addr="é"), "ASCII"),
        (SubmitSm(source_addr="a\0b"), "NUL"),
        (SubmitSm(service_type="TOOLONG"), "service_type"),
        (SubmitSm(validity_period="1h"), "exactly 16"),
        (SubmitSm(short_message=b"x" * 255), "254"),
        (SubmitSm(short_message="text"), "bytes"),
        (SubmitSm(esm_class=256), "esm_class=256"),
        (SubmitSm(data_coding=-1), "cannot encode"),
        (SubmitSm(tlvs=(Tlv(0x10000, b""),)), "TLV"),
        (SubmitSm(tlvs=(Tlv(0x0424, "text"),)), "TLV"),
        (SubmitSm(sequence_number=2**32), "cannot encode"),
        (BindTransmitter(system_id="s", password="123456789"), "password"),
        (BindTransmitter(system_id="x" * 16, password="p"), "system_id"),
        (SubmitSmResp(message_id="m" * 65), "message_id"),
        (DeliverSmResp(message_id=b"bytes"), "message_id"),
    ],
)
def test_encode_rejects_what_the_spec_forbids(pdu, message):
    with pytest.raises(PduEncodeError, match=message):
        encode(pdu)


def test_encode_rejects_non_pdus():
    with pytest.raises(PduEncodeError, match="not an SMPP PDU"):
        encode("submit_sm")  # type: ignore[arg-type]


def header(command_id, body=b"", status=0, seq=1):
    return struct.pack(">IIII", 16 + len(body), command_id, status, seq) + body


def test_error_response_with_empty_body_decodes():
    for command_id in (c.SUBMIT_SM_RESP, c.BIND_TRANSCEIVER_RESP, c.DELIVER_SM_RESP):
        pdu = decode(header(command_id, status=c.ESME_RTHROTTLED))
        assert pdu.command_status == c.ESME_RTHROTTLED
    assert decode(header(c.SUBMIT_SM_RESP)).message_id == ""


def test_missing_trailing_nul_is_tolerated():
    assert decode(header(c.SUBMIT_SM_RESP, b"abc123")).message_id == "abc123"
    assert decode(header(c.BIND_TRANSMITTER_RESP, b"SMSC")).system_id == "SMSC"
    bind = header(c.BIND_TRANSMITTER, b"id\0pw\0\0\x34\0\0")
    assert decode(bind).address_range == ""


def test_bytes_after_submit_sm_resp_message_id_are_ignored():
    frame = header(c.SUBMIT_SM_RESP, b"abc\0" + struct.pack(">HHB", 0x0425, 1, 0))
    assert decode(frame).message_id == "abc"


def test_unknown_tlvs_are_kept_and_found():
    frame = encode(SUBMIT)
    pdu = decode(frame)
    assert find_tlv(pdu.tlvs, 0x1403) == Tlv(0x1403, b"vendor")
    assert pdu.tlv(0x9999) is None


def test_zero_padding_after_tlvs_is_tolerated():
    frame = encode(SubmitSm(destination_addr="1"))
    padded = frame + b"\0\0"
    padded = struct.pack(">I", len(padded)) + padded[4:]
    assert decode(padded).tlvs == ()


def test_unknown_command_is_an_object_not_an_error():
    pdu = decode(header(0x00010203, b"\x01\x02", seq=99))
    assert pdu == UnknownPdu(command_id=0x00010203, sequence_number=99, body=b"\x01\x02")


@pytest.mark.parametrize(
    ("frame", "status"),
    [
        (header(c.SUBMIT_SM, b""), c.ESME_RINVCMDLEN),
        (header(c.SUBMIT_SM, b"\0\0\0A\0\0\0"), c.ESME_RINVCMDLEN),
        (header(c.BIND_TRANSMITTER, b"id\0pw"), c.ESME_RINVCMDLEN),
        (header(c.BIND_TRANSMITTER, b"id\0pw\0\0\x34"), c.ESME_RINVCMDLEN),
        (encode(SubmitSm(short_message=b"abc"))[:-1] + b"", c.ESME_RINVCMDLEN),
    ],
)
def test_malformed_body_raises_with_the_status_to_answer(frame, status):
    with pytest.raises(PduDecodeError) as info:
        decode(frame)
    assert info.value.command_status == status
    assert isinstance(info.value, SmppCodecError)


def test_sm_length_past_the_body_is_rinvmsglen():
    frame = bytearray(encode(SubmitSm(short_message=b"abc", sequence_number=4)))
    frame[-4] = 200  # sm_length
    with pytest.raises(PduDecodeError) as info:
        decode(bytes(frame))
    assert info.value.command_status == c.ESME_RINVMSGLEN
    assert info.value.command_id == c.SUBMIT_SM
    assert info.value.sequence_number == 4


def test_truncated_tlv_is_rinvoptparstream():
    frame = encode(SubmitSm(tlvs=(Tlv(0x0424, b"payload"),)))[:-2]
    frame = struct.pack(">I", len(frame)) + frame[4:]
    with pytest.raises(PduDecodeError) as info:
        decode(frame)
    assert info.value.command_status == c.ESME_RINVOPTPARSTREAM


def test_header_length_mismatch_is_rinvcmdlen():
    with pytest.raises(PduDecodeError) as info:
        decode(header(c.ENQUIRE_LINK) + b"x")
    assert info.value.command_status == c.ESME_RINVCMDLEN
    with pytest.raises(PduDecodeError):
        decode(b"\0\0\0\x10")


def test_frame_reader_splits_and_joins_frames():
    frames = [encode(pdu) for pdu in EVERY_PDU]
    stream = b"".join(frames)
    reader = FrameReader()
    got = []
    for i in range(0, len(stream), 7):
        reader.feed(stream[i : i + 7])
        got.extend(reader)
    assert got == frames
    assert reader.buffered == 0


@pytest.mark.parametrize("length", [0, 15, 65537])
def test_frame_reader_rejects_impossible_lengths_for_good(length):
    reader = FrameReader(max_length=65536)
    reader.feed(struct.pack(">I", length) + b"\0" * 20)
    with pytest.raises(FramingError):
        list(reader)
    reader.feed(encode(EnquireLink()))
    with pytest.raises(FramingError):
        next(reader)


def test_status_and_command_names():
    assert c.status_name(c.ESME_RTHROTTLED) == "ESME_RTHROTTLED"
    assert c.status_name(0x458) == "0x00000458"
    assert c.command_name(c.DELIVER_SM_RESP) == "deliver_sm_resp"
