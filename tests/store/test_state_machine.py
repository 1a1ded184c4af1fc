from __future__ import annotations

import itertools

import pytest

from store.states import (
    FINAL,
    INITIAL,
    IllegalTransition,
    Status,
    can_transition,
    check_transition,
    is_reported,
)

S = Status
ALLOWED = {
    (S.QUEUED, S.SENDING),
    (S.SENDING, S.SENT),
    (S.SENDING, S.QUEUED),
    (S.SENDING, S.FAILED),
    (S.SENT, S.DELIVERED),
    (S.SENT, S.UNDELIVERED),
    (S.QUEUED, S.FAILED),
    (S.QUEUED, S.CANCELED),
    (S.SCHEDULED, S.QUEUED),
    (S.SCHEDULED, S.CANCELED),
    (S.RECEIVING, S.RECEIVED),
}


@pytest.mark.parametrize(("a", "b"), list(itertools.product(Status, Status)))
def test_transition_table_allows_exactly_the_documented_pairs(a: Status, b: Status) -> None:
    assert can_transition(a, b) is ((a, b) in ALLOWED)


def test_statuses_use_twilio_names() -> None:
    assert [str(s) for s in Status] == [
        "scheduled",
        "queued",
        "sending",
        "sent",
        "delivered",
        "undelivered",
        "failed",
        "canceled",
        "receiving",
        "received",
    ]


def test_sent_to_sent_is_not_a_transition() -> None:
    assert not can_transition(S.SENT, S.SENT)
    with pytest.raises(IllegalTransition):
        check_transition(S.SENT, S.SENT)


def test_final_statuses_have_no_way_out() -> None:
    assert {S.DELIVERED, S.UNDELIVERED, S.FAILED, S.CANCELED, S.RECEIVED} == FINAL
    for final, other in itertools.product(FINAL, Status):
        assert not can_transition(final, other)


def test_messages_are_created_queued_scheduled_receiving_or_received() -> None:
    # received: an inbound message that came whole, in one PDU
    assert {S.QUEUED, S.SCHEDULED, S.RECEIVING, S.RECEIVED} == INITIAL
    assert can_transition(None, S.QUEUED)
    assert not can_transition(None, S.SENT)


def test_illegal_transition_names_the_message_and_both_statuses() -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(S.DELIVERED, S.SENDING, sid="SM123")
    error = info.value
    assert (error.sid, error.from_status, error.to_status) == ("SM123", S.DELIVERED, S.SENDING)
    assert "SM123" in str(error)
    assert "delivered" in str(error)
    assert "final" in str(error)


def test_retries_and_repeated_statuses_are_not_reported() -> None:
    assert is_reported(S.QUEUED, S.SENDING, last_reported=None)
    assert not is_reported(S.SENDING, S.QUEUED, last_reported=S.SENDING)
    assert not is_reported(S.QUEUED, S.SENDING, last_reported=S.SENDING)
    assert not is_reported(None, S.QUEUED, last_reported=None)
    assert is_reported(S.SENT, S.DELIVERED, last_reported=S.SENT)
