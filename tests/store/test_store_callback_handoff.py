"""`hand_callbacks_to`: new status callbacks are written leased to this process and handed to the
sender right after their commit — never before it, and never when it is rolled back."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from store import Callback, Status, StoreError
from store.commands import CallbackDelivered, RecordSubmitAccepted
from store.sqlite import SqliteStore
from tests.store.store_kit import (
    ACCOUNT,
    CARRIER,
    HOOK,
    OWNER,
    T0,
    TIMEOUT,
    claim_callbacks,
    claimed,
    count,
    hold_writer,
    new_message,
    raw,
    receipt,
    seconds,
    sent,
    sid,
    thread_writer_only,
    trace,
    us,
)

LEASE = 30


class Listener:
    """Records what it is handed, and what the file held for it at that moment."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.handed: list[list[Callback]] = []
        self.in_file: list[dict[int, tuple[str, str | None, int]]] = []
        self.threads: set[int] = set()

    def __call__(self, callbacks: list[Callback]) -> None:
        self.threads.add(threading.get_ident())
        self.handed.append(list(callbacks))
        with raw(self.db_path) as conn:
            self.in_file.append(
                {
                    r["id"]: (r["status"], r["lease_owner"], r["next_attempt_at"])
                    for r in conn.execute(
                        "SELECT id, status, lease_owner, next_attempt_at FROM callbacks "
                        "WHERE id IN (SELECT value FROM json_each(?))",
                        (str([c.id for c in callbacks]),),
                    )
                }
            )

    @property
    def statuses(self) -> list[list[tuple[str, Status]]]:
        return [[(c.message_sid, c.status) for c in batch] for batch in self.handed]


@pytest.fixture
def listener(store: SqliteStore, db_path: Path) -> Listener:
    heard = Listener(db_path)
    store.hand_callbacks_to(heard, lease_seconds=LEASE)
    return heard


def poison(conn: sqlite3.Connection) -> None:
    """A write whose transaction cannot commit: its foreign key is checked only at COMMIT."""
    conn.execute("PRAGMA defer_foreign_keys = ON")
    conn.execute("INSERT INTO message_events (message_sid, at, reason) VALUES ('SMnope', 0, 'x')")


async def test_new_callbacks_are_handed_after_their_commit_leased_to_this_store(
    store: SqliteStore, listener: Listener
) -> None:
    loop_thread = threading.get_ident()
    await sent(store, 1, callback=HOOK, now=T0)
    assert listener.statuses == [[(sid(1), Status.SENDING)], [(sid(1), Status.SENT)]]
    [[sending], [sent_]] = listener.handed
    assert (sending.account_sid, sending.url, sending.attempts, sending.error_code) == (
        ACCOUNT,
        HOOK,
        0,
        None,
    )
    assert (sending.from_addr, sending.to_addr) == (
        new_message(1).from_addr,
        new_message(1).to_addr,
    )
    # when the listener ran, each callback was already committed, leased to the store's owner
    lease_end = us(T0 + seconds(LEASE))
    assert listener.in_file == [
        {sending.id: ("sending", OWNER, lease_end)},
        {sent_.id: ("sent", OWNER, lease_end)},
    ]
    assert listener.threads == {loop_thread}  # on the event loop, not the writer thread


async def test_handed_callbacks_are_not_claimed_again_until_their_lease_runs_out(
    store: SqliteStore, listener: Listener
) -> None:
    await sent(store, 1, callback=HOOK)
    assert await claim_callbacks(store, T0, owner="node-b") == []
    assert await claim_callbacks(store, T0 + seconds(LEASE - 1), owner="node-b") == []
    # the sender never acknowledged them: due again, the oldest first
    [again] = await claim_callbacks(store, T0 + seconds(LEASE), owner="node-b")
    assert again.id == listener.handed[0][0].id


async def test_acknowledged_handed_callbacks_are_done(
    store: SqliteStore, listener: Listener
) -> None:
    await sent(store, 1, callback=HOOK)
    await receipt(store, "1-0")
    for [callback] in listener.handed:
        await store.write(CallbackDelivered(callback.id, T0))
    assert [s for [(_, s)] in listener.statuses] == [
        Status.SENDING,
        Status.SENT,
        Status.DELIVERED,
    ]
    assert await claim_callbacks(store, T0 + seconds(3600)) == []


async def test_no_callback_url_hands_nothing(store: SqliteStore, listener: Listener) -> None:
    await sent(store, 1)
    await receipt(store, "1-0")
    assert listener.handed == []


async def test_one_commit_hands_its_callbacks_together_in_id_order(
    store: SqliteStore, listener: Listener
) -> None:
    for n in range(3):
        await claimed(store, n, callback=HOOK)
    listener.handed.clear()
    release = hold_writer(store)
    futures = [
        store.write(RecordSubmitAccepted(sid(n), 0, CARRIER, f"{n}-0", T0)) for n in (2, 0, 1)
    ]
    release.set()
    await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT)
    [batch] = listener.handed
    assert [c.id for c in batch] == sorted(c.id for c in batch)
    assert sorted((c.message_sid, c.status) for c in batch) == [
        (sid(n), Status.SENT) for n in range(3)
    ]


async def test_callbacks_of_a_rolled_back_transaction_are_not_handed(
    store: SqliteStore, listener: Listener, db_path: Path
) -> None:
    await claimed(store, 1, callback=HOOK)
    thread_writer_only(store)
    listener.handed.clear()
    release = hold_writer(store)
    bad = store._writer.submit_op(poison)
    accepted = store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0))
    release.set()
    for future in (bad, accepted):
        with pytest.raises(StoreError, match="rolled back"):
            await asyncio.wait_for(future, TIMEOUT)
    await asyncio.sleep(0.05)  # anything scheduled on the loop would have run by now
    assert listener.handed == []
    with raw(db_path) as conn:
        statuses = [r[0] for r in conn.execute("SELECT status FROM callbacks ORDER BY id")]
    assert statuses == ["sending"]
    assert (await store.get_message(ACCOUNT, sid(1))).status is Status.SENDING
    # writing it again, it commits and is handed once
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0))
    assert listener.statuses == [[(sid(1), Status.SENT)]]


async def test_callbacks_of_a_batch_attempt_rolled_back_are_handed_once(
    store: SqliteStore, listener: Listener, db_path: Path
) -> None:
    """Two submit responses naming the same new carrier id in one batch break the batch's single
    INSERT of parts; the transaction is rolled back and run again one command at a time. What the
    failed attempt wrote must not be handed."""
    for n in (1, 2):
        await claimed(store, n, callback=HOOK)
    listener.handed.clear()
    statements = trace(store)
    release = hold_writer(store)
    futures = [store.write(RecordSubmitAccepted(sid(n), 0, CARRIER, "same-id", T0)) for n in (1, 2)]
    release.set()
    results = await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT)
    # the batch attempt is rolled back whole, then each command runs in a savepoint of its own
    assert statements.count("ROLLBACK") == 1
    assert count(statements, "SAVEPOINT op") >= 2
    assert results == [Status.SENT, Status.SENT]
    handed = [c for batch in listener.handed for c in batch]
    assert sorted((c.message_sid, c.status) for c in handed) == [
        (sid(1), Status.SENT),
        (sid(2), Status.SENT),
    ]
    with raw(db_path) as conn:
        stored = {r[0] for r in conn.execute("SELECT id FROM callbacks WHERE status = 'sent'")}
    assert {c.id for c in handed} == stored
