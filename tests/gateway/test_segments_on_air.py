"""Every part the gateway submits fits one SMS on the air: 140 octets, UDH included.

Counted independently of the splitter's own cost function: GSM 7-bit as the septets gsmcodecs
encodes (one per octet, unpacked, as SMPP carries them) plus the UDH padded to a septet boundary
(3GPP TS 23.040 §9.2.3.24), UCS-2 as octets. The parts and the reference are the ones delivery
really uses: routing's plan at accept, the lane's reference from the message SID.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carriers.smpp import constants as c
from carriers.smpp.submits import build_submits
from carriers.smpp.text import split_udh
from gateway.engine.delivery import concat_reference
from routing.text import plan_text

SMS_OCTETS = 140
GSM_SAMPLE = (
    "@£$¥èéùìòÇ\nØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡AZÄÖÑÜ§¿azäöñüà"
    "€[]{}~^\\|"  # the extension table: two septets each
)
OTHER = "ąčęėįšųūž中文😀👍🏽ß"  # UCS-2, emoji (surrogate pairs) included


def on_air_octets(short_message: bytes, data_coding: int, has_udh: bool) -> int:
    udh, payload = split_udh(short_message) if has_udh else (b"", short_message)
    udh = udh or b""
    if data_coding == c.DATA_CODING_DEFAULT:
        udh_septets = math.ceil(len(udh) * 8 / 7)
        return math.ceil((udh_septets + len(payload)) * 7 / 8)
    return len(udh) + len(payload)


ADDRESSES = dict(
    source_addr="15017122661",
    source_ton=1,
    source_npi=1,
    destination_addr="14155552671",
    dest_ton=1,
    dest_npi=1,
)


def submits_for(body: str, sid: str):
    plan = plan_text(body)
    return build_submits(
        **ADDRESSES,
        parts=plan.parts,
        encoding=plan.encoding,
        reference=concat_reference(sid),
    )


SIDS = st.from_regex(r"SM[0-9a-f]{32}", fullmatch=True)


@given(st.text(st.sampled_from(GSM_SAMPLE), min_size=140, max_size=1600), SIDS)
def test_every_gsm7_part_fits_140_octets(body, sid):
    for pdu in submits_for(body, sid):
        has_udh = bool(pdu.esm_class & c.ESM_CLASS_UDHI)
        assert on_air_octets(pdu.short_message, pdu.data_coding, has_udh) <= SMS_OCTETS


@given(st.text(st.sampled_from(GSM_SAMPLE + OTHER), min_size=60, max_size=800), SIDS)
def test_every_ucs2_part_fits_140_octets(body, sid):
    for pdu in submits_for(body, sid):
        has_udh = bool(pdu.esm_class & c.ESM_CLASS_UDHI)
        assert on_air_octets(pdu.short_message, pdu.data_coding, has_udh) <= SMS_OCTETS


def test_full_parts_use_the_whole_sms_with_a_six_octet_header():
    sid = "SM" + "f" * 32  # a reference that would not fit 8 bits if taken from 4 hex digits
    gsm = submits_for("a" * 306, sid)
    assert [len(p.short_message) for p in gsm] == [6 + 153, 6 + 153]
    ucs2 = submits_for("ą" * 134, sid)
    assert [len(p.short_message) for p in ucs2] == [6 + 134, 6 + 134]
    assert all(on_air_octets(p.short_message, p.data_coding, True) == 140 for p in gsm + ucs2)


def test_a_part_too_long_for_one_sms_is_refused_not_sent():
    with pytest.raises(ValueError, match="141 octets with its 7-octet UDH"):
        build_submits(
            **ADDRESSES,
            parts=["ą" * 67, "ą" * 67],
            encoding="ucs2",
            reference=300,  # 16-bit: one octet more than the split allowed for
        )
