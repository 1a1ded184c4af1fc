"""Message SIDs: Twilio's format, time-ordered, and still unguessable."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from gateway.ids import MESSAGE, is_sid, new_ordered_sid, new_sid

MAX_MS = 2**48 - 1


def test_an_ordered_sid_is_a_well_formed_message_sid():
    sid = new_ordered_sid(MESSAGE)
    assert is_sid(sid, MESSAGE)
    assert is_sid(new_sid(MESSAGE), MESSAGE)


@given(st.integers(0, MAX_MS), st.integers(0, MAX_MS))
def test_sids_sort_as_their_milliseconds_do(one, other):
    assume(one != other)
    earlier, later = sorted((one, other))
    assert new_ordered_sid(MESSAGE, earlier) < new_ordered_sid(MESSAGE, later)


def test_the_prefix_is_the_clock_and_the_rest_is_random():
    sids = {new_ordered_sid(MESSAGE, 1_700_000_000_000) for _ in range(1000)}
    assert len(sids) == 1000  # 80 random bits: no repeats within one millisecond
    assert {sid[2:14] for sid in sids} == {f"{1_700_000_000_000:012x}"}
    tails = [int(sid[14:], 16) for sid in sids]
    # Random, not a counter: the tails spread over the whole 80-bit range.
    assert min(tails) < 2**76 and max(tails) > 2**80 - 2**76
