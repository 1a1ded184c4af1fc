"""The per-account queue cap: how many unsent messages (scheduled, queued or sending) an account
may have before new ones are refused with 429 and Twilio's 30001 ("Queue overflow").

Why a cap: one account's runaway loop must not bury every other account's messages behind a
backlog the carriers need hours to drain, nor fill the disk. Refusing at the door is the only
safe place — nothing accepted is ever dropped. The store counts the unsent messages in the same
transactions that change them (`account_backlog`, moved by one upsert per batch from the changes
`WorkingSet` applies), so the check costs one row read per batch of accepts, and holds for every
writer that goes through the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

QUEUE_OVERFLOW = 30001  # Twilio's "Queue overflow"
RETRY_AFTER = "30"  # seconds: a backlog drains in minutes, not milliseconds


@dataclass(frozen=True, slots=True)
class QueueCap:
    """`default` for every account (0: no cap), and the accounts that have their own."""

    default: int = 0
    by_account: Mapping[str, int] = field(default_factory=dict)

    def for_account(self, account_sid: str) -> int | None:
        """The account's cap, or None when it has none."""
        cap = self.by_account.get(account_sid, self.default)
        return cap or None
