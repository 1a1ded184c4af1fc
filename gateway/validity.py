"""ValidityPeriod: how long a message may wait to be submitted (Twilio's rule, seconds 1-36,000).

Pure: the API reads the parameter with `parse_validity_period`, and `Validity` gives each account
its default when the request has none. The store keeps the end of the period with the message;
past it, the message fails with 30036 instead of going out late (store.lifecycle.ValidityExpired).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

MAX_VALIDITY_PERIOD = 36_000  # seconds: Twilio's ceiling, and its default


def parse_validity_period(text: str) -> int:
    """The seconds `text` gives; ValueError unless it is a whole number 1-36,000."""
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_VALIDITY_PERIOD:
        raise ValueError(
            f"The ValidityPeriod must be a whole number of seconds from 1 to "
            f"{MAX_VALIDITY_PERIOD}, got {text!r}."
        )
    return int(value)


@dataclass(frozen=True, slots=True)
class Validity:
    """The default ValidityPeriod, and the accounts that have their own."""

    default: int = MAX_VALIDITY_PERIOD
    by_account: Mapping[str, int] = field(default_factory=dict)

    def for_account(self, account_sid: str) -> int:
        return self.by_account.get(account_sid, self.default)
