"""`SqliteStore`: the embedded backend — one file, one writer thread, a few reader threads.

This module wires the store interface (`store.base.Store`) to SQLite: each write command
(`store.commands`) has one batch handler in `store.sqlite_ops`, run by the group-commit writer
(`store.writer`) with every other waiting command of its kind; reads go to the read pool
(`store.readers`). Nothing here blocks the event loop.

Why `write` is a plain `def` returning a future instead of an `async def`: the body of an
`async def` does not run until the coroutine is awaited or scheduled, so two calls made back to back
could reach the writer in either order. A plain method enqueues its command *during the call*.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import sqlite3
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from store import commands as cmd
from store.errors import StoreError
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
from store.readers import ReadPool
from store.sqlite_ops import accounts, dead_letters, queries
from store.sqlite_ops.connection import connect_reader, connect_writer
from store.sqlite_ops.handlers import COMMAND_KINDS, command_handlers
from store.sqlite_ops.outbound import BatchContext
from store.sqlite_ops.working_set import CallbackLease
from store.writer import GroupCommitWriter
from store.writer_process import ProcessWriter

R = TypeVar("R")


def new_owner_id() -> str:
    """An id for this process's leases: readable in an event history, unique across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class SqliteStore:
    """The store on one SQLite file. See `store.base.Store` for what each method promises.

    `owner` identifies this daemon incarnation's leases; a new one is made per process unless given.
    One daemon per file: at start, leases of any other owner belong to a dead process.
    """

    shared = False  # one daemon per database file (PostgreSQL is the shared backend)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_connections: int = 2,
        max_batch: int = 500,
        owner: str | None = None,
        busy_timeout: float = 5.0,
        writer: str = "thread",
    ) -> None:
        self.path = Path(path)
        self.owner = owner or new_owner_id()
        timeout_ms = round(busy_timeout * 1000)
        self._listener: Callable[[list[Callback]], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: _ThreadWriter | ProcessWriter
        if writer == "thread":
            self._writer = _ThreadWriter(
                self.path, timeout_ms, max_batch, self._hand_out_threadsafe
            )
        elif writer == "process":
            self._writer = ProcessWriter(
                self.path, busy_timeout_ms=timeout_ms, max_batch=max_batch, on_commit=self._hand_out
            )
        else:
            raise StoreError(f"writer must be 'thread' or 'process', not {writer!r}")
        self._readers = ReadPool(
            partial(connect_reader, self.path, busy_timeout_ms=timeout_ms), read_connections
        )

    # -- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> Self:
        """Create the file (and its directory) if needed, migrate it, start the threads."""
        self._loop = asyncio.get_running_loop()
        await self._writer.start()
        try:
            await self._readers.start()
        except BaseException:
            await self._writer.stop()
            raise
        return self

    async def close(self) -> None:
        """Apply and commit every write already called, then stop the threads."""
        await self._writer.stop()
        await self._readers.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def stats(self) -> WriterStats:
        return self._writer.stats

    @property
    def write_error(self) -> BaseException | None:
        """Why the last write transaction failed, while the store cannot commit; else None."""
        return self._writer.last_error

    # -- writes -------------------------------------------------------------------------------

    def write(self, command: cmd.Command[R]) -> asyncio.Future[R]:
        """Queue `command` now; the future resolves with its result once it is durable."""
        return self._writer.submit(_checked(command))

    def write_then(self, command: cmd.Command[R], on_settled: Callable[[bool, Any], None]) -> None:
        """Queue `command` now; `on_settled(ok, result or exception)` once it is durable (or
        failed). With the writer process, in the very turn of the loop its commit is reported."""
        self._writer.submit_then(_checked(command), on_settled)

    def hand_callbacks_to(
        self, listener: Callable[[list[Callback]], None], lease_seconds: float
    ) -> None:
        """From now on, status callbacks are written leased to this store's owner for
        `lease_seconds` and handed to `listener` (on the event loop) right after their commit,
        so the sender need not poll for them. Unheard (the sender is full, or gone), they are due
        again when the lease runs out."""
        self._listener = listener
        self._writer.set_callback_lease(self.owner, lease_seconds)

    def _hand_out_threadsafe(self, created: list[Callback]) -> None:
        """On the writer thread, after a commit: pass new callbacks to the loop's listener."""
        listener, loop = self._listener, self._loop
        if listener is not None and loop is not None and created:
            # RuntimeError: the loop is closed; the leases will run out instead.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(listener, created)

    def _hand_out(self, created: list[Callback]) -> None:
        """On the loop, after a commit in the writer process: the same, called directly."""
        if self._listener is not None and created:
            self._listener(created)

    @property
    def writer_pid(self) -> int | None:
        """The writer process's pid (writer="process"), for an operator; None with a thread."""
        return self._writer.pid

    # -- reads --------------------------------------------------------------------------------

    async def get_account(self, sid: str) -> Account | None:
        return await self._readers.run(partial(accounts.get_account, sid=sid))

    async def list_accounts(self) -> list[Account]:
        return await self._readers.run(accounts.list_accounts)

    async def get_message(self, account_sid: str, sid: str) -> Message | None:
        return await self._readers.run(
            partial(queries.get_message, account_sid=account_sid, sid=sid)
        )

    async def message_events(self, sid: str) -> list[MessageEvent]:
        return await self._readers.run(partial(queries.message_events, sid=sid))

    async def count_by_status(self) -> dict[str, int]:
        return await self._readers.run(queries.count_by_status)

    async def find_message(self, sid: str) -> Message | None:
        return await self._readers.run(partial(queries.find_message, sid=sid))

    async def message_callbacks(self, sid: str) -> list[CallbackRecord]:
        return await self._readers.run(partial(queries.message_callbacks, sid=sid))

    async def dead_letters(self, which: DeadLetterFilter) -> list[DeadLetter]:
        return await self._readers.run(partial(dead_letters.list_dead_letters, which=which))

    async def dead_letter(self, entry_id: int) -> DeadLetter | None:
        return await self._readers.run(partial(dead_letters.get_dead_letter, entry_id=entry_id))

    async def pending_work(self, carrier: str) -> int:
        return await self._readers.run(partial(queries.pending_work, carrier=carrier))

    async def next_due_at(self, carrier: str) -> datetime | None:
        return await self._readers.run(partial(queries.next_due_at, carrier=carrier))

    async def next_scheduled_at(self) -> datetime | None:
        return await self._readers.run(queries.next_scheduled_at)

    async def parts_to_query(
        self,
        carrier: str,
        submitted_before: datetime,
        not_before: datetime,
        queried_before: datetime,
        limit: int,
    ) -> list[PartToQuery]:
        return await self._readers.run(
            partial(
                queries.parts_to_query,
                carrier=carrier,
                submitted_before=submitted_before,
                not_before=not_before,
                queried_before=queried_before,
                limit=limit,
            )
        )


class _ThreadWriter:
    """The group-commit writer on a thread of this process, behind the same few methods as
    `ProcessWriter`: the store submits commands, this finds each one's batch handler."""

    pid = None

    def __init__(
        self,
        path: Path,
        busy_timeout_ms: int,
        max_batch: int,
        on_commit: Callable[[list[Any]], None],
    ) -> None:
        self._writer = GroupCommitWriter(
            partial(connect_writer, path, busy_timeout_ms=busy_timeout_ms),
            max_batch=max_batch,
            on_commit=on_commit,
        )
        self._context = BatchContext(created_callbacks=self._writer.outbox)
        self._handlers = command_handlers(self._context)

    async def start(self) -> None:
        await self._writer.start()

    async def stop(self) -> None:
        await self._writer.stop()

    @property
    def stats(self) -> WriterStats:
        return self._writer.stats

    @property
    def last_error(self) -> BaseException | None:
        return self._writer.last_error

    def submit(self, command: object) -> asyncio.Future[Any]:
        priority, handler = self._handlers[type(command)]
        return self._writer.submit_batched(handler, command, priority)

    def submit_then(self, command: object, on_settled: Callable[[bool, Any], None]) -> None:
        """As `ProcessWriter.submit_then`; here the outcome already crosses from the writer thread
        by a loop callback, so this is the future's done-callback."""
        self.submit(command).add_done_callback(partial(_settled_future, on_settled))

    def submit_op(self, op: Callable[[sqlite3.Connection], Any]) -> asyncio.Future[Any]:
        """A plain op on the write connection (tests use it to hold or trace the writer)."""
        return self._writer.submit(op)

    def set_callback_lease(self, owner: str, seconds: float) -> None:
        self._context.callback_lease = CallbackLease(owner, seconds)


def _settled_future(on_settled: Callable[[bool, Any], None], future: asyncio.Future[Any]) -> None:
    if future.cancelled():
        return
    error = future.exception()
    if error is None:
        on_settled(True, future.result())
    else:
        on_settled(False, error)


def _checked(command: object) -> object:
    if type(command) not in COMMAND_KINDS:
        raise StoreError(f"not a store command: {command!r}")
    return command
