"""Behaviour the mutation tester (tests/mutate.py) found unpinned in the codec and receipts."""

from __future__ import annotations

import struct

import pytest

from carriers.smpp import constants as c
from carriers.smpp.codec import decode, encode
from carriers.smpp.errors import PduDecodeError
from carriers.smpp.pdus import DeliverSm, SubmitSm, Tlv
from carriers.smpp.receipts import parse_receipt, parse_receipt_text


def _with_length(frame: bytes) -> bytes:
    return struct.pack(">I", len(frame)) + frame[4:]


# --- decoder ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [SubmitSm, DeliverSm])
def test_short_message_pdu_cut_anywhere_before_its_text_is_rinvcmdlen(cls):
    pdu = cls(
        service_type="CMT",
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="12345",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="4479",
        esm_class=3,
        protocol_id=4,
        priority_flag=1,
        schedule_delivery_time="240101120000000+",
        validity_period="240102120000000+",
        registered_delivery=1,
        data_coding=3,
        short_message=b"hi",
    )
    frame = encode(pdu)
    assert decode(frame) == pdu
    sm_length_at = len(frame) - len(b"hi") - 1
    for cut in range(16, sm_length_at + 1):  # every cut that loses a mandatory field
        with pytest.raises(PduDecodeError) as info:
            decode(_with_length(frame[:cut]))
        assert info.value.command_status == c.ESME_RINVCMDLEN, cut
        assert info.value.command_id == cls.command_id


def test_stray_octets_after_the_tlvs_are_counted_in_the_error():
    frame = _with_length(encode(SubmitSm(destination_addr="1")) + b"\x01\x02")
    with pytest.raises(PduDecodeError, match=r"^2 stray octets after the TLVs$") as info:
        decode(frame)
    assert info.value.command_status == c.ESME_RINVOPTPARSTREAM


def test_sm_length_error_says_how_many_octets_were_left():
    frame = bytearray(encode(SubmitSm(short_message=b"abc")))
    frame[-4] = 200  # sm_length
    with pytest.raises(PduDecodeError, match=r"^sm_length 200 exceeds the 3 octets left$"):
        decode(bytes(frame))


# --- receipts ---------------------------------------------------------------------------------


def test_default_type_receipt_with_receipted_message_id_is_read_in_full():
    # esm_class 0 plus a receipted_message_id TLV: a receipt (some SMSCs send them so), parsed
    # like a 0x04 one, not an acknowledgement whose stat is ignored.
    pdu = DeliverSm(
        esm_class=0,
        short_message=b"id:abc stat:UNDELIV err:012",
        tlvs=(Tlv(c.RECEIPTED_MESSAGE_ID, b"abc\0"),),
    )
    r = parse_receipt(pdu)
    assert not r.acknowledgement
    assert (r.message_id, r.stat, r.err) == ("abc", "UNDELIV", "012")
    assert r.final and not r.delivered


def test_genuine_ucs2_receipt_wins_even_when_its_octets_read_as_latin1_have_a_key():
    # The text field quotes "楤㩓" (U+6964 U+3A53): octets 69 64 3A 53, "id:S" in latin-1, after
    # the space's 00 20. The UTF-16 reading has its keys, so it is the one taken.
    text = "id:1234 stat:DELIVRD text: 楤㩓"
    octets = text.encode("utf-16-be")
    assert "id" in parse_receipt_text(octets.decode("latin-1"))  # the trap is real
    r = parse_receipt(
        DeliverSm(
            esm_class=c.ESM_CLASS_SMSC_DELIVERY_RECEIPT,
            data_coding=c.DATA_CODING_UCS2,
            short_message=octets,
        )
    )
    assert (r.message_id, r.stat, r.text) == ("1234", "DELIVRD", "楤㩓")


def test_dates_written_without_a_separator_are_normalised():
    text = "id:7 submitdate:2401011200 DoneDate:2401011201 stat:DELIVRD"
    assert parse_receipt_text(text) == {
        "id": "7",
        "submit date": "2401011200",
        "done date": "2401011201",
        "stat": "DELIVRD",
    }
    r = parse_receipt(
        DeliverSm(esm_class=c.ESM_CLASS_SMSC_DELIVERY_RECEIPT, short_message=text.encode())
    )
    assert (r.submit_date, r.done_date) == ("2401011200", "2401011201")
