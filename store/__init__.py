"""Persistence for smsgw: the only package that speaks SQL.

Import the interface and values from here; pick a backend explicitly::

    from store import NewMessage, Status
    from store.sqlite import SqliteStore

    async with SqliteStore("var/smsgw.db") as store:
        message = await store.write(Accept(new_message, now))
"""

from store.base import Store
from store.errors import (
    AlreadyExists,
    CallbackNotPending,
    NotCancelable,
    NotFound,
    SchemaTooNew,
    StoreClosed,
    StoreError,
    StoreUnavailable,
    UnknownAccount,
    UnknownCallback,
    UnknownMessage,
)
from store.models import (
    Account,
    Callback,
    Message,
    MessageEvent,
    NewMessage,
    ReceiptOutcome,
    WriterStats,
)
from store.states import FINAL, IllegalTransition, Status, can_transition

__all__ = [
    "FINAL",
    "Account",
    "AlreadyExists",
    "Callback",
    "CallbackNotPending",
    "IllegalTransition",
    "Message",
    "MessageEvent",
    "NewMessage",
    "NotCancelable",
    "NotFound",
    "ReceiptOutcome",
    "SchemaTooNew",
    "Status",
    "Store",
    "StoreClosed",
    "StoreError",
    "StoreUnavailable",
    "UnknownAccount",
    "UnknownCallback",
    "UnknownMessage",
    "WriterStats",
    "can_transition",
]
