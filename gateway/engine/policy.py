"""The carrier outcome policy, in one place: what a carrier's answer means for a message.

Four questions, answered here and nowhere else:

* **Retry or fail?** :func:`classify_submit` reads a submit_sm_resp command_status;
  :func:`decide_submit_failure` turns a failed attempt into "retry at T" or "fail now".
* **The retry budget.** Transient errors spend :attr:`CarrierPolicy.max_attempts`; throttling
  (ESME_RTHROTTLED, ESME_RMSGQFUL) never does: it says "slower", not "broken", and a carrier that
  throttles a burst must not fail the messages in it.
* **How long to wait.** :func:`backoff_delay`, the one backoff function of smsgw (also used by the
  SMPP client's reconnects and the webhook sender), with the per-carrier bases and ceilings of a
  :class:`CarrierPolicy` (built from the configuration by ``Config.policy_for``).
* **Is a receipt final?** Defined once in :mod:`carriers.smpp.receipts` (the SMPP message states);
  :func:`classify_receipt` adds only the Twilio error codes.

Pure: no I/O, and time and randomness are arguments. The raw SMPP value still reaches the
message's history beside the mapped code; the delivery engine only asks "retry, fail, or done?".
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

import msgspec

from carriers.backoff import backoff_delay
from carriers.smpp import constants as smpp
from carriers.smpp.receipts import DELIVERED_STAT, is_final_stat

__all__ = [
    "CarrierPolicy",
    "ReceiptVerdict",
    "SubmitDecision",
    "SubmitOutcome",
    "SubmitVerdict",
    "backoff_delay",
    "classify_receipt",
    "classify_submit",
    "decide_submit_failure",
    "receipt_cutoff",
]

#: Twilio error codes used here (https://www.twilio.com/docs/api/errors).
QUEUE_OVERFLOW = 30001  # the carrier throttled us
UNREACHABLE = 30003  # unreachable destination handset
UNKNOWN_DESTINATION = 30005
CARRIER_VIOLATION = 30007  # filtered / refused by the carrier
UNKNOWN_ERROR = 30008


# --- submit_sm_resp -------------------------------------------------------------------------


class SubmitVerdict(Enum):
    ACCEPTED = "accepted"
    THROTTLED = "throttled"  # slow down and retry, not counted against the retry budget
    RETRY = "retry"  # transient: retry with backoff, counted
    FAILED = "failed"  # permanent: the message fails now


class SubmitOutcome(msgspec.Struct, frozen=True):
    verdict: SubmitVerdict
    error_code: int | None = None
    error_message: str | None = None


_THROTTLING = {smpp.ESME_RTHROTTLED, smpp.ESME_RMSGQFUL}
# ESME_RINVBNDSTS (0x04, "incorrect bind status") blames the session, not the message: a submit
# on a bind the SMSC no longer holds (or holds as receiver only). The message is retried (counted,
# so a bind that stays wrong cannot retry it forever), on a session that has bound again.
_TRANSIENT = {smpp.ESME_RSYSERR, smpp.ESME_RX_T_APPN, smpp.ESME_RINVBNDSTS}
_PERMANENT = {
    smpp.ESME_RINVDSTADR: (
        UNKNOWN_DESTINATION,
        "Unknown destination: the carrier refused the number.",
    ),
    # 30007, not 21212: "Invalid From Number" is Twilio's answer to the API request (smsgw gives
    # it at accept, routing.errors.InvalidSender); a sender the carrier refuses after accept (an
    # unregistered or barred sender ID) is carrier filtering, which Twilio reports as 30007.
    smpp.ESME_RINVSRCADR: (
        CARRIER_VIOLATION,
        "The carrier refused the source address (sender ID).",
    ),
    # ESME_RX_R_APPN (0x66, "ESME receiver reject"): the SMSC's application refused the message
    # for good (content or blacklist filtering), not a fault we could retry away: 30007.
    smpp.ESME_RX_R_APPN: (CARRIER_VIOLATION, "The carrier rejected the message (filtered)."),
}


def classify_submit(command_status: int) -> SubmitOutcome:
    """The verdict for a submit_sm_resp command_status (vendor values are permanent 30008)."""
    if command_status == smpp.ESME_ROK:
        return SubmitOutcome(SubmitVerdict.ACCEPTED)
    name = smpp.status_name(command_status)
    if command_status in _THROTTLING:
        return SubmitOutcome(
            SubmitVerdict.THROTTLED, QUEUE_OVERFLOW, f"Carrier throttled ({name})."
        )
    if command_status in _TRANSIENT:
        return SubmitOutcome(
            SubmitVerdict.RETRY, UNKNOWN_ERROR, f"Carrier temporary error ({name})."
        )
    code, text = _PERMANENT.get(command_status, (UNKNOWN_ERROR, "The carrier refused the message."))
    return SubmitOutcome(SubmitVerdict.FAILED, code, f"{text} SMPP status {name}.")


# --- delivery receipts ----------------------------------------------------------------------


class ReceiptVerdict(msgspec.Struct, frozen=True):
    final: bool
    delivered: bool
    error_code: int | None


#: The Twilio code of every final stat but DELIVRD (a test checks none is missing).
_RECEIPT_FAILURES = {
    "UNDELIV": UNREACHABLE,  # unreachable destination handset
    "EXPIRED": UNREACHABLE,  # the SMSC gave up before the handset was reachable
    "REJECTD": CARRIER_VIOLATION,  # carrier filtering
    "DELETED": UNKNOWN_ERROR,
    "UNKNOWN": UNKNOWN_ERROR,  # the SMSC lost track of it: final, outcome unknown
}


def classify_receipt(stat: str | None) -> ReceiptVerdict:
    """What a receipt's ``stat`` means for the message.

    Finality is :func:`carriers.smpp.receipts.is_final_stat`'s: DELIVRD → delivered; EXPIRED,
    DELETED, UNDELIV, REJECTD and UNKNOWN → undelivered with a Twilio code; anything else
    (ENROUTE, ACCEPTD, a vendor word, no stat at all) → not final, history only.
    """
    if stat is None or not is_final_stat(stat):
        return ReceiptVerdict(final=False, delivered=False, error_code=None)
    stat = stat.upper()
    if stat == DELIVERED_STAT:
        return ReceiptVerdict(final=True, delivered=True, error_code=None)
    return ReceiptVerdict(final=True, delivered=False, error_code=_RECEIPT_FAILURES[stat])


# --- the per-carrier policy -----------------------------------------------------------------

RECEIPT_WINDOW_DEFAULT = 72 * 3600.0


@dataclass(frozen=True)
class CarrierPolicy:
    """How patient to be with one carrier. Durations are seconds.

    ``max_attempts`` counts submits that failed transiently or went unanswered (the first
    attempt included); throttled submits are not counted. Retries wait
    ``backoff_delay(attempt, retry_base, retry_max)``; throttled ones wait on their own, shorter
    scale (``throttle_base``/``throttle_max``), because a throttle clears in seconds. A carrier
    message id matches delivery receipts for ``receipt_window`` after its submit (72 h by
    default: SMSCs keep undelivered messages for up to their validity period, often 48-72 h).
    """

    max_attempts: int = 10
    retry_base: float = 2.0
    retry_max: float = 300.0
    throttle_base: float = 1.0
    throttle_max: float = 10.0
    receipt_window: float = RECEIPT_WINDOW_DEFAULT
    # A submit_sm whose response timed out may have been taken: "resend" it (a duplicate is
    # possible, and recorded so) or "wait" `uncertain_wait` seconds more for a late answer and
    # never resend it (UNCERTAIN_POLICIES).
    uncertain_submits: str = "resend"
    uncertain_wait: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        for base, ceiling in (("retry_base", "retry_max"), ("throttle_base", "throttle_max")):
            low, high = getattr(self, base), getattr(self, ceiling)
            if not 0 < low <= high:
                raise ValueError(f"need 0 < {base} <= {ceiling}, got {low} and {high}")
        if self.receipt_window <= 0:
            raise ValueError(f"receipt_window must be positive, got {self.receipt_window}")
        if self.uncertain_submits not in UNCERTAIN_POLICIES:
            raise ValueError(
                f"uncertain_submits must be one of {', '.join(UNCERTAIN_POLICIES)}, "
                f"got {self.uncertain_submits!r}"
            )
        if self.uncertain_wait <= 0:
            raise ValueError(f"uncertain_wait must be positive, got {self.uncertain_wait}")

    @property
    def late_response_window(self) -> float:
        """How long after its timeout a submit's answer is still awaited (0: not at all)."""
        return self.uncertain_wait if self.uncertain_submits == "wait" else 0.0


