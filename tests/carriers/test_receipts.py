"""Delivery receipt recognition and parsing, as carriers really send them."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carriers.smpp import constants as c
from carriers.smpp import receipts
from carriers.smpp.pdus import DeliverSm, Tlv
from carriers.smpp.receipts import (
    FINAL_STATES,
    FINAL_STATS,
    format_receipt_text,
    is_final_stat,
    is_receipt,
    parse_any_receipt_text,
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


# --- ACCEPTD is not final ---------------------------------------------------------------------


def test_acceptd_receipt_is_not_final_and_the_later_delivrd_one_is():
    """ACCEPTD ("accepted by the next network") comes before the real outcome: were it final, the
    DELIVRD receipt that follows would be filed as late and the customer told "undelivered"."""
    accepted = parse_receipt(receipt(STANDARD.replace(b"stat:DELIVRD", b"stat:ACCEPTD")))
    delivered = parse_receipt(receipt(STANDARD))
    assert accepted.message_id == delivered.message_id == "0123456789"
    assert accepted.stat == "ACCEPTD"
    assert not accepted.final and not accepted.delivered
    assert delivered.final and delivered.delivered


def test_accepted_message_state_alone_is_not_final():
    """A TLV-only receipt with message_state ACCEPTED (6) reads as ACCEPTD, not final."""
    r = parse_receipt(
        receipt(tlvs=(Tlv(c.RECEIPTED_MESSAGE_ID, b"77\0"), Tlv(c.MESSAGE_STATE, bytes([6]))))
    )
    assert (r.stat, r.message_state) == ("ACCEPTD", c.ACCEPTED)
    assert not r.final and not r.delivered
    assert not is_final_stat("ACCEPTD") and not is_final_stat("acceptd")
    assert c.ACCEPTED not in FINAL_STATES and "ACCEPTD" not in FINAL_STATS


# --- UCS-2 receipt texts ----------------------------------------------------------------------

UCS2_TEXT = (
    "id:ab12 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 "
    "stat:UNDELIV err:012 text:Привет 😀"
)


def test_ucs2_receipt_text_is_decoded_as_utf16_before_it_is_parsed():
    """data_coding 0x08: read as latin-1 every other character would be a NUL, no key found."""
    r = parse_receipt(receipt(UCS2_TEXT.encode("utf-16-be"), data_coding=c.DATA_CODING_UCS2))
    assert (r.message_id, r.stat, r.err) == ("ab12", "UNDELIV", "012")
    assert (r.submit_date, r.done_date) == ("2401011200", "2401011201")
    assert r.text == "Привет 😀"
    assert r.final and not r.delivered


def test_ucs2_receipt_text_in_message_payload_and_after_a_udh():
    in_payload = parse_receipt(
        receipt(
            data_coding=c.DATA_CODING_UCS2,
            tlvs=(Tlv(c.MESSAGE_PAYLOAD, "id:42 stat:DELIVRD".encode("utf-16-be")),),
        )
    )
    assert (in_payload.message_id, in_payload.stat) == ("42", "DELIVRD")
    after_udh = parse_receipt(
        receipt(
            b"\x05\x00\x03\x01\x01\x01" + "id:43 stat:EXPIRED".encode("utf-16-be"),
            esm_class=c.ESM_CLASS_SMSC_DELIVERY_RECEIPT | c.ESM_CLASS_UDHI,
            data_coding=c.DATA_CODING_UCS2,
        )
    )
    assert (after_udh.message_id, after_udh.stat) == ("43", "EXPIRED")


def test_ucs2_receipt_whose_text_is_ascii_all_the_same_is_still_read():
    """Some SMSCs copy the submit's data_coding into the receipt yet write ASCII
    (farhadi/node-smpp#68): "id:" read as UTF-16 is "楤㩓…" and has no key; latin-1 has."""
    r = parse_receipt(receipt(STANDARD, data_coding=c.DATA_CODING_UCS2))
    assert (r.message_id, r.stat, r.text) == ("0123456789", "DELIVRD", "Hello world")


def test_ucs2_receipt_that_is_garbage_is_survivable():
    r = parse_receipt(receipt(b"\xd8\x3d\x00", data_coding=c.DATA_CODING_UCS2))  # lone, odd
    assert r.message_id is None and r.stat is None and not r.final


async def test_ucs2_receipt_over_the_wire_is_read(sim, start_client):
    """Encoded, framed, sent by the simulator and decoded by the client: the short_message octets
    stay raw through the decoder, and the receipt parser decodes them as UTF-16-BE."""
    r = await start_client(sim.port)
    await r.client.wait_bound(timeout=5)
    sim.send_deliver(
        DeliverSm(
            esm_class=c.ESM_CLASS_SMSC_DELIVERY_RECEIPT,
            source_addr="447911123456",
            destination_addr="12345",
            data_coding=c.DATA_CODING_UCS2,
            short_message=UCS2_TEXT.encode("utf-16-be"),
        )
    )
    await sim.wait_for(lambda: sim.stats.receipts_acked == 1)
    [pdu] = r.received
    assert pdu.data_coding == c.DATA_CODING_UCS2
    got = parse_receipt(pdu)
    assert (got.message_id, got.stat, got.text) == ("ab12", "UNDELIV", "Привет 😀")


# --- esm_class message types: receipts, acknowledgements, MO ---------------------------------

RECEIPT_TEXT = b"id:0123456789 stat:DELIVRD err:000 text:"


@pytest.mark.parametrize(
    "esm_class",
    [
        0x04,  # SMSC delivery receipt
        0x20,  # intermediate delivery notification
        0x04 | c.ESM_CLASS_UDHI,  # the flags outside the type mask do not change the type
        0x04 | 0x03 | c.ESM_CLASS_REPLY_PATH,
    ],
)
def test_smsc_receipts_are_receipts_read_in_full(esm_class):
    pdu = receipt(
        b"\x05\x00\x03\x01\x01\x01" + RECEIPT_TEXT if esm_class & c.ESM_CLASS_UDHI
        else RECEIPT_TEXT,
        esm_class=esm_class,
    )  # fmt: skip
    assert is_receipt(pdu)
    r = parse_receipt(pdu)
    assert (r.message_id, r.stat, r.acknowledgement) == ("0123456789", "DELIVRD", False)
    assert r.final and r.delivered


@pytest.mark.parametrize(
    "esm_class",
    [
        0x08,  # SME delivery acknowledgement
        0x10,  # SME manual/user acknowledgement
        0x08 | c.ESM_CLASS_UDHI,
        0x10 | 0x03 | c.ESM_CLASS_REPLY_PATH,
        0x18,  # conversation abort
        0x0C,  # reserved
        0x3C,  # reserved
    ],
)
def test_sme_acknowledgements_are_neither_inbound_text_nor_final(esm_class):
    """The handset's words, not the SMSC's: not given to the application as an MO message
    (parse_receipt is not None), and never final, even when they look like a DELIVRD receipt."""
    udh = b"\x05\x00\x03\x01\x01\x01" if esm_class & c.ESM_CLASS_UDHI else b""
    pdu = receipt(udh + RECEIPT_TEXT, esm_class=esm_class)
    assert is_receipt(pdu)
    r = parse_receipt(pdu)
    assert r is not None and r.acknowledgement
    assert r.message_id is None  # an id in the handset's text matches nothing
    assert r.stat is None and not r.final and not r.delivered
    assert r.text == RECEIPT_TEXT.decode()


def test_an_acknowledgement_names_its_message_only_by_the_receipted_message_id_tlv():
    r = parse_receipt(
        receipt(
            b"id:999 stat:DELIVRD",
            esm_class=c.ESM_CLASS_SME_DELIVERY_ACK,
            tlvs=(Tlv(c.RECEIPTED_MESSAGE_ID, b"m-1\0"), Tlv(c.MESSAGE_STATE, b"\x02")),
        )
    )
    assert (r.message_id, r.acknowledgement, r.message_state) == ("m-1", True, c.DELIVERED)
    assert r.stat is None and not r.final


@pytest.mark.parametrize(
    "short_message, data_coding",
    [
        (b"", 0),
        (b"\xff\xfe\x1b", 0),
        (b"\xd8", c.DATA_CODING_UCS2),
        (b"\x09ab", 0),  # with UDHI below: a header longer than the message
        ("Ok, got it 👍".encode("utf-16-be"), c.DATA_CODING_UCS2),
    ],
)
def test_acknowledgements_with_any_content_never_crash(short_message, data_coding):
    for esm_class in (0x08, 0x10, 0x08 | c.ESM_CLASS_UDHI):
        r = parse_receipt(receipt(short_message, esm_class=esm_class, data_coding=data_coding))
        assert r.acknowledgement and not r.final


@pytest.mark.parametrize(
    "esm_class",
    [0x00, 0x01, 0x02, 0x03, c.ESM_CLASS_UDHI, c.ESM_CLASS_REPLY_PATH, 0xC3],
)
def test_default_message_type_is_an_inbound_message(esm_class):
    udh = b"\x05\x00\x03\x01\x01\x01" if esm_class & c.ESM_CLASS_UDHI else b""
    pdu = receipt(udh + RECEIPT_TEXT, esm_class=esm_class)
    assert not is_receipt(pdu)
    assert parse_receipt(pdu) is None


async def test_each_message_type_over_the_wire_is_acknowledged_and_counted(sim, start_client):
    """Through the simulator and the client: every deliver_sm is answered ESME_ROK, only the
    0x00 one is counted as inbound, and the acknowledgements say nothing final."""
    r = await start_client(sim.port)
    await r.client.wait_bound(timeout=5)
    kinds = (0x00, 0x04, 0x08, 0x10, 0x20)
    for esm_class in kinds:
        sim.send_deliver(
            DeliverSm(
                esm_class=esm_class,
                source_addr="447911123456",
                destination_addr="12345",
                short_message=b"id:5 stat:DELIVRD err:000 text:",
            )
        )
    await sim.wait_for(lambda: sim.stats.receipts_acked == 4 and sim.stats.mo_acked == 1)
    assert sim.stats.deliver_errors == 0
    assert (r.client.stats.receipts, r.client.stats.inbound) == (4, 1)
    by_type = {pdu.esm_class: parse_receipt(pdu) for pdu in r.received}
    assert set(by_type) == set(kinds)
    assert by_type[0x00] is None
    assert by_type[0x04].final and by_type[0x04].delivered
    assert by_type[0x20].stat == "DELIVRD"  # an intermediate notification is read in full
    for ack in (by_type[0x08], by_type[0x10]):
        assert ack.acknowledgement and not ack.final and ack.stat is None


# -- the Appendix B fast path reads what the general parser reads --------------------------------

_TOKEN = st.lists(
    st.sampled_from([*"0123456789abcdefABCDEF:_-.", "stat:", "id:", "text:", "é"]), max_size=6
).map("".join)
_FREE_TEXT = st.lists(
    st.sampled_from([*"ab :\n\t", "stat:X", "id:7", "text:", "err:1"]), max_size=12
).map("".join)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_TOKEN, min_size=7, max_size=7), _FREE_TEXT)
def test_the_appendix_b_layout_is_read_as_the_general_parser_reads_it(values, free_text) -> None:
    text = (
        f"id:{values[0]} sub:{values[1]} dlvrd:{values[2]} submit date:{values[3]} "
        f"done date:{values[4]} stat:{values[5]} err:{values[6]} text:{free_text}"
    )
    assert parse_receipt_text(text) == parse_any_receipt_text(text)


def test_the_fast_path_takes_the_common_receipt() -> None:
    text = (
        "id:0A1B sub:001 dlvrd:001 submit date:2612040101 done date:2612040102 stat:DELIVRD "
        "err:000 text:hi"
    )
    assert receipts._APPENDIX_B.fullmatch(text) is not None
    assert parse_receipt_text(text)["stat"] == "DELIVRD"
