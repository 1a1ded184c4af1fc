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
