from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carriers.smpp.message_ids import message_id_key


@pytest.mark.parametrize(
    ("fmt", "response", "receipt"),
    [
        ("auto", "1A2B", "1a2b"),  # case
        ("auto", "0000012345", "12345"),  # zero padding on one side
        ("auto", "0", "000"),
        ("dec", "1A2B", "6699"),  # response hex, receipt decimal
        ("dec", "0000001a2b", "0006699"),
        ("hex", "6699", "1a2b"),  # response decimal, receipt hex
        ("hex", "6699", "00001A2B"),
        ("as-is", "abc-1", "abc-1"),
    ],
)
def test_both_sides_of_one_message_get_one_key(fmt, response, receipt):
    assert message_id_key(response, fmt, "response") == message_id_key(receipt, fmt, "receipt")


@pytest.mark.parametrize(
    ("fmt", "response", "receipt"),
    [
        ("as-is", "1A2B", "1a2b"),  # as-is means as written
        ("auto", "1A2B", "6699"),  # auto does not guess a base
        ("dec", "6699", "6699"),  # "dec": the response was hex, so 0x6699 is not 6699
        ("hex", "10", "10"),  # decimal 10 is 0xa, not 0x10
    ],
)
def test_different_messages_keep_different_keys(fmt, response, receipt):
    assert message_id_key(response, fmt, "response") != message_id_key(receipt, fmt, "receipt")


def test_an_id_that_is_not_a_number_in_its_base_falls_back_to_the_auto_key():
    assert message_id_key("msg-00A1", "dec", "response") == "msg-00a1"
    assert message_id_key("msg-00A1", "dec", "receipt") == "msg-00a1"


@given(st.integers(min_value=0, max_value=2**64), st.integers(min_value=0, max_value=12))
def test_any_number_matches_across_bases(number, padding):
    as_hex, as_dec = "0" * padding + f"{number:X}", "0" * padding + str(number)
    assert message_id_key(as_hex, "dec", "response") == message_id_key(as_dec, "dec", "receipt")
    assert message_id_key(as_dec, "hex", "response") == message_id_key(as_hex, "hex", "receipt")
