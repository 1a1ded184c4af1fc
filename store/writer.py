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

Batched ops: `submit_batched(handler, item, priority)` queues one item for a handler that takes a
list. Within one transaction, plain ops run first (in call order), then each handler once with all
of its items (in call order), handlers by ascending priority. So a hundred receipts become one
handler call — one SELECT, one UPDATE — instead of a hundred. A handler reports an item's own
failure by returning the exception; if a handler raises, the transaction is started again with
every item alone in its own savepoint, so only the item at fault fails.

After-commit outbox: ops may append to `outbox` (things to hand out once durable, e.g. the status
callbacks a transaction created); after the COMMIT the writer passes them to `on_commit`, and
what an op appended before it was rolled back is dropped.

The writer knows nothing about messages: an op is any `Callable[[sqlite3.Connection], T]` that uses
only the connection it is given and never commits or begins transactions itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from store.errors import StoreClosed, StoreError, StoreUnavailable
from store.models import WriterStats

T = TypeVar("T")

Op = Callable[[sqlite3.Connection], Any]
BatchHandler = Callable[[sqlite3.Connection, list[Any]], list[Any]]
"""Takes items, returns one result per item: a value, or an exception instance for that item."""


@dataclass(slots=True)
class _Job:
    op: Op | BatchHandler
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    item: Any = None
    priority: int = -1  # -1: a plain op; otherwise a batched item of handler `op`


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
        on_commit: Callable[[list[Any]], None] | None = None,
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
        self._applier = BatchApplier(on_commit=on_commit)

    @property
    def outbox(self) -> list[Any]:
        """What ops hand out after their commit (see `BatchApplier.outbox`)."""
        return self._applier.outbox

    @property
    def last_error(self) -> BaseException | None:
        """The error of the last failed transaction; None once a transaction commits again."""
        return self._applier.last_error

    @property
    def stats(self) -> WriterStats:
        return self._applier.stats

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

    def submit_batched(
        self, handler: BatchHandler, item: Any, priority: int
    ) -> asyncio.Future[Any]:
        """Queue `item` for `handler`, applied with every other waiting item of that handler."""
        if not self._accepting:
            raise StoreClosed("The store is not open; open() it before writing (or it was closed).")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Job(handler, future, loop, item, priority))
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
        self._resolve(batch, self._applier.apply(conn, batch))

    @staticmethod
    def _resolve(batch: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
        """Hand results back to each caller's loop: one wake-up per loop per batch."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job.future, ok, value))
        for loop, items in by_loop.items():
            # RuntimeError: the caller's loop is closed, nobody is left to tell.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle_all, items)


class Job(Protocol):
    """One unit of work for `BatchApplier`: a plain op (`priority < 0`) or an item of a batch
    handler (`op` is the handler)."""

    op: Op | BatchHandler
    item: Any
    priority: int


class BatchApplier:
    """The transaction logic of group commit, apart from who feeds it (a thread here, a process in
    `store.writer_process`): a batch of jobs in one transaction, savepoints where one must fail
    alone, the after-commit outbox, the counters and the last error."""

    def __init__(self, *, on_commit: Callable[[list[Any]], None] | None = None) -> None:
        self._counters = _Counters()
        self.outbox: list[Any] = []
        """Ops append what must be handed out once durable; cleared, never replaced."""
        self._on_commit = on_commit
        self.last_error: BaseException | None = None

    @property
    def stats(self) -> WriterStats:
        c = self._counters
        with c.lock:
            return WriterStats(c.commits, c.ops, c.failed_ops, c.failed_commits, c.largest_batch)

    def apply(self, conn: sqlite3.Connection, batch: Sequence[Job]) -> list[tuple[bool, Any]]:
        """Run `batch` in one transaction; return each job's (ok, result or exception), in order."""
        return self.apply_until(conn, batch, None)[1]

    def apply_until(
        self, conn: sqlite3.Connection, batch: Sequence[Job], cut: Callable[[], bool] | None
    ) -> tuple[list[Job], list[tuple[bool, Any]], list[Job]]:
        """Run `batch` in one transaction, but commit early when `cut()` says so: it is asked
        before each handler's group after the first. Returns the jobs applied (in batch order),
        their (ok, result or exception), and the jobs left for another transaction (in the order
        they would have run). Why: an API client waiting on its accept should not wait behind the
        whole of a large batch of delivery work (store.writer_process)."""
        plain = [job for job in batch if job.priority < 0]
        groups: dict[Any, list[Job]] = {}
        for job in sorted((j for j in batch if j.priority >= 0), key=_priority):
            groups.setdefault(job.op, []).append(job)
        changes_before = conn.total_changes
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                outcomes = self._apply_jobs(conn, plain, groups, careful=False, cut=cut)
            except _HandlerFailed as error:
                # A handler raised (not an item's own error, which it returns): start again, each
                # item in a savepoint of its own, so only the one at fault fails. The groups the
                # fast attempt reached are not cut again; those after it may be.
                conn.execute("ROLLBACK")
                self.outbox.clear()
                conn.execute("BEGIN IMMEDIATE")
                outcomes = self._apply_jobs(
                    conn, plain, groups, careful=True, cut=cut, cut_from=error.group + 1
                )
            conn.execute("COMMIT")
        except Exception as exc:
            # BEGIN or COMMIT failed (busy beyond the timeout, disk full, I/O error): nothing of
            # this batch is durable, so nobody may be told it succeeded.
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            self.outbox.clear()
            self.last_error = exc
            failure = _transaction_failed(exc)
            outcomes = {id(job): (False, failure) for job in batch}
            groups = {}  # nothing is left over: every job of the batch failed with it
            with self._counters.lock:
                self._counters.failed_commits += 1
                self._counters.failed_ops += len(batch)
        else:
            if conn.total_changes != changes_before:
                # Only a commit that wrote something shows the store can commit again: one that
                # changed nothing (an empty claim) succeeds even on a read-only file.
                self.last_error = None
            failed = sum(1 for ok, _ in outcomes.values() if not ok)
            with self._counters.lock:
                c = self._counters
                c.commits += 1
                c.ops += len(outcomes)
                c.failed_ops += failed
                c.largest_batch = max(c.largest_batch, len(outcomes))
            if self.outbox:
                handed = list(self.outbox)
                self.outbox.clear()  # the same list: ops hold on to it
                if self._on_commit is not None:
                    self._on_commit(handed)
        applied = [job for job in batch if id(job) in outcomes]
        left = [job for jobs in groups.values() for job in jobs if id(job) not in outcomes]
        return applied, [outcomes[id(job)] for job in applied], left

    def _apply_jobs(
        self,
        conn: sqlite3.Connection,
        plain: list[Job],
        groups: dict[Any, list[Job]],
        *,
        careful: bool,
        cut: Callable[[], bool] | None = None,
        cut_from: int = 1,
    ) -> dict[int, tuple[bool, Any]]:
        """Apply plain ops (each in a savepoint) and each handler's items, in priority order,
        stopping before a handler's group (from the `cut_from`-th on) when `cut()` says so.

        Fast (`careful=False`): a handler runs once for all its items with no savepoint — a
        savepoint is two more statements, and each statement costs a GIL round trip — and a
        handler that raises aborts the attempt (`_HandlerFailed`, with the group's index).
        Careful: each item alone in its own savepoint.
        """
        outcomes: dict[int, tuple[bool, Any]] = {}
        for job in plain:
            outcomes[id(job)] = self._run_alone(conn, job, lambda job: job.op(conn))
        for at, (handler, jobs) in enumerate(groups.items()):
            if at >= cut_from and cut is not None and cut():
                break
            if careful:
                for job in jobs:
                    single = self._run_alone(
                        conn, job, lambda job, handler=handler: handler(conn, [job.item])[0]
                    )
                    outcomes[id(job)] = _unwrap(single)
                continue
            try:
                results = handler(conn, [job.item for job in jobs])
            except Exception as exc:
                raise _HandlerFailed(at) from exc
            for job, result in zip(jobs, results, strict=True):
                outcomes[id(job)] = _unwrap((True, result))
        return outcomes

    def _run_alone(self, conn: sqlite3.Connection, job: Job, run) -> tuple[bool, Any]:
        """Run one op in its own savepoint: if it raises, only it is rolled back."""
        mark = len(self.outbox)
        conn.execute("SAVEPOINT op")
        try:
            result = run(job)
        except Exception as exc:
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            del self.outbox[mark:]
            if isinstance(exc, sqlite3.OperationalError):  # disk full, locked, read-only, I/O
                exc = _transaction_failed(exc)
            return False, exc
        conn.execute("RELEASE op")
        return True, result


class _HandlerFailed(Exception):
    """A batch handler raised: the fast attempt is abandoned and the batch run carefully."""

    def __init__(self, group: int) -> None:
        super().__init__(group)
        self.group = group  # the failing handler's index among the batch's groups


def _priority(job: _Job) -> int:
    return job.priority


def _unwrap(outcome: tuple[bool, Any]) -> tuple[bool, Any]:
    """A handler reports an item's own failure by returning the exception instance."""
    ok, value = outcome
    if ok and isinstance(value, BaseException):
        return False, value
    return ok, value


def _transaction_failed(exc: Exception) -> StoreUnavailable:
    error = StoreUnavailable(f"The write transaction failed and was rolled back: {exc}")
    error.__cause__ = exc
    return error


def settle_all(items: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    """Resolve each (future, ok, value): a result, or the exception; a cancelled one is left."""
    for future, ok, value in items:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
