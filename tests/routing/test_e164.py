"""The E.164 fast path answers exactly as phonenumbers does (routing/e164.py)."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing import e164

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
NON_GEO = sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)
TYPES = [t for t in vars(phonenumbers.PhoneNumberType).values() if isinstance(t, int)]


def _examples() -> list[str]:
    """Every example number the metadata has, for every region and type, as E.164."""
    found = set()
    for region in REGIONS:
        for kind in TYPES:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                found.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    for code in NON_GEO:
        number = phonenumbers.example_number_for_non_geo_entity(code)
        if number is not None:
            found.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return sorted(found)


EXAMPLES = _examples()


def _reference(text: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None


def _agrees(text: str) -> None:
    fast = e164.plus_digits(text)
    slow = _reference(text)
    if fast is not None:
        assert fast == slow, text  # None from the fast path means "ask phonenumbers"
    if slow is not None:
        assert e164.is_valid(slow) == phonenumbers.is_valid_number(slow), text


def test_there_are_examples_for_every_kind_of_region() -> None:
    assert len(EXAMPLES) > 900  # ~245 regions x several types, and the non-geographic codes


@pytest.mark.parametrize("text", EXAMPLES)
def test_every_example_number_is_parsed_and_validated_as_phonenumbers_does(text: str) -> None:
    _agrees(text)
    assert e164.is_valid(_reference(text)), text  # they are valid: the fast path says so too


@st.composite
def _near_examples(draw) -> str:
    """An example number with digits changed, dropped or added: near the edges of the patterns."""
    digits = list(draw(st.sampled_from(EXAMPLES))[1:])
    for _ in range(draw(st.integers(0, 3))):
        how = draw(st.sampled_from(("change", "drop", "add")))
        at = draw(st.integers(0, len(digits) - 1))
        digit = draw(st.sampled_from("0123456789"))
        if how == "change":
            digits[at] = digit
        elif how == "drop" and len(digits) > 1:
            del digits[at]
        else:
            digits.insert(at, digit)
    return "+" + "".join(digits)


@settings(max_examples=3000, deadline=None)
@given(_near_examples())
def test_numbers_near_the_examples_agree_with_phonenumbers(text: str) -> None:
    _agrees(text)


@settings(max_examples=2000, deadline=None)
@given(st.from_regex(r"\A\+[0-9]{1,18}\Z"))
def test_any_plus_and_digits_agree_with_phonenumbers(text: str) -> None:
    _agrees(text)


@pytest.mark.parametrize(
    "text",
    ["+44 7700 900123", "+44(0)7700900123", "+4407700900123", "+393123456789", "+390612345678",
     "+1 415 555 2671", "+8001234567", "+870301234567", "0044 7700 900123"],
)  # fmt: skip
def test_other_shapes_are_left_to_phonenumbers_or_agree(text: str) -> None:
    _agrees(text)
    if " " in text or "(" in text or text.startswith("00"):
        assert e164.plus_digits(text) is None
