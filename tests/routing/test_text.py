import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.text import count_units, is_gsm7, plan_text

GSM_SAMPLE = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCXYZÄÖÑÜ§¿abcxyzäöñüà"
)
EXTENSION = "€[]{}~^\\|"


def test_short_gsm7_text_is_one_segment():
    plan = plan_text("Hello from smsgw")
    assert plan.encoding == "gsm7"
    assert plan.parts == ("Hello from smsgw",)


def test_160_septets_fit_one_segment_and_161_need_two():
    assert plan_text("a" * 160).num_segments == 1
    plan = plan_text("a" * 161)
    assert plan.num_segments == 2
    assert [len(p) for p in plan.parts] == [153, 8]


def test_extension_characters_cost_two_septets():
    assert count_units("€", "gsm7") == 2
    assert plan_text("€" * 80).num_segments == 1
    assert plan_text("€" * 81).num_segments == 2


def test_escape_sequence_is_never_split():
    body = "a" * 152 + "€" + "b" * 10
    plan = plan_text(body)
    assert plan.parts[0] == "a" * 152
    assert plan.parts[1].startswith("€")


def test_non_gsm_text_goes_ucs2_with_70_and_67_units():
    assert plan_text("щ" * 70).num_segments == 1
    plan = plan_text("щ" * 71)
    assert plan.encoding == "ucs2"
    assert [len(p) for p in plan.parts] == [67, 4]


def test_surrogate_pair_is_never_split():
    plan = plan_text("x" + "😀" * 40)
    assert plan.encoding == "ucs2"
    assert all(count_units(part, "ucs2") <= 67 for part in plan.parts)
    assert "".join(plan.parts) == "x" + "😀" * 40


def test_gsm_alphabet_detection():
    assert is_gsm7(GSM_SAMPLE + EXTENSION)
    assert not is_gsm7("naïve")  # ï is not in GSM 03.38
    assert not is_gsm7("`")  # backtick is not in GSM 03.38 (smpplib maps it wrongly)


@given(st.text(max_size=1600))
def test_parts_rejoin_to_the_body_and_respect_limits(body):
    plan = plan_text(body)
    assert "".join(plan.parts) == body
    single, concat = (160, 153) if plan.encoding == "gsm7" else (70, 67)
    if plan.num_segments == 1:
        assert count_units(body, plan.encoding) <= single
    else:
        assert all(0 < count_units(p, plan.encoding) <= concat for p in plan.parts)


@given(st.text(alphabet=GSM_SAMPLE + EXTENSION, max_size=800))
def test_gsm_only_text_is_always_gsm7(body):
    assert plan_text(body).encoding == "gsm7"


# --- astral characters: two UTF-16 code units each, counted independently ----------------------
#
# The expected numbers below come from the UTF-16-BE octets themselves, not from routing's cost
# function: a message of more than 70 units goes in parts of at most 67 units (6-octet UDH +
# 134 octets = 140), and a part never ends between the two units of a surrogate pair.

UNITS_SINGLE, UNITS_CONCAT, SMS_OCTETS, UDH_OCTETS = 70, 67, 140, 6


def _units(text: str) -> list[int]:
    raw = text.encode("utf-16-be")
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def _expected_ucs2_parts(text: str) -> int:
    """Parts needed, by a greedy walk over the code units that keeps surrogate pairs whole."""
    units = _units(text)
    if len(units) <= UNITS_SINGLE:
        return 1
    parts, used, i = 1, 0, 0
    while i < len(units):
        size = 2 if 0xD800 <= units[i] <= 0xDBFF else 1
        if used + size > UNITS_CONCAT:
            parts, used = parts + 1, 0
        used += size
        i += size
    return parts


def _assert_whole_pairs_and_octet_limits(body: str, parts: tuple[str, ...]) -> None:
    encoded = [part.encode("utf-16-be") for part in parts]
    assert b"".join(encoded) == body.encode("utf-16-be")
    for octets in encoded:
        if len(parts) == 1:
            assert len(octets) <= SMS_OCTETS
        else:
            assert 0 < len(octets) <= SMS_OCTETS - UDH_OCTETS
        first, last = int.from_bytes(octets[:2], "big"), int.from_bytes(octets[-2:], "big")
        assert not 0xDC00 <= first <= 0xDFFF, "a part starts with the low half of a pair"
        assert not 0xD800 <= last <= 0xDBFF, "a part ends with the high half of a pair"
        octets.decode("utf-16-be")  # strict: each part is valid UTF-16 on its own


