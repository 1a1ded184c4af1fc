"""The store's writes go through group commit: concurrency costs transactions, not fsyncs."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from store.commands import Accept, Claim, CreateAccount
from store.sqlite import SqliteStore
from tests.store.store_kit import ACCOUNT, CARRIER, T0, new_message, sid, thread_writer_only


async def test_a_thousand_concurrent_accepts_share_few_transactions(store: SqliteStore) -> None:
    before = store.stats.commits
    await asyncio.gather(*(store.write(Accept(new_message(n), T0)) for n in range(1000)))
    commits = store.stats.commits - before
    assert commits <= 50, f"1000 accepts took {commits} commits"
    assert store.stats.largest_batch >= 20
    assert await store.pending_work(CARRIER) == 1000


async def test_one_bad_accept_does_not_fail_its_batch(store: SqliteStore) -> None:
    await store.write(Accept(new_message(0), T0))
    results = await asyncio.gather(
        *(store.write(Accept(new_message(n % 5), T0)) for n in range(1, 10)), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, Exception)]
    assert len(failures) == 5  # sid 0 (already stored) and the second copies of 1..4
    assert await store.pending_work(CARRIER) == 5


async def test_writes_are_applied_in_call_order_not_await_order(store: SqliteStore) -> None:
    accepted = store.write(Accept(new_message(1), T0))
    claim = store.write(Claim(CARRIER, 10, store.owner, 30, T0))
    assert [m.sid for m in await claim] == [sid(1)]
    assert (await accepted) is None  # durable, and claimed in the same commit, after it


async def test_close_commits_writes_that_were_called_but_not_awaited(db_path: Path) -> None:
    store = await SqliteStore(db_path).open()
    await store.write(CreateAccount(ACCOUNT, "Main", "token", T0))
    pending = [store.write(Accept(new_message(n), T0)) for n in range(50)]
    await store.close()
    await asyncio.gather(*pending)
    async with SqliteStore(db_path) as reopened:
        assert await reopened.pending_work(CARRIER) == 50


async def test_sqlite_never_runs_on_the_event_loop_thread(store: SqliteStore) -> None:
    thread_writer_only(store)
    loop_thread = threading.get_ident()
    seen: set[int] = set()
    store._writer.submit_op(lambda conn: seen.add(threading.get_ident()))
    await store.write(Accept(new_message(1), T0))
    await store._readers.run(lambda conn: seen.add(threading.get_ident()))
    assert seen and loop_thread not in seen
