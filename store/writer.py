"""The group-commit writer: one thread owns the write connection and commits work in batches.

Why a thread: SQLite calls block (and `synchronous=FULL` means every commit waits for an fsync), so
they must never run on the event loop. Why one thread: SQLite has one writer at a time anyway, and
a single owner of the write connection means no locking, no SQLITE_BUSY between our own writers,
and a total order of writes.

Why group commit: the fsync is the cost of durability, and it costs the same for one row as for five
hundred. The thread takes *everything* queued (up to `max_batch` ops), runs it in one transaction,
commits once, and only then resolves each caller's future. Under load, throughput grows with
concurrency instead of being capped at one fsync per message; an idle caller still waits only for
its own commit.

Isolation between ops: each op runs inside its own SAVEPOINT, so an op that raises is rolled back
alone and fails only its own future; the others in the batch commit. If the COMMIT itself fails
(disk full, I/O error), no op's effects are durable, so every future in the batch fails.

Ordering: `submit` enqueues synchronously on the caller's thread and the queue is FIFO, so ops are
applied in the order `submit` was called — across batches too.

The writer knows nothing about messages: an op is any `Callable[[sqlite3.Connection], T]` that uses
only the connection it is given and never commits or begins transactions itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from store.errors import StoreClosed, StoreError
from store.models import WriterStats

T = TypeVar("T")

Op = Callable[[sqlite3.Connection], Any]


@dataclass(slots=True)
class _Job:
    op: Op
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


@dataclass(slots=True)
class _Counters:
    commits: int = 0
    ops: int = 0
    failed_ops: int = 0
    failed_commits: int = 0
    largest_batch: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


_STOP = object()


class GroupCommitWriter:
    """Apply write ops on one dedicated thread, many ops per transaction.

    Lifecycle: `await start()` opens the connection on the writer thread (via `connect`, which may
    also run migrations); `submit(op)` returns a future; `await stop()` applies everything already
    submitted, commits, closes the connection and joins the thread.
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        max_batch: int = 500,
        name: str = "smsgw-store-writer",
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self._connect = connect
        self._max_batch = max_batch
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._accepting = False
        self._counters = _Counters()

    @property
    def stats(self) -> WriterStats:
        c = self._counters
        with c.lock:
            return WriterStats(c.commits, c.ops, c.failed_ops, c.failed_commits, c.largest_batch)

    async def start(self) -> None:
        if self._thread is not None:
            raise StoreError("the writer was already started")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._start_error is not None:
            await asyncio.to_thread(self._thread.join)
            raise self._start_error
        self._accepting = True

    def submit(self, op: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue `op` now (not at the first `await`) and return a future for its result.

        The future resolves after the transaction containing `op` has committed. Cancelling the
        future does not withdraw the op: once queued it will be applied.
        """
        if not self._accepting:
            raise StoreClosed("The store is not open; open() it before writing (or it was closed).")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(op, future, loop))
        return future

    async def stop(self) -> None:
        """Apply and commit everything already submitted, then close the connection."""
        if self._thread is None or not self._accepting:
            return
        self._accepting = False
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # reported to start(), which re-raises it on the loop
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            stopping = False
            while not stopping:
                batch, stopping = self._take_batch()
                if batch:
                    self._apply(conn, batch)
        finally:
            conn.close()

    def _take_batch(self) -> tuple[list[_Job], bool]:
        """Block for the first job, then take whatever else is already queued, up to the cap."""
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return batch, True
            batch.append(job)
        return batch, False

    def _apply(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        failed = 0
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                conn.execute("SAVEPOINT op")
                try:
                    result = job.op(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    outcomes.append((False, exc))
                    failed += 1
                else:
                    conn.execute("RELEASE op")
                    outcomes.append((True, result))
            conn.execute("COMMIT")
        except Exception as exc:
            # BEGIN or COMMIT failed (busy beyond the timeout, disk full, I/O error): nothing of
            # this batch is durable, so nobody may be told it succeeded.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(False, _transaction_failed(exc)) for _ in batch]
            with self._counters.lock:
                self._counters.failed_commits += 1
                self._counters.failed_ops += len(batch)
        else:
            with self._counters.lock:
                c = self._counters
                c.commits += 1
                c.ops += len(batch)
                c.failed_ops += failed
                c.largest_batch = max(c.largest_batch, len(batch))
        self._resolve(batch, outcomes)

    @staticmethod
    def _resolve(batch: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
        """Hand results back to each caller's loop: one wake-up per loop per batch."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job.future, ok, value))
        for loop, items in by_loop.items():
            # RuntimeError: the caller's loop is closed, nobody is left to tell.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle_all, items)


def _transaction_failed(exc: Exception) -> StoreError:
    error = StoreError(f"The write transaction failed and was rolled back: {exc}")
    error.__cause__ = exc
    return error


def _settle_all(items: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in items:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
