"""Cross-check the codec with smpplib, an independent implementation, in both directions."""

from __future__ import annotations

import logging

import pytest
import smpplib.smpp

from carriers.smpp import constants as c
from carriers.smpp.codec import decode, encode
from carriers.smpp.pdus import (
    BindReceiver,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    DeliverSm,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
)

logging.getLogger("smpplib").setLevel(logging.ERROR)

SHORT_MESSAGE_FIELDS = (
    "service_type", "source_addr_ton", "source_addr_npi", "source_addr", "dest_addr_ton",
    "dest_addr_npi", "destination_addr", "esm_class", "protocol_id", "priority_flag",
    "schedule_delivery_time", "validity_period", "registered_delivery",
    "replace_if_present_flag", "data_coding", "sm_default_msg_id", "short_message",
)  # fmt: skip
BIND_FIELDS = ("system_id", "password", "system_type", "interface_version", "addr_ton",
               "addr_npi", "address_range")  # fmt: skip


def smpplib_parse(frame: bytes):
    return smpplib.smpp.parse_pdu(frame, client=None, sequence=0, allow_unknown_opt_params=True)


def smpplib_value(pdu, field):
    value = getattr(pdu, field)
    # smpplib leaves empty C-strings / zero octets it never saw as None
    if value is None:
        return (
            ""
            if field
            in (
                "service_type",
                "source_addr",
                "schedule_delivery_time",
                "validity_period",
                "address_range",
                "system_type",
            )
            else 0
        )
    return (
        value.decode("latin-1") if isinstance(value, bytes) and field != "short_message" else value
    )


def assert_same_fields(ours, theirs, fields):
    for field in fields:
        assert smpplib_value(theirs, field) == getattr(ours, field), field


@pytest.mark.parametrize("cls", [SubmitSm, DeliverSm])
def test_our_short_message_pdus_parse_in_smpplib(cls):
    pdu = cls(
        sequence_number=4242,
        service_type="CMT",
        source_addr_ton=5,
        source_addr_npi=0,
        source_addr="Acme",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="447700900123",
        esm_class=0x40,
        protocol_id=0,
        priority_flag=1,
        validity_period="240101120000000+",
        registered_delivery=1,
        data_coding=8,
        short_message=b"\x05\x00\x03\x01\x02\x01\x00A",
        tlvs=(Tlv(c.SAR_MSG_REF_NUM, b"\x01\x02"), Tlv(c.SAR_TOTAL_SEGMENTS, b"\x02")),
    )
    theirs = smpplib_parse(encode(pdu))
    assert theirs.command == ("submit_sm" if cls is SubmitSm else "deliver_sm")
    assert theirs.sequence == 4242
    assert_same_fields(pdu, theirs, SHORT_MESSAGE_FIELDS)
    assert theirs.sar_msg_ref_num == 0x0102
    assert theirs.sar_total_segments == 2


def test_our_receipt_tlvs_parse_in_smpplib():
    pdu = DeliverSm(
        esm_class=4,
        short_message=b"id:abc stat:DELIVRD",
        tlvs=(
            Tlv(c.RECEIPTED_MESSAGE_ID, b"abc\0"),
            Tlv(c.MESSAGE_STATE, b"\x02"),
            Tlv(c.NETWORK_ERROR_CODE, b"\x03\x00\x01"),
        ),
    )
    theirs = smpplib_parse(encode(pdu))
    assert theirs.receipted_message_id == b"abc"
    assert theirs.message_state == 2
    assert theirs.network_error_code == b"\x03\x00\x01"


@pytest.mark.parametrize("cls", [BindTransmitter, BindReceiver, BindTransceiver])
def test_our_binds_parse_in_smpplib(cls):
    pdu = cls(
        sequence_number=1,
        system_id="smsgw",
        password="secret",
        system_type="VMA",
        addr_ton=1,
        addr_npi=1,
        address_range="44",
    )
    theirs = smpplib_parse(encode(pdu))
    assert_same_fields(pdu, theirs, BIND_FIELDS)