def test_70_emoji_are_140_units_and_need_three_parts_not_one_of_280_octets():
    body = "😀" * 70
    assert len(body.encode("utf-16-be")) // 2 == 140  # > 70: no single segment
    # 67 // 2 = 33 emoji (132 octets) a part: ceil(70 / 33) = 3
    plan = plan_text(body)
    assert plan.encoding == "ucs2"
    assert plan.num_segments == 3 == _expected_ucs2_parts(body)
    assert [len(p.encode("utf-16-be")) for p in plan.parts] == [132, 132, 16]
    _assert_whole_pairs_and_octet_limits(body, plan.parts)


def test_67_emoji_need_three_parts_because_a_pair_is_never_split():
    """134 units would fit two parts of 67 only by cutting the 34th emoji in half."""
    body = "😀" * 67
    assert len(body.encode("utf-16-be")) // 2 == 2 * UNITS_CONCAT
    plan = plan_text(body)
    assert plan.num_segments == 3 == _expected_ucs2_parts(body)
    _assert_whole_pairs_and_octet_limits(body, plan.parts)


def test_35_emoji_fit_one_segment_and_36_do_not():
    assert plan_text("😀" * 35).num_segments == 1  # 70 units, 140 octets
    assert plan_text("😀" * 36).num_segments == 2  # 72 units: 33 + 3 emoji
    assert len(plan_text("😀" * 35).parts[0].encode("utf-16-be")) == SMS_OCTETS


def test_a_pair_that_would_straddle_the_67th_unit_moves_to_the_next_part():
    body = "щщ" + "😀" * 40  # units 67-68 would be the 33rd emoji
    plan = plan_text(body)
    assert plan.parts[0] == "щщ" + "😀" * 32
    assert len(plan.parts[0].encode("utf-16-be")) == 132
    assert plan.num_segments == 2 == _expected_ucs2_parts(body)
    _assert_whole_pairs_and_octet_limits(body, plan.parts)


@pytest.mark.parametrize("count", range(1, 200))
def test_emoji_runs_plan_to_the_independent_count(count):
    body = "😀" * count
    expected = 1 if 2 * count <= UNITS_SINGLE else -(-count // (UNITS_CONCAT // 2))
    assert expected == _expected_ucs2_parts(body)
    plan = plan_text(body)
    assert plan.num_segments == expected
    _assert_whole_pairs_and_octet_limits(body, plan.parts)


@given(st.text(alphabet="щa€😀🇬🇧𝄞", max_size=400).map(lambda s: "щ" + s))
def test_ucs2_plans_match_an_independent_count_of_utf16_units(body):
    plan = plan_text(body)
    assert plan.encoding == "ucs2"
    assert plan.num_segments == _expected_ucs2_parts(body)
    _assert_whole_pairs_and_octet_limits(body, plan.parts)


def test_emoji_parts_go_on_the_air_in_at_most_140_octets():
    from carriers.smpp import constants as c
    from carriers.smpp.submits import build_submits

    plan = plan_text("😀" * 70)
    submits = build_submits(
        source_addr="Acme", source_ton=5, source_npi=0, destination_addr="447911123456",
        dest_ton=1, dest_npi=1, parts=plan.parts, encoding=plan.encoding, reference=0x2A,
    )  # fmt: skip
    assert len(submits) == 3
    for index, pdu in enumerate(submits, start=1):
        assert pdu.data_coding == c.DATA_CODING_UCS2 and pdu.esm_class == c.ESM_CLASS_UDHI
        assert len(pdu.short_message) <= SMS_OCTETS
        assert pdu.short_message[:6] == bytes([5, 0, 3, 0x2A, 3, index])
    assert b"".join(p.short_message[6:] for p in submits).decode("utf-16-be") == "😀" * 70
