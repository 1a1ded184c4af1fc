"""The message lifecycle, decided in pure code: what a happening does to a message.

This is the h11 shape applied to the store: given what a backend loaded (a `MessageView`, and for
receipts the message's `PartView`s) and what happened (`Claimed`, `SubmitAccepted`, `ReceiptArrived`
…), `decide` returns the `Change` to write — the new status (or none), the columns that change, the
reason for the history, and whether a status callback is owed. No SQL, no clock, no I/O: SQLite
today and PostgreSQL tomorrow run exactly these rules and only differ in how they load rows and
write changes, so the rules are tested once, alone (tests/store/test_lifecycle.py).

Every status change is checked against `store.states` (the table of allowed transitions), so an
illegal happening raises `IllegalTransition` before anything is written.

Rules written down here and nowhere else:

* **Claiming counts an attempt; a throttled or never-sent submit gives it back.** The retry budget
  (`CarrierPolicy.max_attempts`) counts submits the carrier really judged; a carrier that says
  "slow down" (ESME_RTHROTTLED, ESME_RMSGQFUL) or a PDU that never left must not spend it.
* **A message is `sent` when every part was accepted**; `delivered` when every part's final
  receipt says so, `undelivered` as soon as one part's final receipt says it failed (the
  customer's text is incomplete whatever the other parts do), with that part's error. Receipts
  for the other parts are history only.
* **The first final answer wins.** A receipt for a message already final is history only (see
  `store.states`); a duplicate receipt for a settled part is history only.
* **Callbacks tell the same story as the API.** A callback is owed for every reported transition
  (`states.is_reported`): not for creation, not for going back to `queued`, not twice in a row
  for the same status. `reported` on the view is the last status a callback was written for.
* **The dead-letter queue is the operator's view of what failed for want of a send**: retries
  exhausted, no answer under `uncertain_submits = wait`, the validity period run out, a carrier
  gone from the config. A carrier's own refusal of the message is not (a replay would get the same
  answer). The message stays `failed` for the API; a replay (`Replayed`) is the one recorded move
  out of a final status.
* **No receipt within the carrier's receipt window**: the message stays `sent` (as Twilio shows
  it); the history says no receipt came, and its carrier ids stop matching.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from store.states import (
    FINAL,
    REPLAYABLE,
    IllegalTransition,
    Status,
    check_transition,
    is_reported,
)

ORPHAN_HOLD_SECONDS = 600.0
"""How long a receipt for an unknown carrier id waits for the submit response that names it.
Overtaking takes moments; a receipt held longer is for an id we never recorded, and must not settle
whichever message the carrier gives that id to next."""


class MessageView(msgspec.Struct, frozen=True):
    """What the lifecycle needs to know of a stored message."""

    sid: str
    status: Status
    attempts: int
    num_segments: int
    has_callback: bool
    reported: Status | None = None
    error_code: int | None = None


class PartView(msgspec.Struct, frozen=True):
    """One segment of a message, aggregated over every submit of it (a resent segment gets a new
    carrier id, and a receipt for either copy counts)."""

    index: int
    done: bool = False
    delivered: bool = False
    error_code: int | None = None
    stat: str | None = None
    err: str | None = None


# -- what can happen to a message ----------------------------------------------------------


class Claimed(msgspec.Struct, frozen=True):
    """The delivery engine leased it to send now."""

    owner: str
    lease_until: int


class SubmitAccepted(msgspec.Struct, frozen=True):
    """The carrier accepted part `part_index`; `parts_accepted` distinct parts are now accepted."""

    part_index: int
    parts_accepted: int
    duplicate: bool = False  # the same carrier id was already recorded for this message


class SubmitFailed(msgspec.Struct, frozen=True):
    """The carrier refused (or never answered) a submit; the policy decided retry or fail.

    `retry_at is None` means fail now. `counts_attempt=False` gives the claimed attempt back
    (throttling, never sent).
    """

    retry_at: int | None
    counts_attempt: bool
    error_code: int | None
    error_message: str | None
    reason: str = "submit_failed"
    # Failing now, why an operator should see it in the dead-letter queue ("retries_exhausted",
    # "no_answer"); None: the carrier's own verdict on the message (a replay would get it again).
    dead_letter: str | None = None


class Requeued(msgspec.Struct, frozen=True):
    """A claimed message goes back in line without having been judged (its PDU never left, or
    the daemon is stopping). It keeps its place and its attempt is given back."""

    reason: str


class LeaseExpired(msgspec.Struct, frozen=True):
    """Its lease ran out or its owner is gone: it may be on the carrier already (a duplicate is
    possible), but nobody will record the answer, so it goes back in line."""

    why: str


class ReceiptArrived(msgspec.Struct, frozen=True):
    """A delivery receipt matched one of the message's parts.

    `settles_part`: it was final and the part had no final receipt yet. `parts` is every part of
    the message *after* this receipt was applied to its part.
    """

    part_index: int
    final: bool
    settles_part: bool
    parts: Sequence[PartView]
    held: bool = False  # it had overtaken its submit response and was held until now


class ReceiptWindowPassed(msgspec.Struct, frozen=True):
    """The carrier's receipt window closed with parts still unanswered."""

    window_hours: float