def receipt_cutoff(now: datetime, policy: CarrierPolicy) -> datetime:
    """Carrier message ids submitted before this instant no longer match receipts (and receipts
    held for an unknown id received before it may be forgotten)."""
    return now - timedelta(seconds=policy.receipt_window)


UNCERTAIN_POLICIES = ("resend", "wait")


class SubmitDecision(msgspec.Struct, frozen=True):
    """What to do with a message whose submit did not succeed.

    ``retry_at`` None means fail now (permanently). ``counts_attempt`` False means the attempt
    must not be charged to the retry budget (the store gives it back).
    """

    retry_at: datetime | None
    counts_attempt: bool
    error_code: int
    error_message: str
    # Failing now: why an operator should see it in the dead-letter queue; None for the
    # carrier's own refusal of the message (a replay would get the same answer).
    dead_letter: str | None = None

    @property
    def permanent(self) -> bool:
        return self.retry_at is None


def decide_uncertain_submit(
    *,
    attempts: int,
    policy: CarrierPolicy,
    now: datetime,
    rng: random.Random,
    reason: str,
) -> SubmitDecision:
    """A submit that got no answer at all (timed out, the link dropped before its response).

    "resend": transient and counted, as any unanswered submit (a duplicate is possible: the
    SMSC may have taken it). "wait": the late answer was awaited already (the client resolved
    the submit with it if it came); none came, so the message fails now — it is never sent
    twice, and the carrier may still deliver it.
    """
    if policy.uncertain_submits == "wait":
        return SubmitDecision(
            None,
            True,
            UNKNOWN_ERROR,
            f"No answer from the carrier; not resent (uncertain_submits = wait), so it may "
            f"still be delivered: {reason}",
            dead_letter="no_answer",
        )
    return decide_submit_failure(
        None,
        attempts=attempts,
        policy=policy,
        now=now,
        rng=rng,
        reason=f"No answer from the carrier, duplicate possible: {reason}",
    )