def test_our_responses_parse_in_smpplib():
    theirs = smpplib_parse(encode(SubmitSmResp(sequence_number=3, message_id="0a1b")))
    assert (theirs.command, theirs.sequence, theirs.message_id) == ("submit_sm_resp", 3, b"0a1b")
    theirs = smpplib_parse(encode(BindTransceiverResp(system_id="SMSC", command_status=0xE)))
    assert (theirs.status, theirs.system_id) == (0xE, b"SMSC")


def test_query_sm_both_ways_with_smpplib():
    ours = QuerySm(
        sequence_number=7, message_id="0a1b", source_addr_ton=1, source_addr_npi=1,
        source_addr="15017122661",
    )  # fmt: skip
    theirs = smpplib_parse(encode(ours))
    assert (theirs.command, theirs.sequence, theirs.message_id, theirs.source_addr) == (
        "query_sm", 7, b"0a1b", b"15017122661"
    )  # fmt: skip
    assert (theirs.source_addr_ton, theirs.source_addr_npi) == (1, 1)
    frame = smpplib_make(
        "query_sm_resp", 8, message_id="0a1b", final_date="261203120000000+",
        message_state=2, error_code=0,
    )  # fmt: skip
    assert decode(frame) == QuerySmResp(
        sequence_number=8, message_id="0a1b", final_date="261203120000000+", message_state=2
    )


def smpplib_make(command, sequence, **fields):
    pdu = smpplib.smpp.make_pdu(command, client=None, sequence=sequence, **fields)
    pdu.sequence = sequence
    return pdu.generate()


@pytest.mark.parametrize("command", ["submit_sm", "deliver_sm"])
def test_smpplib_short_message_pdus_decode_with_ours(command):
    fields = dict(
        service_type="",
        source_addr_ton=5,
        source_addr_npi=0,
        source_addr="Acme",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="447700900123",
        esm_class=0,
        protocol_id=0,
        priority_flag=0,
        registered_delivery=1,
        replace_if_present_flag=0,
        data_coding=8,
        sm_default_msg_id=0,
        short_message=b"\x00h\x00i",
    )
    ours = decode(smpplib_make(command, 77, **fields))
    assert type(ours) is (SubmitSm if command == "submit_sm" else DeliverSm)
    assert ours.sequence_number == 77
    for field, value in fields.items():
        assert getattr(ours, field) == value, field


def test_smpplib_receipt_decodes_with_ours():
    frame = smpplib_make(
        "deliver_sm",
        5,
        source_addr="447",
        destination_addr="Acme",
        esm_class=4,
        short_message=b"id:77 stat:DELIVRD",
        receipted_message_id="77",
        message_state=2,
        service_type="",
        source_addr_ton=1,
        source_addr_npi=1,
        dest_addr_ton=5,
        dest_addr_npi=0,
        protocol_id=0,
        priority_flag=0,
        registered_delivery=0,
        replace_if_present_flag=0,
        data_coding=0,
        sm_default_msg_id=0,
    )
    ours = decode(frame)
    assert ours.tlv(c.RECEIPTED_MESSAGE_ID).as_cstring() == "77"
    assert ours.tlv(c.MESSAGE_STATE).as_int() == 2


def test_smpplib_bind_and_resps_decode_with_ours():
    ours = decode(
        smpplib_make(
            "bind_transceiver",
            1,
            system_id="smsgw",
            password="secret",
            system_type="",
            addr_ton=0,
            addr_npi=0,
            address_range="",
        )
    )
    assert (type(ours), ours.system_id, ours.password) == (BindTransceiver, "smsgw", "secret")
    assert ours.interface_version == 0x34
    ours = decode(smpplib_make("submit_sm_resp", 9, message_id="abc"))
    assert ours == SubmitSmResp(sequence_number=9, message_id="abc")