class SendTimeCame(msgspec.Struct, frozen=True):
    """A scheduled message's SendAt has come: it joins the queue (due at once)."""


class CancelRequested(msgspec.Struct, frozen=True):
    """The customer canceled it (allowed while scheduled or queued: not yet on a carrier)."""


class ValidityExpired(msgspec.Struct, frozen=True):
    """Its ValidityPeriod ran out before it was submitted."""


VALIDITY_EXPIRED_CODE = 30036  # Twilio's "Validity Period Expired"


class CarrierGone(msgspec.Struct, frozen=True):
    """Its route names a carrier the configuration no longer has: nothing will ever send it."""

    carrier: str


CARRIER_GONE_CODE = 30008  # Twilio's "Unknown error": the customer cannot act on our config


class Replayed(msgspec.Struct, frozen=True):
    """An operator replays it from the dead-letter queue: a new attempt, from zero, due now,
    perhaps to another carrier (`to_carrier`; the backend writes the new route)."""

    to_carrier: str | None = None


Happening = (
    Claimed
    | SendTimeCame
    | CancelRequested
    | ValidityExpired
    | CarrierGone
    | Replayed
    | SubmitAccepted
    | SubmitFailed
    | Requeued
    | LeaseExpired
    | ReceiptArrived
    | ReceiptWindowPassed
)


class Change(msgspec.Struct, frozen=True):
    """What to write. `status is None`: history only. `columns` are the message columns that
    change besides `status`/`date_updated`. `callback` is the status a callback is owed for.
    `dead_letter`: the message enters the dead-letter queue, for this reason."""

    reason: str
    status: Status | None = None
    columns: Mapping[str, object] = msgspec.field(default_factory=dict)
    callback: Status | None = None
    dead_letter: str | None = None

    @property
    def changes_status(self) -> bool:
        return self.status is not None


LEASE_CLEARED: Mapping[str, object] = {"lease_owner": None, "lease_expires_at": None}


def decide(view: MessageView, what: Happening, *, now: int) -> Change:
    """The change `what` makes to the message in `view`, at `now` (µs since the epoch)."""
    match what:
        case Claimed(owner, lease_until):
            return _move(
                view,
                Status.SENDING,
                "claimed",
                {
                    "attempts": view.attempts + 1,
                    "lease_owner": owner,
                    "lease_expires_at": lease_until,
                },
            )
        case SubmitAccepted(part_index, parts_accepted, duplicate):
            if duplicate:
                return Change("duplicate_submit_resp")
            if view.status is not Status.SENDING:
                # Its lease was recovered and it may be queued or sent again: keep the id (so the
                # receipt still matches) and change nothing.
                return Change("late_submit_resp")
            if parts_accepted < view.num_segments:
                return Change(f"part_{part_index + 1}_accepted")
            return _move(view, Status.SENT, "submit_accepted", {"date_sent": now, **LEASE_CLEARED})
        case SubmitFailed(retry_at, counts_attempt, error_code, error_message, reason, dead):
            columns: dict[str, object] = {"next_attempt_at": retry_at, **LEASE_CLEARED}
            if not counts_attempt:
                columns["attempts"] = max(view.attempts - 1, 0)
            if retry_at is None:
                columns.update(error_code=error_code, error_message=error_message)
                return _move(view, Status.FAILED, reason, columns, dead_letter=dead)
            # A counted plain failure is a "retry"; a named one keeps its name in the history
            # ("throttled"; "submit_uncertain": the SMSC may have taken it, a duplicate is
            # possible).
            plain = counts_attempt and reason == "submit_failed"
            return _move(view, Status.QUEUED, "retry" if plain else reason, columns)
        case Requeued(reason):
            return _move(
                view,
                Status.QUEUED,
                reason,
                {"attempts": max(view.attempts - 1, 0), **LEASE_CLEARED},
            )
        case LeaseExpired(why):
            return _move(
                view,
                Status.QUEUED,
                f"lease_expired: {why}; possible duplicate, the carrier may already have it",
                dict(LEASE_CLEARED),
            )
        case ReceiptArrived():
            return _receipt(view, what)
        case SendTimeCame():
            # Only from `scheduled` (a queued message has nothing to wait for); like every move
            # into `queued`, internal: nobody is told.
            if view.status is not Status.SCHEDULED:
                raise IllegalTransition(view.sid, view.status, Status.QUEUED)
            return _move(view, Status.QUEUED, "send_time_came", {"next_attempt_at": now})
        case CancelRequested():
            # The state machine allows it from scheduled and queued only: never once on a carrier.
            return _move(view, Status.CANCELED, "canceled", {"next_attempt_at": None})
        case ValidityExpired():
            return _never_sent(
                view,
                "validity_expired",
                VALIDITY_EXPIRED_CODE,
                "The message's validity period ran out before it could be sent "
                "(ValidityPeriod); it was not sent.",
            )
        case CarrierGone(carrier):
            return _never_sent(
                view,
                "carrier_gone",
                CARRIER_GONE_CODE,
                f"Its carrier {carrier!r} is no longer configured; it was not sent (an operator "
                "can replay it to another carrier from the dead-letter queue).",
            )
        case Replayed(to_carrier):
            return _replay(view, to_carrier, now)
        case ReceiptWindowPassed(hours):
            return Change(f"no_receipt: none came within the carrier's {hours:g} h receipt window")
    raise TypeError(f"not a lifecycle happening: {what!r}")  # pragma: no cover


