"""Behaviour the mutation tester (tests/mutate.py) found unpinned in routing.text."""

from __future__ import annotations

import pytest

from routing.text import count_units, is_gsm7, plan_text

# In the Turkish national single-shift table (GSMCHARMAPS[1]) but not in the default one: smsgw
# sends no national language shift, so these need UCS-2.
TURKISH_SHIFT_ONLY = "çĞğİıŞş"


@pytest.mark.parametrize("char", TURKISH_SHIFT_ONLY)
def test_national_shift_table_characters_are_not_gsm7(char):
    assert not is_gsm7(char)
    assert plan_text(f"Merhaba {char}").encoding == "ucs2"


def test_default_extension_characters_are_gsm7_at_two_septets():
    assert is_gsm7("€[]{}~^\\|")
    assert count_units("€", "gsm7") == 2


def test_ucs2_units_at_the_edge_of_the_basic_multilingual_plane():
    assert count_units("\uffff", "ucs2") == 1  # the last BMP code point: one UTF-16 unit
    assert count_units("\U00010000", "ucs2") == 2  # the first astral one: a surrogate pair


def test_an_unknown_mode_is_refused_whatever_the_body():
    with pytest.raises(ValueError, match="long message mode 'bogus'"):
        plan_text("hi", mode="bogus")
    with pytest.raises(ValueError, match="long message mode 'bogus'"):
        plan_text("x" * 200, mode="bogus")  # the same error whatever the length


def test_a_text_plan_is_an_immutable_hashable_value():
    plan = plan_text("hi")
    with pytest.raises(AttributeError):
        plan.encoding = "ucs2"  # type: ignore[misc]
    assert hash(plan) == hash(plan_text("hi"))
    assert {plan, plan_text("hi")} == {plan}
