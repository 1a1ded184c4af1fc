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
