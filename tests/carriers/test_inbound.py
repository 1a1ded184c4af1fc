"""Reading an inbound (MO) deliver_sm: the concatenation shapes carriers use, and headers that
make no sense kept as text rather than lost."""

from __future__ import annotations

from carriers.smpp import constants as c
from carriers.smpp.inbound import Concat, e164_or_as_is, read_inbound
from carriers.smpp.pdus import DeliverSm, Tlv
from carriers.smpp.text import concat_udh


def mo(short_message: bytes, *, esm_class: int = 0, data_coding: int = 0, tlvs=()) -> DeliverSm:
    return DeliverSm(
        source_addr="447911123456", source_addr_ton=c.TON_INTERNATIONAL, destination_addr="12345",
        dest_addr_ton=3, esm_class=esm_class, data_coding=data_coding, short_message=short_message,
        tlvs=tuple(tlvs),
    )  # fmt: skip


def test_a_plain_message_is_whole():
    sm = read_inbound(mo("STOP €5".encode("gsm23.038")))
    assert (sm.concat, sm.text) == (None, "STOP €5")
    assert (sm.source_addr, sm.source_ton, sm.destination_addr) == ("447911123456", 1, "12345")


def test_8_and_16_bit_udh_references_are_read():
    eight = read_inbound(mo(concat_udh(0x42, 3, 2) + b"part", esm_class=c.ESM_CLASS_UDHI))
    assert (eight.concat, eight.payload) == (Concat(0x42, 3, 2), b"part")
    sixteen = read_inbound(mo(concat_udh(0x1234, 2, 1) + b"xy", esm_class=c.ESM_CLASS_UDHI))
    assert (sixteen.concat, sixteen.payload) == (Concat(0x1234, 2, 1), b"xy")


def test_sar_tlvs_are_read():
    sar = [Tlv(c.SAR_MSG_REF_NUM, b"\x01\x02"), Tlv(c.SAR_TOTAL_SEGMENTS, b"\x03"),
           Tlv(c.SAR_SEGMENT_SEQNUM, b"\x03")]  # fmt: skip
    sm = read_inbound(mo(b"end", tlvs=sar))
    assert (sm.concat, sm.payload) == (Concat(0x0102, 3, 3), b"end")


def test_message_payload_carries_the_whole_text_when_short_message_is_empty():
    text = "é" * 300
    sm = read_inbound(
        mo(b"", data_coding=c.DATA_CODING_UCS2,
           tlvs=[Tlv(c.MESSAGE_PAYLOAD, text.encode("utf-16-be"))])
    )  # fmt: skip
    assert (sm.concat, sm.text) == (None, text)


def test_a_header_that_makes_no_sense_is_read_as_one_message():
    for ref, total, seqnum in ((1, 3, 0), (1, 3, 4), (1, 1, 1), (1, 0, 0)):
        udh = bytes([5, 0x00, 3, ref, total, seqnum])  # built by hand: concat_udh refuses these
        sm = read_inbound(mo(udh + b"hi", esm_class=c.ESM_CLASS_UDHI))
        assert sm.concat is None and sm.payload == b"hi", (ref, total, seqnum)
    # UDHI set but the header length does not fit: everything is kept as text
    garbled = read_inbound(mo(b"\x09ab", esm_class=c.ESM_CLASS_UDHI))
    assert (garbled.concat, garbled.payload) == (None, b"\x09ab")


def test_addresses_as_the_api_shows_them():
    assert e164_or_as_is("447911123456", c.TON_INTERNATIONAL) == "+447911123456"
    assert e164_or_as_is("12345", 3) == "12345"
    assert e164_or_as_is("Acme", 5) == "Acme"
