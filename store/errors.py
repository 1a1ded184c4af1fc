"""The store's exceptions: one hierarchy, so callers can catch `StoreError` and map it in one place.

Every message says what was wrong, with the value, so an operator reading a log line does not have
to guess which message or account was meant.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class StoreUnavailable(StoreError):
    """The store could not commit (disk full, database locked past the busy timeout, read-only
    file, I/O error): nothing of the write is durable, and the same write may succeed later."""


class StoreClosed(StoreError):
    """An operation was attempted on a store that is not open (or is closing)."""


class SchemaTooNew(StoreError):
    """The database was written by a newer smsgw; opening it could corrupt it, so we refuse."""


class NotFound(StoreError):
    """The row an operation needs does not exist."""


class UnknownAccount(NotFound):
    pass


class UnknownMessage(NotFound):
    pass


class UnknownCallback(NotFound):
    pass


class AlreadyExists(StoreError):
    """A row with this id is already stored (SIDs are random: this means a bug or a replay)."""


class NotCancelable(StoreError):
    """The message has left `scheduled`/`queued` (it is on a carrier, or final): too late."""


class CallbackNotPending(StoreError):
    """A status callback already done or given up cannot be acknowledged or retried again."""


class UnknownDeadLetter(NotFound):
    """No dead-letter entry has that id (purged, or never there)."""


class AlreadyReplayed(StoreError):
    """The dead-letter entry was replayed already: a second replay would send it twice."""


class QueueFull(StoreError):
    """The account has as many unsent messages as its queue cap allows; nothing was stored."""

    def __init__(self, account_sid: str, unsent: int, cap: int) -> None:
        self.account_sid = account_sid
        self.unsent = unsent
        self.cap = cap
        super().__init__(
            f"Account {account_sid} has {unsent} unsent messages, its queue cap is {cap}; "
            "try again when some have been sent."
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt from its own arguments (it crosses from the writer process as a pickle).
        return (type(self), (self.account_sid, self.unsent, self.cap))
