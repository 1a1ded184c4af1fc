"""`SqliteStore`: the embedded backend — one file, one writer thread, a few reader threads.

This module only wires the public interface (`store.base.Store`) to the synchronous SQL functions in
`store.sqlite_ops`: writes go to the group-commit writer (`store.writer`), reads to the read pool
(`store.readers`). Nothing here blocks the event loop.

Why the write methods are plain `def`s returning a future instead of `async def`: the body of an
`async def` does not run until the coroutine is awaited or scheduled, so two calls made back to back
could reach the writer in either order. A plain method enqueues its op *during the call*, so writes
are applied in the order the methods were called, whatever order their results are awaited in. A
delivery engine may therefore fire `record_submit_accepted(...)` and, on the next PDU,
`record_receipt(...)` without awaiting the first, and the receipt will find the part.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from store.models import (
    Account,
    Callback,
    Message,
    MessageEvent,
    NewMessage,
    ReceiptOutcome,
    WriterStats,
)
from store.readers import ReadPool
from store.sqlite_ops import accounts, callbacks, messages, queries, receipts
from store.sqlite_ops.connection import connect_reader, connect_writer
from store.writer import GroupCommitWriter

T = TypeVar("T")


def new_owner_id() -> str:
    """An id for this process's leases: readable in an event history, unique across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class SqliteStore:
    """The store on one SQLite file. See `store.base.Store` for what each method promises.

    `owner` identifies this daemon incarnation's leases; a new one is made per process unless given,
    so `recover_leases` at start reclaims everything a previous process left in `sending`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_connections: int = 2,
        max_batch: int = 500,
        owner: str | None = None,
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self.owner = owner or new_owner_id()
        timeout_ms = round(busy_timeout * 1000)
        self._writer = GroupCommitWriter(
            partial(connect_writer, self.path, busy_timeout_ms=timeout_ms), max_batch=max_batch
        )
        self._readers = ReadPool(
            partial(connect_reader, self.path, busy_timeout_ms=timeout_ms), read_connections
        )

    # -- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> Self:
        """Create the file (and its directory) if needed, migrate it, start the threads."""
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

    # -- accounts -------------------------------------------------------------------------------

    def create_account(
        self, sid: str, friendly_name: str, auth_token: str, now: datetime
    ) -> asyncio.Future[Account]:
        return self._write(
            partial(
                accounts.create_account,
                sid=sid,
                friendly_name=friendly_name,
                auth_token=auth_token,
                now=now,
            )
        )

    async def get_account(self, sid: str) -> Account | None:
        return await self._readers.run(partial(accounts.get_account, sid=sid))

    async def list_accounts(self) -> list[Account]:
        return await self._readers.run(accounts.list_accounts)

    # -- messages -------------------------------------------------------------------------------

    def accept(self, msg: NewMessage, now: datetime) -> asyncio.Future[Message]:
        return self._write(partial(messages.accept, msg=msg, now=now))

    async def get_message(self, account_sid: str, sid: str) -> Message | None:
        return await self._readers.run(
            partial(queries.get_message, account_sid=account_sid, sid=sid)
        )

    async def message_events(self, sid: str) -> list[MessageEvent]:
        return await self._readers.run(partial(queries.message_events, sid=sid))

    async def count_by_status(self) -> dict[str, int]:
        return await self._readers.run(queries.count_by_status)

    def claim_due(
        self,
        carrier: str,
        *,
        limit: int,
        owner: str | None = None,
        lease_seconds: float,
        now: datetime,
    ) -> asyncio.Future[list[Message]]:
        return self._write(
            partial(
                messages.claim_due,
                carrier=carrier,
                limit=limit,
                owner=owner or self.owner,
                lease_seconds=lease_seconds,
                now=now,
            )
        )

    def record_submit_accepted(
        self, sid: str, part_index: int, carrier: str, carrier_message_id: str, now: datetime
    ) -> asyncio.Future[Message | None]:
        return self._write(
            partial(
                messages.record_submit_accepted,
                sid=sid,
                part_index=part_index,
                carrier=carrier,
                carrier_message_id=carrier_message_id,
                now=now,
            )
        )

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
    ) -> asyncio.Future[Message]:
        return self._write(
            partial(
                messages.record_submit_failed,
                sid=sid,
                carrier=carrier,
                smpp_status=smpp_status,
                error_code=error_code,
                error_message=error_message,
                permanent=permanent,
                retry_at=retry_at,
                now=now,
            )
        )

    def requeue(
        self, sid: str, *, reason: str, now: datetime, count_attempt: bool = False
    ) -> asyncio.Future[Message]:
        return self._write(
            partial(messages.requeue, sid=sid, reason=reason, now=now, count_attempt=count_attempt)
        )

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
    ) -> asyncio.Future[ReceiptOutcome]:
        return self._write(
            partial(
                receipts.record_receipt,
                carrier=carrier,
                carrier_message_id=carrier_message_id,
                stat=stat,
                err=err,
                done_date=done_date,
                error_code=error_code,
                delivered=delivered,
                final=final,
                now=now,
            )
        )

    def purge_orphan_receipts(self, before: datetime) -> asyncio.Future[int]:
        return self._write(partial(receipts.purge_orphan_receipts, before=before))

    def recover_leases(self, now: datetime, *, owner: str | None = None) -> asyncio.Future[int]:
        return self._write(partial(messages.recover_leases, owner=owner or self.owner, now=now))

    async def pending_work(self, carrier: str) -> int:
        return await self._readers.run(partial(queries.pending_work, carrier=carrier))

    async def next_due_at(self, carrier: str) -> datetime | None:
        return await self._readers.run(partial(queries.next_due_at, carrier=carrier))

    # -- status callbacks -----------------------------------------------------------------------

    async def due_callbacks(self, now: datetime, limit: int) -> list[Callback]:
        return await self._readers.run(partial(callbacks.due_callbacks, now=now, limit=limit))

    def callback_delivered(self, callback_id: int, now: datetime) -> asyncio.Future[None]:
        return self._write(partial(callbacks.callback_delivered, callback_id=callback_id, now=now))

    def callback_retry(
        self, callback_id: int, *, error: str, next_attempt_at: datetime, now: datetime
    ) -> asyncio.Future[None]:
        return self._write(
            partial(
                callbacks.callback_retry,
                callback_id=callback_id,
                error=error,
                next_attempt_at=next_attempt_at,
                now=now,
            )
        )

    def callback_give_up(
        self, callback_id: int, *, error: str, now: datetime
    ) -> asyncio.Future[None]:
        return self._write(
            partial(callbacks.callback_give_up, callback_id=callback_id, error=error, now=now)
        )

    # -------------------------------------------------------------------------------------------

    def _write(self, op: Callable[..., T]) -> asyncio.Future[T]:
        return self._writer.submit(op)