def decide_submit_failure(
    outcome: SubmitOutcome | None,
    *,
    attempts: int,
    policy: CarrierPolicy,
    now: datetime,
    rng: random.Random,
    reason: str | None = None,
    error_code: int | None = None,
    throttles: int = 1,
) -> SubmitDecision:
    """Retry (when) or fail, for a submit that was not accepted.

    ``outcome`` is :func:`classify_submit`'s verdict, or None for "no answer": a submit that went
    unanswered (a duplicate is possible), a lost connection, an internal error. None is
    transient and counted. ``attempts`` is the number of counted attempts made so far, this one
    included. ``reason`` and ``error_code`` replace the outcome's message and code when given
    (for None they describe what happened; defaults: "No answer from the carrier.", 30008).

    Throttling waits ``backoff_delay(throttles, throttle_base, throttle_max)`` and never
    exhausts the budget. ``throttles`` is how many throttled answers came in a row, if the caller
    counts them (per bind, say); by default the wait is steady, about ``throttle_base``.
    """
    if outcome is not None and outcome.verdict is SubmitVerdict.ACCEPTED:
        raise ValueError("decide_submit_failure() got an accepted submit; nothing failed")
    why = reason or (outcome.error_message if outcome is not None else None)
    why = why or "No answer from the carrier."
    code = error_code or (outcome.error_code if outcome is not None else None) or UNKNOWN_ERROR
    verdict = outcome.verdict if outcome is not None else SubmitVerdict.RETRY

    if verdict is SubmitVerdict.FAILED:
        return SubmitDecision(None, True, code, why)
    if verdict is SubmitVerdict.THROTTLED:
        delay = backoff_delay(throttles, policy.throttle_base, policy.throttle_max, rng)
        return SubmitDecision(now + timedelta(seconds=delay), False, code, why)
    if attempts >= policy.max_attempts:
        plural = "attempt" if attempts == 1 else "attempts"
        return SubmitDecision(
            None,
            True,
            code,
            f"Retries exhausted after {attempts} {plural}: {why}",
            dead_letter="retries_exhausted",
        )
    delay = backoff_delay(attempts, policy.retry_base, policy.retry_max, rng)
    return SubmitDecision(now + timedelta(seconds=delay), True, code, why)
