"""What the simulator does with a submit, by its destination: outcome rules.

A rule is ``PATTERN=OUTCOME``; the first whose pattern matches the destination address (shell
wildcards, `fnmatch`, on the digits as submitted: ``1415555*``, ``*0000``) decides. Outcomes:

* ``delivered`` (what happens without a rule), ``undelivered``, ``expired``, ``rejected``,
  ``deleted``, ``unknown``: a receipt with that final stat (DELIVRD, UNDELIV, EXPIRED, REJECTD,
  DELETED, UNKNOWN);
* ``no-receipt``: accepted, but no receipt ever comes;
* ``error:STATUS``: the submit_sm_resp carries that command_status (``error:0x0B``, ``error:88``);
* ``no-response``: the submit is never answered (the ESME's response timeout plays out);
* ``delay:SECONDS``: delivered, its receipt that many seconds later;
* ``late:SECONDS``: delivered, but its submit_sm_resp comes that many seconds late (past an
  ESME's response timeout, as an overloaded SMSC answers), the receipt after it.

Pure: parsing and matching only, so the CLI and tests share one reading of a rule.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

_STATS = {
    "delivered": ("DELIVRD", "000"),
    "undelivered": ("UNDELIV", "001"),
    "expired": ("EXPIRED", "000"),
    "rejected": ("REJECTD", "000"),
    "deleted": ("DELETED", "000"),
    "unknown": ("UNKNOWN", "000"),
}


@dataclass(frozen=True, slots=True)
class Outcome:
    submit_status: int = 0
    respond: bool = True
    receipt: tuple[str, str] | None = ("DELIVRD", "000")  # (stat, err); None: no receipt
    receipt_delay: float | None = None  # None: the simulator's receipt_delay
    response_delay: float = 0.0  # seconds before the submit_sm_resp goes out


DELIVERED = Outcome()


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: str
    outcome: Outcome
    text: str  # as written, for logs and errors


def parse_rule(text: str) -> Rule:
    """``PATTERN=OUTCOME`` as a Rule; ValueError naming what is wrong."""
    pattern, sep, outcome = text.partition("=")
    if not sep or not pattern:
        raise ValueError(f"rule {text!r}: expected PATTERN=OUTCOME, e.g. '1415555*=undelivered'")
    return Rule(pattern, parse_outcome(outcome.strip(), text), text)


def parse_outcome(word: str, rule: str = "") -> Outcome:
    where = f"rule {rule!r}: " if rule else ""
    if word in _STATS:
        return Outcome(receipt=_STATS[word])
    if word == "no-receipt":
        return Outcome(receipt=None)
    if word == "no-response":
        return Outcome(respond=False, receipt=None)
    kind, _, value = word.partition(":")
    try:
        if kind == "error":
            status = int(value, 0)
            if not 0 < status <= 0xFFFFFFFF:
                raise ValueError
            return Outcome(submit_status=status, receipt=None)
        if kind == "delay":
            seconds = float(value)
            if seconds < 0:
                raise ValueError
            return Outcome(receipt_delay=seconds)
        if kind == "late":
            seconds = float(value)
            if seconds <= 0:
                raise ValueError
            return Outcome(response_delay=seconds)
    except ValueError:
        raise ValueError(f"{where}{word!r} needs a valid value ({kind}:…)") from None
    known = ", ".join(
        [*_STATS, "no-receipt", "no-response", "error:STATUS", "delay:SECONDS", "late:SECONDS"]
    )
    raise ValueError(f"{where}unknown outcome {word!r}; expected one of {known}")


def outcome_for(rules: Sequence[Rule], destination: str) -> Outcome:
    """The first matching rule's outcome, else delivered."""
    for rule in rules:
        if fnmatch.fnmatchcase(destination, rule.pattern):
            return rule.outcome
    return DELIVERED
