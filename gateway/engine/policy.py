"""What a carrier's answer means for a message: SMPP statuses and receipts → Twilio error codes.

Written down once, here, so that the delivery engine only asks "retry, fail, or done?" and the
raw SMPP value still reaches the message's history beside the mapped code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from carriers.smpp import constants as smpp


class SubmitVerdict(Enum):
    ACCEPTED = "accepted"
    THROTTLED = "throttled"  # slow down and retry, not counted against the retry budget
    RETRY = "retry"  # transient: retry with backoff, counted
    FAILED = "failed"  # permanent: the message fails now


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    verdict: SubmitVerdict
    error_code: int | None = None
    error_message: str | None = None


_THROTTLING = {smpp.ESME_RTHROTTLED, smpp.ESME_RMSGQFUL}
_TRANSIENT = {smpp.ESME_RSYSERR, smpp.ESME_RX_T_APPN, smpp.ESME_RINVBNDSTS}
_PERMANENT = {
    smpp.ESME_RINVDSTADR: (30005, "Unknown destination: the carrier refused the number."),
    smpp.ESME_RINVSRCADR: (30007, "The carrier refused the source address (sender ID)."),
    smpp.ESME_RX_R_APPN: (30007, "The carrier rejected the message (filtered)."),
}


def classify_submit(command_status: int) -> SubmitOutcome:
    """The verdict for a submit_sm_resp command_status (vendor values are permanent 30008)."""
    if command_status == smpp.ESME_ROK:
        return SubmitOutcome(SubmitVerdict.ACCEPTED)
    name = smpp.status_name(command_status)
    if command_status in _THROTTLING:
        return SubmitOutcome(SubmitVerdict.THROTTLED, 30001, f"Carrier throttled ({name}).")
    if command_status in _TRANSIENT:
        return SubmitOutcome(SubmitVerdict.RETRY, 30008, f"Carrier temporary error ({name}).")
    code, text = _PERMANENT.get(command_status, (30008, "The carrier refused the message."))
    return SubmitOutcome(SubmitVerdict.FAILED, code, f"{text} SMPP status {name}.")


@dataclass(frozen=True, slots=True)
class ReceiptOutcome:
    final: bool
    delivered: bool
    error_code: int | None


_RECEIPT_FAILURES = {
    "UNDELIV": 30003,  # unreachable destination handset
    "EXPIRED": 30003,  # the SMSC gave up before the handset was reachable
    "REJECTD": 30007,  # carrier filtering
    "DELETED": 30008,
    "UNKNOWN": 30008,
}
_INTERMEDIATE = {"ENROUTE", "ACCEPTD"}


def classify_receipt(stat: str | None) -> ReceiptOutcome:
    """DELIVRD → delivered; ENROUTE/ACCEPTD → not final; anything else → undelivered."""
    stat = (stat or "UNKNOWN").upper()
    if stat == "DELIVRD":
        return ReceiptOutcome(final=True, delivered=True, error_code=None)
    if stat in _INTERMEDIATE:
        return ReceiptOutcome(final=False, delivered=False, error_code=None)
    return ReceiptOutcome(
        final=True, delivered=False, error_code=_RECEIPT_FAILURES.get(stat, 30008)
    )
