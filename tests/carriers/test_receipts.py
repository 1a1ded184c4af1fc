"""Delivery receipt recognition and parsing, as carriers really send them."""

from __future__ import annotations

from datetime import datetime

import pytest

from carriers.smpp import constants as c
from carriers.smpp.pdus import DeliverSm, Tlv
from carriers.smpp.receipts import (
    FINAL_STATES,
    FINAL_STATS,
    format_receipt_text,
    is_final_stat,
    is_receipt,
    parse_receipt,
    parse_receipt_text,
    state_for_stat,
)

STANDARD = (
    b"id:0123456789 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 "
    b"stat:DELIVRD err:000 text:Hello world"
)


def receipt(short_message=b"", esm_class=c.ESM_CLASS_SMSC_DELIVERY_RECEIPT, tlvs=(), **kw):
    return DeliverSm(esm_class=esm_class, short_message=short_message, tlvs=tlvs, **kw)


def test_standard_receipt():
    r = parse_receipt(receipt(STANDARD))
    assert r.message_id == "0123456789"
    assert (r.stat, r.err, r.sub, r.dlvrd) == ("DELIVRD", "000", "001", "001")
    assert (r.submit_date, r.done_date) == ("2401011200", "2401011201")
    assert r.text == "Hello world"
    assert r.message_state is None and r.network_error_code is None
    assert r.final and r.delivered


def test_reordered_uppercase_receipt_with_underscored_dates():
    text = b"STAT:UNDELIV ERR:012 ID:ab12 Submit_Date:2401011200 DONE DATE:240101120105 SUB:1"
    r = parse_receipt(receipt(text))
    assert (r.message_id, r.stat, r.err) == ("ab12", "UNDELIV", "012")
    assert (r.submit_date, r.done_date, r.sub) == ("2401011200", "240101120105", "1")
    assert r.dlvrd is None and r.text is None
    assert r.final and not r.delivered


def test_text_may_contain_keys_and_colons():
    r = parse_receipt(receipt(STANDARD + b" stat:FAKE id:999 a:b"))
    assert r.stat == "DELIVRD" and r.message_id == "0123456789"
    assert r.text == "Hello world stat:FAKE id:999 a:b"


def test_text_in_the_middle_does_not_swallow_later_fields():
    r = parse_receipt(receipt(b"text:hi there id:5 stat:delivrd err:000"))
    assert (r.text, r.message_id, r.stat, r.err) == ("hi there", "5", "DELIVRD", "000")


def test_tlv_only_receipt():
    r = parse_receipt(
        receipt(
            tlvs=(
                Tlv(c.RECEIPTED_MESSAGE_ID, b"7F3A\0"),
                Tlv(c.MESSAGE_STATE, bytes([c.EXPIRED])),
                Tlv(c.NETWORK_ERROR_CODE, b"\x03\x00\x0b"),
            )
        )
    )
    assert (r.message_id, r.stat, r.message_state) == ("7F3A", "EXPIRED", c.EXPIRED)
    assert r.network_error_code == b"\x03\x00\x0b"
    assert r.err is None and r.final


def test_tlv_id_wins_over_text_id_and_text_stat_over_state():
    r = parse_receipt(
        receipt(
            STANDARD, tlvs=(Tlv(c.RECEIPTED_MESSAGE_ID, b"ff00"), Tlv(c.MESSAGE_STATE, b"\x05"))
        )
    )
    assert (r.message_id, r.stat, r.message_state) == ("ff00", "DELIVRD", 5)


def test_receipted_message_id_alone_marks_a_receipt():
    pdu = receipt(b"", esm_class=0, tlvs=(Tlv(c.RECEIPTED_MESSAGE_ID, b"1\0"),))
    assert is_receipt(pdu)
    assert parse_receipt(pdu).message_id == "1"


def test_intermediate_notification_is_a_receipt_but_not_final():
    r = parse_receipt(
        receipt(b"id:9 stat:ENROUTE", esm_class=c.ESM_CLASS_INTERMEDIATE_NOTIFICATION)
    )
    assert r.stat == "ENROUTE" and not r.final


def test_mo_message_is_not_a_receipt():
    assert parse_receipt(receipt(b"id:1 stat:DELIVRD looks like one", esm_class=0)) is None
    assert parse_receipt(receipt(b"hello", esm_class=c.ESM_CLASS_UDHI)) is None


def test_missing_fields_are_none_and_garbage_is_survivable():
    r = parse_receipt(receipt(b"\xff\xfe garbage"))
    assert r.message_id is None and r.stat is None and r.text is None
    assert parse_receipt_text("") == {}


def test_receipt_text_in_message_payload_and_after_udh():
    r = parse_receipt(receipt(tlvs=(Tlv(c.MESSAGE_PAYLOAD, b"id:42 stat:REJECTD err:0x5"),)))
    assert (r.message_id, r.stat, r.err) == ("42", "REJECTD", "0x5")
    r = parse_receipt(
        receipt(
            b"\x05\x00\x03\x01\x01\x01id:43 stat:ACCEPTD",
            esm_class=c.ESM_CLASS_SMSC_DELIVERY_RECEIPT | c.ESM_CLASS_UDHI,
        )
    )
    assert (r.message_id, r.stat) == ("43", "ACCEPTD")


def test_format_receipt_text_round_trips_through_the_parser():
    text = format_receipt_text(
        "abc",
        submit_date=datetime(2024, 1, 2, 3, 4),
        done_date=datetime(2024, 1, 2, 3, 5),
        text="a long message text over twenty chars",
    )
    assert text == (
        "id:abc sub:001 dlvrd:001 submit date:2401020304 done date:2401020305 "
        "stat:DELIVRD err:000 text:a long message text "
    )
    fields = parse_receipt_text(text)
    assert fields["id"] == "abc" and fields["done date"] == "2401020305"


def test_state_for_stat():
    assert state_for_stat("delivrd") == c.DELIVERED
    assert state_for_stat("nonsense") is None


@pytest.mark.parametrize(
    ("stat", "final"),
    [
        ("DELIVRD", True),
        ("EXPIRED", True),
        ("DELETED", True),
        ("UNDELIV", True),
        ("REJECTD", True),
        ("UNKNOWN", True),  # SMPP 3.4 §5.2.28: the SMSC lost track of it; nothing more will come
        ("unknown", True),
        ("ENROUTE", False),
        ("ACCEPTD", False),  # carriers follow it with the real outcome
        ("BUFFRED", False),  # not an Appendix B word: says nothing we could report
        (None, False),
    ],
)
def test_final_stats(stat, final):
    assert is_final_stat(stat) is final


def test_final_stats_are_the_final_message_states():
    assert {state_for_stat(stat) for stat in FINAL_STATS} == FINAL_STATES
    assert c.UNKNOWN in FINAL_STATES
    assert c.ENROUTE not in FINAL_STATES and c.ACCEPTED not in FINAL_STATES


def test_unknown_message_state_alone_is_a_final_receipt():
    r = parse_receipt(
        receipt(tlvs=(Tlv(c.RECEIPTED_MESSAGE_ID, b"77\0"), Tlv(c.MESSAGE_STATE, bytes([7]))))
    )
    assert (r.stat, r.final, r.delivered) == ("UNKNOWN", True, False)


def test_receipt_without_a_stat_is_not_final():
    assert not parse_receipt(receipt(b"id:5 err:000")).final
