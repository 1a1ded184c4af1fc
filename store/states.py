"""The message state machine, written down once.

Every status change the store makes is checked here first (`check_transition`), so this table is the
whole truth about which status may follow which. Names are Twilio's, because API clients branch on
them.

Outbound::

    scheduled ─→ queued ─→ sending ─→ sent ─→ delivered
        │          │  ↑       │         └───→ undelivered
        │          │  └───────┤  (retry / requeue: back in line, not reported to the customer)
        └→ canceled ←┘        └→ failed  ←── queued (e.g. validity period expired)

Inbound::

    receiving ─→ received

Rules that are not obvious from the table:

* **No self-transitions.** `sent → sent` is not a transition. A second submit response, a receipt
  for one part of a multi-part message, or an intermediate receipt (ENROUTE) is recorded as an
  *event* in the message's history with no status change.
* **Late receipts do not rewrite history.** A delivery receipt for a message that is already in a
  final state (`FINAL`) is recorded in its event history (raw `stat`/`err` kept), but the status is
  not changed. Carriers send duplicate and out-of-order receipts; the first final answer is what
  the customer was told through the status callback, and a status that flips afterwards would make
  the API contradict the callbacks already delivered.
* **Retries are invisible.** `sending → queued` (a temporary submit error, a PDU that never left, an
  expired lease) is an internal reschedule: it is not reported to the status callback, and the
  `sending` that follows it is not reported a second time (see `is_reported`).
"""

from __future__ import annotations

from enum import StrEnum

from store.errors import StoreError


class Status(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELED = "canceled"
    RECEIVING = "receiving"
    RECEIVED = "received"


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.SCHEDULED: frozenset({Status.QUEUED, Status.CANCELED}),
    Status.QUEUED: frozenset({Status.SENDING, Status.FAILED, Status.CANCELED}),
    Status.SENDING: frozenset({Status.SENT, Status.QUEUED, Status.FAILED}),
    Status.SENT: frozenset({Status.DELIVERED, Status.UNDELIVERED}),
    Status.DELIVERED: frozenset(),
    Status.UNDELIVERED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELED: frozenset(),
    Status.RECEIVING: frozenset({Status.RECEIVED}),
    Status.RECEIVED: frozenset(),
}
"""Allowed transitions: `b in TRANSITIONS[a]` means `a → b` may happen."""

INITIAL: frozenset[Status] = frozenset(
    {Status.SCHEDULED, Status.QUEUED, Status.RECEIVING, Status.RECEIVED}
)
"""Statuses a message may be created in."""

FINAL: frozenset[Status] = frozenset(a for a, nexts in TRANSITIONS.items() if not nexts)
"""Statuses nothing follows: delivered, undelivered, failed, canceled, received."""


class IllegalTransition(StoreError):
    """A status change the state machine does not allow; the stored status was left as it was."""

    def __init__(self, sid: str | None, from_status: Status | None, to_status: Status) -> None:
        self.sid = sid
        self.from_status = from_status
        self.to_status = to_status
        where = f"Message {sid}" if sid else "A message"
        if from_status is None:
            text = f"{where} cannot be created in status {to_status!s}; allowed: " + _names(INITIAL)
        else:
            allowed = _names(TRANSITIONS[from_status]) or "nothing (final status)"
            text = (
                f"{where} cannot go from {from_status!s} to {to_status!s}; "
                f"from {from_status!s} it may go to: {allowed}"
            )
        super().__init__(text)

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt from its own arguments (it crosses from the writer process as a pickle).
        return (type(self), (self.sid, self.from_status, self.to_status))


class PartState(StrEnum):
    """Where one submitted segment stands. A part is `sent` until a final receipt settles it;
    `no_receipt` when the carrier's receipt window closed first (its id stops matching)."""

    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    NO_RECEIPT = "no_receipt"


PART_DONE: frozenset[PartState] = frozenset({PartState.DELIVERED, PartState.UNDELIVERED})
"""Part states that a final receipt put there: a later receipt for the part is a duplicate."""


class CallbackState(StrEnum):
    """A status callback is `pending` until delivered (`done`), given up (`failed`, and then in
    the dead-letter queue), or `skipped`: superseded by a newer status of its message while it
    waited for a retry (the application needs the newest state, not a stale one first)."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


UNSENT: frozenset[Status] = frozenset({Status.SCHEDULED, Status.QUEUED, Status.SENDING})
"""Not yet on a carrier for sure: what the per-account queue cap counts."""

REPLAYABLE: frozenset[Status] = frozenset({Status.FAILED})
"""The one deliberate exception to "a final status never changes": an operator replaying a
message from the dead-letter queue sends a `failed` message back to `queued` (recorded in its
history as `replayed`). Nothing else may, so it is not in `TRANSITIONS`."""


def can_transition(a: Status | None, b: Status) -> bool:
    """Whether `a → b` is allowed; `a is None` asks whether a message may be created in `b`."""
    if a is None:
        return b in INITIAL
    return b in TRANSITIONS[a]


def check_transition(a: Status | None, b: Status, *, sid: str | None = None) -> None:
    """Raise `IllegalTransition` unless `a → b` is allowed."""
    if not can_transition(a, b):
        raise IllegalTransition(sid, a, b)


def is_reported(a: Status | None, b: Status, *, last_reported: Status | None) -> bool:
    """Whether the transition `a → b` earns a status callback.

    Creation is not reported (the API response carries it), going back to `queued` is an internal
    reschedule, and a status the customer was already told (`last_reported`: the status of the
    newest callback written for this message) is not told again — which is what keeps a retried
    message from reporting `sending` twice.
    """
    if a is None or b is Status.QUEUED:
        return False
    return b is not last_reported


def _names(statuses: frozenset[Status]) -> str:
    return ", ".join(sorted(str(s) for s in statuses))
