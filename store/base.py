"""The store interface every backend implements (SQLite now, PostgreSQL later). No SQL here.

Two kinds of method:

* **Writes** go through one method, `write(command)`, with a command from `store.commands` — one
  frozen dataclass per operation, so each operation's signature is written once. `write` queues the
  command *during the call* and returns an awaitable that completes only after the write is
  committed durably; cancelling the awaitable does not withdraw the write. Backends apply waiting
  commands of one kind as one batch, deciding every change with `store.lifecycle` (pure code
  shared by every backend). `write_then(command, on_settled)` is the same write for a caller that
  must act the moment it is durable (the API's 201): `on_settled(ok, value)` is called on the
  event loop instead of waking an awaiting task, which would wait one more turn of the loop.
* **Reads** are `async def`s. A read sees every write whose awaitable has completed.

Times passed in are tz-aware UTC datetimes, and every command that records a time carries `now`
explicitly, so tests (and replays) drive the clock. Errors are `store.errors.StoreError`s;
`store.states.IllegalTransition` when a command asks for a status change the state machine
forbids (nothing is written for that command then).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self, TypeVar

from store.commands import Command
from store.models import (
    Account,
    Callback,
    CallbackRecord,
    DeadLetter,
    DeadLetterFilter,
    Message,
    MessageEvent,
    PartToQuery,
    WriterStats,
)

R = TypeVar("R")


class Store(Protocol):
    owner: str
    """This process's lease owner id; a restarted daemon gets a new one."""

    shared: bool
    """Whether several daemons may share this store (then only expired leases are recovered)."""

    @property
    def stats(self) -> WriterStats:
        """Commit and batch counters of the writer."""
        ...

    @property
    def write_error(self) -> BaseException | None:
        """Why the last write failed to commit, while the store cannot commit; else None."""
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

    def write(self, command: Command[R]) -> Awaitable[R]:
        """Apply `command` (see `store.commands` for each one's meaning and result)."""
        ...

    def write_then(self, command: Command[R], on_settled: Callable[[bool, R], None]) -> None:
        """Apply `command`; once it is committed (or has failed), call `on_settled(True, result)`
        or `on_settled(False, exception)` on the event loop — never before this returns. It
        must be quick and not raise (an exception goes to the loop's exception handler)."""
        ...

    def hand_callbacks_to(
        self, listener: Callable[[list[Callback]], None], lease_seconds: float
    ) -> None:
        """Lease new status callbacks to this process and hand them to `listener` after commit."""
        ...

    async def get_account(self, sid: str) -> Account | None: ...

    async def list_accounts(self) -> list[Account]:
        """All accounts, oldest first."""
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

    async def find_message(self, sid: str) -> Message | None:
        """The message whatever account owns it: the operator's view (CLI), never the API's."""
        ...

    async def message_callbacks(self, sid: str) -> list[CallbackRecord]:
        """The message's status callbacks as the outbox holds them, oldest first."""
        ...

    async def dead_letters(self, which: DeadLetterFilter) -> list[DeadLetter]:
        """Dead-letter entries matching `which`, in the order they entered."""
        ...

    async def dead_letter(self, entry_id: int) -> DeadLetter | None: ...

    async def pending_work(self, carrier: str) -> int:
        """Queued messages of `carrier`, due or not."""
        ...

    async def next_due_at(self, carrier: str) -> datetime | None:
        """When the earliest queued message of `carrier` is due; None if none is queued."""
        ...

    async def next_scheduled_at(self) -> datetime | None:
        """When the earliest scheduled message is due (its SendAt); None if none is scheduled."""
        ...

    async def parts_to_query(
        self,
        carrier: str,
        submitted_before: datetime,
        not_before: datetime,
        queried_before: datetime,
        limit: int,
    ) -> list[PartToQuery]:
        """Parts of `carrier` still waiting for a receipt, submitted in [not_before,
        submitted_before), not queried since `queried_before`: due for a query_sm."""
        ...
