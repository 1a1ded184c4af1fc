"""Long messages per carrier: UDH with an 8- or 16-bit reference, SAR TLVs, or one
message_payload; GSM-7 as data_coding 0x00 or 0x01; at most max_parts segments. Every part that
goes on the air fits 140 octets (counted independently, as in test_segments_on_air), whatever
the mode."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carriers.smpp import constants as c
from carriers.smpp.submits import build_submits
from carriers.smpp.text import concat_udh, parse_concat, split_udh
from routing.errors import TooManyParts
from routing.plan import LongMessages, RouteTable, plan
from routing.text import LONG_MESSAGE_MODES, plan_text
from tests.gateway.test_segments_on_air import ADDRESSES, GSM_SAMPLE, OTHER, on_air_octets

REF = 0x5A


def submits(body: str, mode: str, **options):
    text = plan_text(body, mode)
    return build_submits(**ADDRESSES, parts=text.parts, encoding=text.encoding, reference=REF,
                         long_messages=mode, **options)  # fmt: skip


def test_udh16_uses_the_16_bit_element_and_parts_of_152_septets():
    parts = submits("x" * 400, "udh16")
    assert [len(split_udh(p.short_message)[1]) for p in parts] == [152, 152, 96]
    for n, part in enumerate(parts, start=1):
        udh = split_udh(part.short_message)[0]
        assert udh[:3] == bytes([6, 0x08, 4]) and parse_concat(udh) == (REF, 3, n)
        assert part.esm_class == c.ESM_CLASS_UDHI
    assert len(plan_text("é" * 133 + "ą", "udh16").parts[0]) == 66  # UCS-2: 66 units a part


def test_sar_parts_carry_the_tlvs_and_no_udh():
    parts = submits("y" * 400, "sar")
    assert [len(p.short_message) for p in parts] == [153, 153, 94]  # cut as for the air UDH
    for n, part in enumerate(parts, start=1):
        assert part.esm_class == 0
        tlvs = {t.tag: t.value for t in part.tlvs}
        assert tlvs == {
            c.SAR_MSG_REF_NUM: REF.to_bytes(2, "big"),
            c.SAR_TOTAL_SEGMENTS: bytes([3]),
            c.SAR_SEGMENT_SEQNUM: bytes([n]),
        }


def test_payload_sends_the_whole_text_in_one_submit():
    body = "Grüße 😀 " * 60
    [submit] = submits(body, "payload")
    assert submit.short_message == b"" and submit.esm_class == 0
    assert submit.tlv(c.MESSAGE_PAYLOAD).value.decode("utf-16-be") == body
    assert submit.data_coding == c.DATA_CODING_UCS2


def test_default_alphabet_as_ia5_where_the_carrier_asks():
    assert {p.data_coding for p in submits("z" * 200, "udh", default_data_coding=1)} == {1}
    assert {p.data_coding for p in submits("ж" * 80, "udh", default_data_coding=1)} == {8}
    [whole] = submits("z" * 300, "payload", default_data_coding=1)
    assert whole.data_coding == 1


@pytest.mark.parametrize("mode", ["udh", "udh16", "sar"])
@given(body=st.text(alphabet=GSM_SAMPLE + OTHER, max_size=700))
def test_every_part_fits_one_sms_in_every_mode(mode, body):
    parts = submits(body, mode)
    for n, part in enumerate(parts, start=1):
        short_message, has_udh = part.short_message, bool(part.esm_class & c.ESM_CLASS_UDHI)
        if part.tlvs:  # SAR: the SMSC puts a 6-octet concatenation UDH in front on the air
            short_message, has_udh = concat_udh(REF, len(parts), n) + short_message, True
        assert on_air_octets(short_message, part.data_coding, has_udh) <= 140


def test_max_parts_refuses_at_accept_with_21617():
    table = RouteTable(("acme",), long_messages={"acme": LongMessages("udh", max_parts=2)})
    assert (
        plan(table, to="+14155550100", from_="+15017122661", body="a" * 306).text.num_segments == 2
    )
    with pytest.raises(TooManyParts) as info:
        plan(table, to="+14155550100", from_="+15017122661", body="a" * 307)
    assert info.value.code == 21617 and "at most 2" in info.value.message
    payload = RouteTable(("acme",), long_messages={"acme": LongMessages("payload", max_parts=2)})
    with pytest.raises(TooManyParts):  # counted as the SMSC will split it
        plan(payload, to="+14155550100", from_="+15017122661", body="a" * 307)


def test_the_mode_is_decided_at_accept_and_stored_with_the_route():
    from store.models import SmppAddress, StoredRoute
    from store.sqlite_ops.rows import route_from_json, route_json

    for mode in LONG_MESSAGE_MODES:
        route = StoredRoute(SmppAddress("1", 1, 1), SmppAddress("2", 1, 1), ("a", "b"), mode)
        assert route_from_json(route_json(route)) == route
    # a route stored before modes existed reads as udh
    assert route_from_json('[["1",1,1],["2",1,1],["a"]]').long_messages == "udh"
