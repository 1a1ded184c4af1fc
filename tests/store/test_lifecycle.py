"""`store.lifecycle` alone: no database, no clock — a happening and a view in, a `Change` out.

First a table: each happening from each status it can meet, with the exact change it makes (or
`IllegalTransition`). Then a property: random sequences of happenings applied to a small
in-memory model of one message (its view and its parts), built only from what `decide` returns,
never break the rules the store's customers rely on.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from store.lifecycle import (
    CancelRequested,
    CarrierGone,
    Change,
    Claimed,
    Happening,
    LeaseExpired,
    MessageView,
    PartView,
    ReceiptArrived,
    ReceiptWindowPassed,
    Replayed,
    Requeued,
    SendTimeCame,
    SubmitAccepted,
    SubmitFailed,
    ValidityExpired,
    all_parts_settled,
    creation_change,
    decide,
)
from store.sqlite_ops.working_set import SETTABLE
from store.states import FINAL, REPLAYABLE, IllegalTransition, Status, can_transition

S = Status
NOW = 1_714_564_800_000_000  # µs since the epoch
LEASE_UNTIL = NOW + 30_000_000
RETRY_AT = NOW + 5_000_000
CLEARED = {"lease_owner": None, "lease_expires_at": None}


def view(
    status: Status,
    *,
    attempts: int = 1,
    segments: int = 1,
    callback: bool = True,
    reported: Status | None = None,
) -> MessageView:
    return MessageView("SM1", status, attempts, segments, callback, reported)


def ok(i: int) -> PartView:
    return PartView(i, done=True, delivered=True, stat="DELIVRD", err="000")


def lost(i: int, code: int) -> PartView:
    return PartView(i, done=True, delivered=False, error_code=code, stat="UNDELIV", err="001")


def waiting(i: int) -> PartView:
    return PartView(i)


def final(i: int, *parts: PartView, held: bool = False) -> ReceiptArrived:
    """A final receipt that settles part `i`; `parts` as they are after it."""
    return ReceiptArrived(i, final=True, settles_part=True, parts=parts, held=held)


def undelivered_text(which: str, stat: str = "UNDELIV", err: str = "001") -> str:
    return f"The carrier reported {which} undelivered (receipt stat={stat}, err={err})."


CLAIM = Claimed("node-a", LEASE_UNTIL)
FAIL = SubmitFailed(None, True, 30005, "Invalid destination")
RETRY = SubmitFailed(RETRY_AT, True, None, "temporary")
THROTTLED = SubmitFailed(RETRY_AT, False, None, "ESME_RTHROTTLED", reason="throttled")
REQUEUE = Requeued("bind lost")
EXPIRED = LeaseExpired("owner node-a is gone")
EXPIRED_REASON = (
    "lease_expired: owner node-a is gone; possible duplicate, the carrier may already have it"
)
INTERMEDIATE = ReceiptArrived(0, final=False, settles_part=False, parts=(waiting(0),))
DUPLICATE = ReceiptArrived(0, final=True, settles_part=False, parts=(ok(0),))
ILLEGAL = IllegalTransition

CASES: list[tuple[str, MessageView, Happening, Change | type[IllegalTransition]]] = [
    # -- claimed ---------------------------------------------------------------------------
    (
        "claim from queued: an attempt, a lease, `sending` told",
        view(S.QUEUED, attempts=0),
        CLAIM,
        Change(
            "claimed",
            S.SENDING,
            {"attempts": 1, "lease_owner": "node-a", "lease_expires_at": LEASE_UNTIL},
            S.SENDING,
        ),
    ),
    (
        "claim of a message without a callback URL",
        view(S.QUEUED, attempts=0, callback=False),
        CLAIM,
        Change(
            "claimed",
            S.SENDING,
            {"attempts": 1, "lease_owner": "node-a", "lease_expires_at": LEASE_UNTIL},
        ),
    ),
    (
        "claim after a retry: `sending` is not told twice",
        view(S.QUEUED, attempts=1, reported=S.SENDING),
        CLAIM,
        Change(
            "claimed",
            S.SENDING,
            {"attempts": 2, "lease_owner": "node-a", "lease_expires_at": LEASE_UNTIL},
        ),
    ),
    *(
        (f"claim from {s}", view(s), CLAIM, ILLEGAL)
        for s in (S.SENDING, S.SENT, S.DELIVERED, S.UNDELIVERED, S.FAILED, S.SCHEDULED)
    ),
    # -- submit accepted -------------------------------------------------------------------
    (
        "submit accepted, single part: sent",
        view(S.SENDING, reported=S.SENDING),
        SubmitAccepted(0, 1),
        Change("submit_accepted", S.SENT, {"date_sent": NOW, **CLEARED}, S.SENT),
    ),
    (
        "submit accepted, one part of three: history only",
        view(S.SENDING, segments=3, reported=S.SENDING),
        SubmitAccepted(2, 1),
        Change("part_3_accepted"),
    ),
    (
        "submit accepted, the last part of three: sent",
        view(S.SENDING, segments=3, reported=S.SENDING),
        SubmitAccepted(1, 3),
        Change("submit_accepted", S.SENT, {"date_sent": NOW, **CLEARED}, S.SENT),
    ),
    *(
        (f"duplicate submit response in {s}", view(s), SubmitAccepted(0, 1, True), Change(r))
        for s, r in (
            (S.SENDING, "duplicate_submit_resp"),
            (S.SENT, "duplicate_submit_resp"),
            (S.DELIVERED, "duplicate_submit_resp"),
        )
    ),
    *(
        (f"late submit response in {s}", view(s), SubmitAccepted(0, 1), Change("late_submit_resp"))
        for s in (S.QUEUED, S.SENT, S.DELIVERED, S.FAILED)
    ),
    # -- submit failed ---------------------------------------------------------------------
    (
        "submit failed for good: failed with its error",
        view(S.SENDING, reported=S.SENDING),
        FAIL,
        Change(
            "submit_failed",
            S.FAILED,
            {
                "error_code": 30005,
                "error_message": "Invalid destination",
                "next_attempt_at": None,
                **CLEARED,
            },
            S.FAILED,
        ),
    ),
    (
        "failed while queued (e.g. validity expired), with its own reason",
        view(S.QUEUED, reported=S.SENDING),
        SubmitFailed(None, True, 30001, "expired", reason="validity_expired"),
        Change(
            "validity_expired",
            S.FAILED,
            {"error_code": 30001, "error_message": "expired", "next_attempt_at": None, **CLEARED},
            S.FAILED,
        ),
    ),
    (
        "submit failed, retry: queued again, the attempt counted, not told",
        view(S.SENDING, attempts=2, reported=S.SENDING),
        RETRY,
        Change("retry", S.QUEUED, {"next_attempt_at": RETRY_AT, **CLEARED}),
    ),
    (
        "throttled: queued again and the attempt given back",
        view(S.SENDING, attempts=2, reported=S.SENDING),
        THROTTLED,
        Change("throttled", S.QUEUED, {"next_attempt_at": RETRY_AT, "attempts": 1, **CLEARED}),
    ),
    ("retry of a queued message", view(S.QUEUED), RETRY, ILLEGAL),
    ("throttled while queued", view(S.QUEUED), THROTTLED, ILLEGAL),
    *(
        (f"submit failure in {s}", view(s), h, ILLEGAL)
        for s, h in itertools.product((S.SENT, S.DELIVERED, S.FAILED), (FAIL, RETRY, THROTTLED))
    ),
    # -- requeued / lease expired ----------------------------------------------------------
    (
        "requeued: back in line, the attempt given back",
        view(S.SENDING, attempts=2),
        REQUEUE,
        Change("bind lost", S.QUEUED, {"attempts": 1, **CLEARED}),
    ),
    (
        "requeued never takes attempts below zero",
        view(S.SENDING, attempts=0),
        REQUEUE,
        Change("bind lost", S.QUEUED, {"attempts": 0, **CLEARED}),
    ),
    *((f"requeued from {s}", view(s), REQUEUE, ILLEGAL) for s in (S.QUEUED, S.SENT, S.FAILED)),
    (
        "lease expired: back in line, the attempt kept, a possible duplicate noted",
        view(S.SENDING, attempts=2, reported=S.SENDING),
        EXPIRED,
        Change(EXPIRED_REASON, S.QUEUED, dict(CLEARED)),
    ),
    *((f"lease expired in {s}", view(s), EXPIRED, ILLEGAL) for s in (S.QUEUED, S.SENT)),
    # -- receipts --------------------------------------------------------------------------
    (
        "final receipt, delivered",
        view(S.SENT, reported=S.SENT),
        final(0, ok(0)),
        Change("receipt", S.DELIVERED, {}, S.DELIVERED),
    ),
    (
        "held final receipt, delivered",
        view(S.SENT, reported=S.SENT),
        final(0, ok(0), held=True),
        Change("held_receipt", S.DELIVERED, {}, S.DELIVERED),
    ),
    (
        "final receipt, undelivered: the part's error",
        view(S.SENT, reported=S.SENT),
        final(0, lost(0, 30003)),
        Change(
            "receipt",
            S.UNDELIVERED,
            {"error_code": 30003, "error_message": undelivered_text("the message")},
            S.UNDELIVERED,
        ),
    ),
    (
        "final receipt, no callback URL",
        view(S.SENT, callback=False),
        final(0, lost(0, 30003)),
        Change(
            "receipt",
            S.UNDELIVERED,
            {"error_code": 30003, "error_message": undelivered_text("the message")},
        ),
    ),
    ("intermediate receipt", view(S.SENT), INTERMEDIATE, Change("intermediate_receipt")),
    (
        "held intermediate receipt",
        view(S.SENT),
        replace(INTERMEDIATE, held=True),
        Change("intermediate_held_receipt"),
    ),
    ("duplicate receipt", view(S.SENT), DUPLICATE, Change("duplicate_receipt")),
    *(
        (f"late receipt in {s}", view(s), final(0, ok(0)), Change("late_receipt"))
        for s in (S.DELIVERED, S.UNDELIVERED, S.FAILED)
    ),
    (
        "late held receipt",
        view(S.DELIVERED),
        final(0, ok(0), held=True),
        Change("late_held_receipt"),
    ),
    ("late intermediate receipt", view(S.UNDELIVERED), INTERMEDIATE, Change("late_receipt")),
    (
        "receipt for one part of two",
        view(S.SENT, segments=2),
        final(0, ok(0), waiting(1)),
        Change("receipt_part_1"),
    ),
    (
        "receipt for a part while others are still being submitted",
        view(S.SENDING, segments=2),
        final(0, ok(0)),
        Change("receipt_part_1"),
    ),
    (
        "receipt for a part accepted late, the message queued again",
        view(S.QUEUED),
        final(0, ok(0)),
        Change("receipt_part_1"),
    ),
    (
        "multi-part: every part delivered",
        view(S.SENT, segments=2, reported=S.SENT),
        final(1, ok(0), ok(1)),
        Change("receipt", S.DELIVERED, {}, S.DELIVERED),
    ),
    (
        "multi-part: the error of the first part that failed, whatever the order given",
        view(S.SENT, segments=2, reported=S.SENT),
        final(0, lost(1, 30008), lost(0, 30003)),
        Change(
            "receipt",
            S.UNDELIVERED,
            {"error_code": 30003, "error_message": undelivered_text("part 1 of 2")},
            S.UNDELIVERED,
        ),
    ),
    (
        "multi-part: one part failed, the other still waiting: undelivered at once",
        view(S.SENT, segments=2, reported=S.SENT),
        final(1, waiting(0), lost(1, 30008)),
        Change(
            "receipt",
            S.UNDELIVERED,
            {"error_code": 30008, "error_message": undelivered_text("part 2 of 2")},
            S.UNDELIVERED,
        ),
    ),
    (
        "multi-part: a part failed while others are still being submitted: not yet settled",
        view(S.SENDING, segments=2),
        final(0, lost(0, 30003)),
        Change("receipt_part_1"),
    ),
    (
        "multi-part: only the last part failed",
        view(S.SENT, segments=3, reported=S.SENT),
        final(2, ok(0), ok(1), lost(2, 30008)),
        Change(
            "receipt",
            S.UNDELIVERED,
            {"error_code": 30008, "error_message": undelivered_text("part 3 of 3")},
            S.UNDELIVERED,
        ),
    ),
    # -- receipt window --------------------------------------------------------------------
    (
        "receipt window passed: history only, the message stays sent",
        view(S.SENT),
        ReceiptWindowPassed(72),
        Change("no_receipt: none came within the carrier's 72 h receipt window"),
    ),
    (
        "receipt window passed, a short window",
        view(S.SENT, segments=2),
        ReceiptWindowPassed(0.5),
        Change("no_receipt: none came within the carrier's 0.5 h receipt window"),
    ),
    # -- validity period -------------------------------------------------------------------
    (
        "validity expired while queued: failed 30036, told",
        view(S.QUEUED, reported=None),
        ValidityExpired(),
        Change(
            "validity_expired",
            S.FAILED,
            {
                "error_code": 30036,
                "error_message": "The message's validity period ran out before it could be "
                "sent (ValidityPeriod); it was not sent.",
                "next_attempt_at": None,
                "lease_owner": None,
                "lease_expires_at": None,
            },
            S.FAILED,
            "validity_expired",
        ),
    ),
    (
        "carrier gone from the config: failed 30008, told, into the dead-letter queue",
        view(S.QUEUED, reported=None),
        CarrierGone("old"),
        Change(
            "carrier_gone",
            S.FAILED,
            {
                "error_code": 30008,
                "error_message": "Its carrier 'old' is no longer configured; it was not sent (an "
                "operator can replay it to another carrier from the dead-letter queue).",
                "next_attempt_at": None,
                "lease_owner": None,
                "lease_expires_at": None,
            },
            S.FAILED,
            "carrier_gone",
        ),
    ),
    (
        "carrier gone once on a carrier: not allowed",
        view(S.SENT),
        CarrierGone("old"),
        ILLEGAL,
    ),
    (
        "replayed from the dead-letter queue: failed goes back to queued, budget from zero",
        view(S.FAILED, attempts=10, reported=S.FAILED),
        Replayed("b"),
        Change(
            "replayed to carrier b",
            S.QUEUED,
            {
                "attempts": 0,
                "error_code": None,
                "error_message": None,
                "next_attempt_at": NOW,
                "lease_owner": None,
                "lease_expires_at": None,
            },
        ),
    ),
    (
        "replay of a delivered message: only failed is replayable",
        view(S.DELIVERED),
        Replayed(),
        ILLEGAL,
    ),
    (
        "replay of a canceled message: the customer canceled it, nobody may resend it",
        view(S.CANCELED),
        Replayed(),
        ILLEGAL,
    ),
    (
        "retries exhausted: failed, told, into the dead-letter queue",
        view(S.SENDING, attempts=3),
        SubmitFailed(
            None, True, 30001, "Retries exhausted after 3 attempts: x", "retry", "retries_exhausted"
        ),
        Change(
            "retry",
            S.FAILED,
            {
                "next_attempt_at": None,
                "lease_owner": None,
                "lease_expires_at": None,
                "error_code": 30001,
                "error_message": "Retries exhausted after 3 attempts: x",
            },
            S.FAILED,
            "retries_exhausted",
        ),
    ),
    (
        "validity expired once sent: not a move the state machine allows",
        view(S.SENT),
        ValidityExpired(),
        ILLEGAL,
    ),
    # -- scheduling and cancel ---------------------------------------------------------------
    ("send time came: queued, due now, nobody told", view(S.SCHEDULED, attempts=0),
     SendTimeCame(), Change("send_time_came", S.QUEUED, {"next_attempt_at": NOW})),
    ("send time came for a message not scheduled", view(S.SENDING), SendTimeCame(), ILLEGAL),
    ("cancel while scheduled: canceled, told", view(S.SCHEDULED, attempts=0), CancelRequested(),
     Change("canceled", S.CANCELED, {"next_attempt_at": None}, S.CANCELED)),
    ("cancel while queued", view(S.QUEUED, attempts=0), CancelRequested(),
     Change("canceled", S.CANCELED, {"next_attempt_at": None}, S.CANCELED)),
    ("cancel once on a carrier: refused", view(S.SENDING), CancelRequested(), ILLEGAL),
]  # fmt: skip


@pytest.mark.parametrize(
    ("before", "what", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decide(
    before: MessageView, what: Happening, expected: Change | type[IllegalTransition]
) -> None:
    if expected is ILLEGAL:
        with pytest.raises(IllegalTransition) as info:
            decide(before, what, now=NOW)
        assert (info.value.sid, info.value.from_status) == (before.sid, before.status)
        return
    change = decide(before, what, now=NOW)
    assert change == expected
    # and what every change promises the backends (a replay is the one deliberate exception)
    assert (
        change.status is None
        or can_transition(before.status, change.status)
        or (isinstance(what, Replayed) and before.status in REPLAYABLE)
    )
    assert change.callback in (None, change.status)
    assert set(change.columns) <= set(SETTABLE)


def test_creation_is_queued_and_not_reported() -> None:
    assert creation_change() == Change("accepted", S.QUEUED)


def test_all_parts_settled_needs_sent_and_every_index_done() -> None:
    assert all_parts_settled(view(S.SENT, segments=2), [ok(0), lost(1, 1)])
    assert not all_parts_settled(view(S.SENT, segments=2), [ok(0), waiting(1)])
    assert not all_parts_settled(view(S.SENT, segments=2), [ok(0)])
    assert not all_parts_settled(view(S.SENDING, segments=2), [ok(0), ok(1)])


def test_something_that_is_not_a_happening_is_refused() -> None:
    with pytest.raises(TypeError, match="not a lifecycle happening"):
        decide(view(S.SENT), object(), now=NOW)  # type: ignore[arg-type]


# -- the property: random sequences over a model of one message ---------------------------


@dataclass
class Copy:
    """One submitted copy of a part (a resent segment is a new copy, with a new carrier id)."""

    index: int
    outcome: bool | None = None  # None: no final receipt yet; else delivered
    error_code: int | None = None


@dataclass
class Model:
    view: MessageView
    copies: list[Copy] = field(default_factory=list)
    trajectory: list[Status] = field(default_factory=list)  # every status moved into, in order
    story: list[Status] = field(default_factory=list)  # every callback owed, in order
    before_claim: int | None = None  # attempts before the last claim

    def parts(self) -> list[PartView]:
        """As the store aggregates them: a part is done (delivered) if any copy is; its error is
        that of its newest undelivered copy."""
        merged: dict[int, PartView] = {}
        for c in self.copies:
            seen = merged.get(c.index, PartView(c.index))
            failed = c.outcome is False
            merged[c.index] = PartView(
                c.index,
                seen.done or c.outcome is not None,
                seen.delivered or c.outcome is True,
                c.error_code if failed else seen.error_code,
                "UNDELIV" if failed else seen.stat,
                "001" if failed else seen.err,
            )
        return [merged[i] for i in sorted(merged)]

    def accepted_parts(self) -> int:
        return len({c.index for c in self.copies})


_claim = st.just(("claim",))
_accept = st.tuples(st.just("accept"), st.integers(0, 2), st.booleans())
_fail = st.tuples(st.just("fail"), st.booleans(), st.booleans())  # retry?, counts the attempt?
_receipt = st.tuples(
    st.just("receipt"),
    st.integers(0, 9),  # which submitted copy
    st.booleans(),  # final
    st.booleans(),  # delivered
    st.booleans(),  # held
)
_final_receipt = st.tuples(
    st.just("receipt"),
    st.integers(0, 9),
    st.just(True),
    st.sampled_from([True, True, True, False]),  # mostly delivered: every part must be
    st.booleans(),
)
ANY_STEP = st.one_of(
    _claim,
    _accept,
    _fail,
    st.just(("requeue",)),
    st.just(("lease_expired",)),
    _receipt,
    st.just(("window",)),
)


def likely_step(model: Model) -> st.SearchStrategy[tuple]:
    """A happening that typically meets a message in its status, so that runs get past `sent`
    (uniformly random happenings fail most messages while still queued)."""
    status = model.view.status
    if status is S.QUEUED:
        return _claim
    if status is S.SENDING:
        accepted = {c.index for c in model.copies}
        missing = [i for i in range(model.view.num_segments) if i not in accepted]
        next_part = st.just(("accept", missing[0], False)) if missing else _accept
        return st.one_of(next_part, next_part, _fail, st.just(("requeue",)), _accept)
    if status is S.SENT:
        return st.one_of(_final_receipt, _receipt, st.just(("window",)), _accept)
    return ANY_STEP


def happening_for(model: Model, step: tuple) -> tuple[Happening, Copy | None, bool]:
    """The happening `step` means for the message as modelled; the copy a receipt settles."""
    match step:
        case ("claim",):
            return Claimed("node", NOW + 1), None, False
        case ("accept", index, again):
            index %= model.view.num_segments
            if again and any(c.index == index for c in model.copies):
                return SubmitAccepted(index, model.accepted_parts(), duplicate=True), None, False
            model.copies.append(Copy(index))
            return SubmitAccepted(index, model.accepted_parts()), None, False
        case ("fail", retry, counts):
            return SubmitFailed(RETRY_AT if retry else None, counts, 30005, "no"), None, False
        case ("requeue",):
            return Requeued("stopping"), None, False
        case ("lease_expired",):
            return LeaseExpired("gone"), None, False
        case ("receipt", which, is_final, delivered, held):
            copy = model.copies[which % len(model.copies)]
            settles = is_final and copy.outcome is None
            if settles:  # the store settles the part before deciding, whatever the status
                copy.outcome = delivered
                copy.error_code = None if delivered else 30003
            what = ReceiptArrived(copy.index, is_final, settles, model.parts(), held)
            return what, copy, settles
        case ("window",):
            return ReceiptWindowPassed(72), None, False
    raise AssertionError(step)


def told(trajectory: list[Status]) -> list[Status]:
    """The story the customer should hear, from the statuses alone: every status the message
    moved into except `queued` (retries are internal), a status never twice in a row."""
    story: list[Status] = []
    for status in trajectory:
        if status is not S.QUEUED and (not story or story[-1] is not status):
            story.append(status)
    return story


@settings(max_examples=300)
@given(segments=st.integers(1, 3), has_callback=st.booleans(), data=st.data())
def test_any_sequence_of_happenings_keeps_the_lifecycle_rules(
    segments: int, has_callback: bool, data: st.DataObject
) -> None:
    model = Model(MessageView("SM1", S.QUEUED, 0, segments, has_callback))
    for _ in range(data.draw(st.integers(0, 40), label="length")):
        likely = likely_step(model)
        step = data.draw(st.one_of(likely, likely, likely, ANY_STEP), label="step")
        if step[0] == "receipt" and not model.copies:
            continue  # an unknown id: held by the store, not a happening yet
        before = model.view
        what, _, _ = happening_for(model, step)
        try:
            change = decide(before, what, now=NOW)
        except IllegalTransition:
            assert what.__class__ in (Claimed, SubmitFailed, Requeued, LeaseExpired)
            continue  # nothing is written
        if before.status in FINAL:
            assert change.status is None, f"{before.status} changed by {what}"
        if change.status is None:
            assert change.callback is None and not change.columns
            continue
        assert can_transition(before.status, change.status)
        assert change.callback in (None, change.status)
        columns = change.columns
        after = replace(
            before,
            status=change.status,
            attempts=columns.get("attempts", before.attempts),
            error_code=columns.get("error_code", before.error_code),
            reported=change.callback or before.reported,
        )
        assert after.attempts >= 0
        if isinstance(what, Claimed):
            assert after.attempts == before.attempts + 1
            model.before_claim = before.attempts
        if isinstance(what, SubmitFailed) and what.retry_at is not None:
            if what.counts_attempt:
                assert after.attempts == before.attempts
            else:  # throttled: as if never claimed
                assert after.attempts == model.before_claim
        model.trajectory.append(change.status)
        if change.callback is not None:
            model.story.append(change.callback)
        model.view = after

    # every reported change told once, in order, and nothing else
    assert model.story == (told(model.trajectory) if has_callback else [])
    # a final status is the last word
    finals = [s for s in model.trajectory if s in FINAL]
    assert len(finals) <= 1 and (not finals or model.trajectory[-1] is finals[0])
    if model.view.status in FINAL and has_callback:
        assert model.story and model.story[-1] is model.view.status
