"""The group-commit writer on its own, with plain SQL ops (it knows nothing about messages)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from store.errors import StoreClosed, StoreError
from store.writer import GroupCommitWriter

TIMEOUT = 10


def connect(path: Path) -> Callable[[], sqlite3.Connection]:
    def _connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER UNIQUE)")
        conn.execute(
            """CREATE TABLE IF NOT EXISTS child (
                   parent INTEGER REFERENCES t(x) DEFERRABLE INITIALLY DEFERRED)"""
        )
        return conn

    return _connect


def insert(x: int) -> Callable[[sqlite3.Connection], int]:
    def op(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t (x) VALUES (?)", (x,))
        return x

    return op


def rows(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT x FROM t ORDER BY rowid")]


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[GroupCommitWriter]:
    w = GroupCommitWriter(connect(tmp_path / "w.db"), max_batch=500)
    await w.start()
    yield w
    await w.stop()


def hold(writer: GroupCommitWriter) -> threading.Event:
    """Occupy the writer thread until the returned event is set, so later ops pile up."""
    entered, release = threading.Event(), threading.Event()

    def op(conn: sqlite3.Connection) -> None:
        entered.set()
        assert release.wait(TIMEOUT)

    writer.submit(op)
    assert entered.wait(TIMEOUT)
    return release


async def test_everything_queued_is_committed_in_one_transaction(
    writer: GroupCommitWriter, tmp_path: Path
) -> None:
    release = hold(writer)
    futures = [writer.submit(insert(i)) for i in range(200)]
    release.set()
    assert await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT) == list(range(200))
    stats = writer.stats
    assert stats.commits == 2  # the holding op's batch, then all 200 together
    assert stats.largest_batch == 200
    assert rows(tmp_path / "w.db") == list(range(200))


async def test_a_failing_op_fails_alone_and_the_rest_of_its_batch_commits(
    writer: GroupCommitWriter, tmp_path: Path
) -> None:
    release = hold(writer)
    first, duplicate, last = (
        writer.submit(insert(1)),
        writer.submit(insert(1)),
        writer.submit(insert(2)),
    )
    release.set()
    results = await asyncio.wait_for(
        asyncio.gather(first, duplicate, last, return_exceptions=True), TIMEOUT
    )
    assert results[0] == 1 and results[2] == 2
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert writer.stats.commits == 2
    assert writer.stats.failed_ops == 1
    assert rows(tmp_path / "w.db") == [1, 2]


async def test_a_failing_op_leaves_no_partial_writes(
    writer: GroupCommitWriter, tmp_path: Path
) -> None:
    def half_done(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (x) VALUES (10)")
        raise ValueError("changed my mind")

    with pytest.raises(ValueError, match="changed my mind"):
        await asyncio.wait_for(writer.submit(half_done), TIMEOUT)
    assert await writer.submit(insert(11)) == 11
    assert rows(tmp_path / "w.db") == [11]


async def test_ops_apply_in_call_order_across_batches(tmp_path: Path) -> None:
    writer = GroupCommitWriter(connect(tmp_path / "w.db"), max_batch=3)
    await writer.start()
    futures = [writer.submit(insert(i)) for i in range(50)]
    # awaiting in reverse order changes nothing: order is fixed when submit() is called
    for future in reversed(futures):
        await asyncio.wait_for(future, TIMEOUT)
    await writer.stop()
    assert rows(tmp_path / "w.db") == list(range(50))
    assert writer.stats.largest_batch <= 3


async def test_commit_failure_fails_every_op_of_the_batch_and_writing_goes_on(
    writer: GroupCommitWriter, tmp_path: Path
) -> None:
    def orphan_child(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO child (parent) VALUES (999)")  # checked only at COMMIT

    release = hold(writer)
    good, bad = writer.submit(insert(1)), writer.submit(orphan_child)
    release.set()
    results = await asyncio.wait_for(asyncio.gather(good, bad, return_exceptions=True), TIMEOUT)
    assert all(isinstance(r, StoreError) for r in results)
    assert "rolled back" in str(results[0])
    assert writer.stats.failed_commits == 1
    assert await writer.submit(insert(2)) == 2
    assert rows(tmp_path / "w.db") == [2]


async def test_stop_applies_everything_already_submitted(tmp_path: Path) -> None:
    writer = GroupCommitWriter(connect(tmp_path / "w.db"))
    await writer.start()
    futures = [writer.submit(insert(i)) for i in range(100)]
    await writer.stop()
    await asyncio.sleep(0)  # let the loop run the resolutions the thread scheduled
    assert all(f.done() and f.result() == i for i, f in enumerate(futures))
    assert rows(tmp_path / "w.db") == list(range(100))


async def test_submit_after_stop_is_refused(tmp_path: Path) -> None:
    writer = GroupCommitWriter(connect(tmp_path / "w.db"))
    await writer.start()
    await writer.stop()
    with pytest.raises(StoreClosed):
        writer.submit(insert(1))


async def test_cancelled_caller_does_not_withdraw_a_queued_op(
    writer: GroupCommitWriter, tmp_path: Path
) -> None:
    release = hold(writer)
    future = writer.submit(insert(7))
    future.cancel()
    release.set()
    assert await asyncio.wait_for(writer.submit(insert(8)), TIMEOUT) == 8
    assert rows(tmp_path / "w.db") == [7, 8]


async def test_connect_failure_is_raised_by_start(tmp_path: Path) -> None:
    def broken() -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    writer = GroupCommitWriter(broken)
    with pytest.raises(sqlite3.OperationalError, match="unable to open"):
        await writer.start()
    with pytest.raises(StoreClosed):
        writer.submit(insert(1))


# -- cutting a batch short (BatchApplier.apply_until) -------------------------------------------


class _Item:
    """A job of `BatchApplier`: an item of handler `op`, at `priority`."""

    def __init__(self, op, item, priority: int) -> None:
        self.op, self.item, self.priority = op, item, priority


def _rows(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT v FROM t ORDER BY rowid")]


def _applier_conn(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "cut.db", isolation_level=None)
    conn.execute("CREATE TABLE t (v TEXT NOT NULL)")
    return conn


def _inserting(tag: str, fail_on: str | None = None):
    def handler(conn: sqlite3.Connection, items: list[str]) -> list[str]:
        for item in items:
            if item == fail_on:
                raise RuntimeError(f"{tag} cannot take {item}")
            conn.execute("INSERT INTO t (v) VALUES (?)", (f"{tag}:{item}",))
        return items

    return handler


def test_a_cut_commits_the_groups_applied_and_leaves_the_others(tmp_path: Path) -> None:
    from store.writer import BatchApplier

    conn = _applier_conn(tmp_path)
    a, b, c = _inserting("a"), _inserting("b"), _inserting("c")
    batch = [_Item(c, "1", 2), _Item(a, "2", 0), _Item(b, "3", 1), _Item(a, "4", 0)]
    asked: list[int] = []

    def cut() -> bool:
        asked.append(len(_rows(conn)))
        return True

    applier = BatchApplier()
    applied, outcomes, left = applier.apply_until(conn, batch, cut)
    assert [job.item for job in applied] == ["2", "4"]  # the first group only, in batch order
    assert outcomes == [(True, "2"), (True, "4")]
    assert [job.item for job in left] == ["3", "1"]  # in the order they would have run
    assert asked == [2]  # asked once, after the first group, never before it
    assert _rows(conn) == ["a:2", "a:4"] and not conn.in_transaction  # committed
    applied, outcomes, left = applier.apply_until(conn, left, lambda: False)
    assert [job.item for job in applied] == ["3", "1"] and left == []
    assert _rows(conn) == ["a:2", "a:4", "b:3", "c:1"]
    assert applier.stats.commits == 2 and applier.stats.ops == 4


def test_a_handler_that_raises_is_retried_carefully_and_the_cut_still_applies_after_it(
    tmp_path: Path,
) -> None:
    """The careful attempt applies again the groups the fast one reached (without asking the
    cut again), then goes on asking it: a job after the cut is neither applied nor failed, it is
    left for the next transaction; without a cut, everything is applied."""
    from store.writer import BatchApplier

    a, b, c = _inserting("a"), _inserting("b", fail_on="bad"), _inserting("c")

    def batch() -> list[_Item]:
        return [_Item(a, "1", 0), _Item(b, "bad", 1), _Item(b, "2", 1), _Item(c, "3", 2)]

    conn = _applier_conn(tmp_path)
    answers = iter([False, True])
    applied, outcomes, left = BatchApplier().apply_until(conn, batch(), lambda: next(answers))
    assert [job.item for job in applied] == ["1", "bad", "2"]
    assert outcomes[0] == (True, "1") and outcomes[2] == (True, "2")
    assert not outcomes[1][0] and "cannot take bad" in str(outcomes[1][1])
    assert [job.item for job in left] == ["3"]
    assert _rows(conn) == ["a:1", "b:2"]
    conn.execute("DELETE FROM t")
    outcomes = BatchApplier().apply(conn, batch())
    assert [ok for ok, _ in outcomes] == [True, False, True, True]
    assert _rows(conn) == ["a:1", "b:2", "c:3"]