def _never_sent(view: MessageView, reason: str, code: int, message: str) -> Change:
    """A queued message fails without a submit, for `reason` (also its dead-letter reason)."""
    columns = {
        "error_code": code,
        "error_message": message,
        "next_attempt_at": None,
        **LEASE_CLEARED,
    }
    return _move(view, Status.FAILED, reason, columns, dead_letter=reason)


def _replay(view: MessageView, to_carrier: str | None, now: int) -> Change:
    """The one move out of a final status (`states.REPLAYABLE`), made deliberately by an operator.
    The customer hears of it through the callbacks that follow (`sending`, `sent`…)."""
    if view.status not in REPLAYABLE:
        raise IllegalTransition(view.sid, view.status, Status.QUEUED)
    reason = "replayed" if to_carrier is None else f"replayed to carrier {to_carrier}"
    columns = {
        "attempts": 0,
        "error_code": None,
        "error_message": None,
        "next_attempt_at": now,
        **LEASE_CLEARED,
    }
    return Change(reason, Status.QUEUED, columns)


def _receipt(view: MessageView, what: ReceiptArrived) -> Change:
    base = "held_receipt" if what.held else "receipt"
    if view.status in FINAL:
        return Change(f"late_{base}")
    if not what.final:
        return Change(f"intermediate_{base}")
    if not what.settles_part:
        return Change(f"duplicate_{base}")
    settled = settlement(view, what.parts, base)
    return settled or Change(f"{base}_part_{what.part_index + 1}")


def settlement(view: MessageView, parts: Sequence[PartView], reason: str) -> Change | None:
    """The outcome a `sent` message has reached with these parts, or None while it has none
    yet: undelivered once a part's final receipt failed, delivered once every part's did not."""
    if view.status is not Status.SENT:
        return None
    if any(p.done and not p.delivered for p in parts) or all_parts_settled(view, parts):
        return settle(view, parts, reason)
    return None


def settle(view: MessageView, parts: Sequence[PartView], reason: str) -> Change:
    """The outcome of a `sent` message whose every part has a final receipt, or one of whose
    parts failed: the error is the first failed part's (by index)."""
    failed = next((p for p in sorted(parts, key=_index) if p.done and not p.delivered), None)
    if failed is None:
        return _move(view, Status.DELIVERED, reason, {})
    which = (
        "the message"
        if view.num_segments == 1
        else (f"part {failed.index + 1} of {view.num_segments}")
    )
    message = (
        f"The carrier reported {which} undelivered (receipt stat={failed.stat}, err={failed.err})."
    )
    return _move(
        view,
        Status.UNDELIVERED,
        reason,
        {"error_code": failed.error_code, "error_message": message},
    )


def all_parts_settled(view: MessageView, parts: Sequence[PartView]) -> bool:
    """Whether a `sent` message has a final receipt for every one of its parts."""
    done = {p.index for p in parts if p.done}
    return view.status is Status.SENT and all(i in done for i in range(view.num_segments))


def _index(part: PartView) -> int:
    return part.index


def _move(
    view: MessageView,
    to: Status,
    reason: str,
    columns: Mapping[str, object],
    *,
    dead_letter: str | None = None,
) -> Change:
    check_transition(view.status, to, sid=view.sid)
    owed = view.has_callback and is_reported(view.status, to, last_reported=view.reported)
    return Change(reason, to, columns, to if owed else None, dead_letter)


def creation_change(*, scheduled: bool = False) -> Change:
    """A message is created `queued` (or `scheduled`, to be queued at its SendAt); the API's 201
    tells the customer, so no callback."""
    to = Status.SCHEDULED if scheduled else Status.QUEUED
    check_transition(None, to)
    return Change("scheduled" if scheduled else "accepted", to)


def inbound_creation(*, whole: bool) -> Change:
    """An inbound message is created `received` when it came in one PDU, `receiving` when it is
    the first part of several. Nobody is called back: an inbound message is not the customer's."""
    to = Status.RECEIVED if whole else Status.RECEIVING
    check_transition(None, to)
    return Change("received" if whole else "first_part_received", to)


def inbound_completed(view: MessageView, missing: Sequence[int]) -> Change:
    """A `receiving` message becomes `received`: with its last part, or when the wait for the
    `missing` parts (1-based) ran out, in which case its error_message says which never came."""
    check_transition(view.status, Status.RECEIVED, sid=view.sid)
    if not missing:
        return Change("reassembled", Status.RECEIVED)
    text = ", ".join(str(n) for n in missing)
    return Change(
        "reassembly_timed_out",
        Status.RECEIVED,
        {"error_message": f"Part(s) {text} of {view.num_segments} never arrived."},
    )
