"""The store interface every backend implements (SQLite now, PostgreSQL later). No SQL here.

Two kinds of method:

* **Writes** are plain methods that return an awaitable (`asyncio.Future`). They enqueue their work
  *during the call*, before returning, so writes are applied in the order the methods were called,
  even if the caller awaits them in another order or not at once. The awaitable completes only
  after the write is committed durably. Cancelling the awaitable does not withdraw the write.
* **Reads** are `async def`s. A read sees every write whose awaitable has completed.

Times passed in are tz-aware UTC datetimes, and every op that records a time takes `now`
explicitly, so tests (and replays) drive the clock. Errors are `store.errors.StoreError`s;
`store.states.IllegalTransition` when an op asks for a status change the state machine forbids
(nothing is written then).
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from store.models import (
    Account,
    Callback,
    Message,
    MessageEvent,
    NewMessage,
    ReceiptOutcome,
    WriterStats,
)


class Store(Protocol):
    owner: str
    """This process's lease owner id; a restarted daemon gets a new one."""

    @property
    def stats(self) -> WriterStats:
        """Commit and batch counters of the writer."""
        ...

    async def open(self) -> Self:
        """Create or migrate the database and start the store's workers."""
        ...

    async def close(self) -> None:
        """Commit every write already called, then stop; later calls raise `StoreClosed`."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    # -- accounts ---------------------------------------------------------------------------

    def create_account(
        self, sid: str, friendly_name: str, auth_token: str, now: datetime
    ) -> Awaitable[Account]:
        """Create an active account. `AlreadyExists` if the sid is taken."""
        ...

    async def get_account(self, sid: str) -> Account | None: ...

    async def list_accounts(self) -> list[Account]:
        """All accounts, oldest first."""
        ...

    # -- the outbound lifecycle ---------------------------------------------------------------

    def accept(self, msg: NewMessage, now: datetime) -> Awaitable[Message]:
        """Store a new outbound message as `queued`, due at `now`; durable when awaited.

        `UnknownAccount` if the account does not exist; `AlreadyExists` if the sid does.
        """
        ...

    async def get_message(self, account_sid: str, sid: str) -> Message | None:
        """The message, if it exists *and* belongs to `account_sid`."""
        ...

    async def message_events(self, sid: str) -> list[MessageEvent]:
        """The message's history, oldest first."""
        ...

    async def count_by_status(self) -> dict[str, int]:
        """Number of messages per status; every status is present (zero included)."""
        ...

    def claim_due(
        self,
        carrier: str,
        *,
        limit: int,
        owner: str | None = None,
        lease_seconds: float,
        now: datetime,
    ) -> Awaitable[list[Message]]:
        """Move up to `limit` due queued messages of `carrier` to `sending`, in due order.

        Due order: by next attempt time, then acceptance order. Each claimed message counts an
        attempt and is leased to `owner` (default: `self.owner`) until `now + lease_seconds`.
        """
        ...

    def record_submit_accepted(
        self, sid: str, part_index: int, carrier: str, carrier_message_id: str, now: datetime
    ) -> Awaitable[Message | None]:
        """The carrier accepted part `part_index` (0-based) and named it `carrier_message_id`.

        When every part is accepted the message becomes `sent` (date_sent = now, lease cleared).
        Receipts that arrived for this id before now are then applied. None if `sid` is unknown.
        """
        ...

    def record_submit_failed(
        self,
        sid: str,
        *,
        carrier: str,
        smpp_status: int | None,
        error_code: int | None,
        error_message: str | None,
        permanent: bool,
        retry_at: datetime | None,
        now: datetime,
    ) -> Awaitable[Message]:
        """The carrier refused it: `failed` if `permanent`, else queued again at `retry_at`."""
        ...

    def requeue(
        self, sid: str, *, reason: str, now: datetime, count_attempt: bool = False
    ) -> Awaitable[Message]:
        """Give back a claimed message whose PDU was never written (the attempt is not counted)."""
        ...

    def record_receipt(
        self,
        carrier: str,
        carrier_message_id: str,
        *,
        stat: str | None,
        err: str | None,
        done_date: str | None,
        error_code: int | None,
        delivered: bool,
        final: bool = True,
        now: datetime,
    ) -> Awaitable[ReceiptOutcome]:
        """A delivery receipt. Settles the message once every part has a final receipt.

        `final=False` (ENROUTE, ACCEPTD…) is history only. A receipt for an unknown id is held and
        applied when the submit response arrives (`matched=False`). A receipt for a message in a
        final status is history only (see `store.states`).
        """
        ...

    def purge_orphan_receipts(self, before: datetime) -> Awaitable[int]:
        """Forget held receipts received before `before`; returns how many."""
        ...

    def recover_leases(self, now: datetime, *, owner: str | None = None) -> Awaitable[int]:
        """Requeue messages in `sending` leased by anyone but `owner`, or whose lease expired.

        `owner` defaults to `self.owner`; pass the id this process gives `claim_due`. Call at
        daemon start. Returns how many were requeued; each may be a duplicate send.

        Single-node rule: with one daemon per database, a lease held by another owner belongs to
        a dead process. A shared (PostgreSQL) backend must recover expired leases only.
        """
        ...

    async def pending_work(self, carrier: str) -> int:
        """Queued messages of `carrier`, due or not."""
        ...

    async def next_due_at(self, carrier: str) -> datetime | None:
        """When the earliest queued message of `carrier` is due; None if none is queued."""
        ...

    # -- status callbacks -----------------------------------------------------------------------

    async def due_callbacks(self, now: datetime, limit: int) -> list[Callback]:
        """Pending callbacks due at `now`, at most one per message (its oldest pending one).

        This is a read: a callback stays due until acknowledged, so the sender must not ask again
        for ids it is still delivering.
        """
        ...

    def callback_delivered(self, callback_id: int, now: datetime) -> Awaitable[None]: ...

    def callback_retry(
        self, callback_id: int, *, error: str, next_attempt_at: datetime, now: datetime
    ) -> Awaitable[None]: ...

    def callback_give_up(self, callback_id: int, *, error: str, now: datetime) -> Awaitable[None]:
        """Stop trying (state `failed`); the next callback of the message becomes due."""
        ...
