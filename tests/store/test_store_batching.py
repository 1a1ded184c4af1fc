"""Commands of one kind are applied as one batch: one handler call, one statement per table, one
commit; a command at fault fails alone and the rest of its batch commits."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from store import AlreadyExists, ReceiptOutcome, Status, UnknownAccount
from store.commands import (
    Accept,
    Claim,
    RecordReceipt,
    RecordSubmitAccepted,
    RecordSubmitFailed,
    RecoverLeases,
)
from store.sqlite import SqliteStore
from tests.store.store_kit import (
    ACCOUNT,
    CARRIER,
    OWNER,
    T0,
    TIMEOUT,
    claimed,
    count,
    hold_writer,
    holding_commits,
    new_message,
    receipt,
    seconds,
    sent,
    sid,
    thread_writer_only,
    trace,
)


async def test_200_concurrent_accepts_commit_in_one_transaction(store: SqliteStore) -> None:
    release = hold_writer(store)
    before = store.stats
    futures = [store.write(Accept(new_message(n), T0)) for n in range(200)]
    release.set()
    assert await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT) == [None] * 200
    assert await store.pending_work(CARRIER) == 200
    after = store.stats
    # The holding op's batch (a thread writer's; a stopped process has none), then all 200.
    assert after.commits - before.commits == holding_commits(store) + 1
    assert after.largest_batch == 200
    assert await store.pending_work(CARRIER) == 200


async def test_a_batch_of_accepts_is_one_statement_per_table(store: SqliteStore) -> None:
    statements = trace(store)
    await store.write(Accept(new_message(10_000), T0))  # the trace is on once this committed
    statements.clear()
    release = hold_writer(store)
    commits = store.stats.commits
    futures = [store.write(Accept(new_message(n), T0)) for n in range(200)]
    release.set()
    await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT)
    assert count(statements, "INSERT INTO messages") == 1
    assert count(statements, "INSERT INTO message_events") == 1
    assert store.stats.commits - commits == 2  # the holding op's, then the 200 accepts'


async def test_a_batch_of_receipts_settles_every_message_in_one_handler_call(
    store: SqliteStore,
) -> None:
    for n in range(50):
        await sent(store, n)
    statements = trace(store)
    release = hold_writer(store)
    statements.clear()
    commits = store.stats.commits
    futures = [receipt(store, f"{n}-0", now=T0 + seconds(1)) for n in range(50)]
    release.set()
    outcomes = await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT)
    assert outcomes == [ReceiptOutcome(sid(n), Status.DELIVERED, matched=True) for n in range(50)]
    assert count(statements, "UPDATE messages") == 1
    assert count(statements, "UPDATE message_parts") == 1
    assert count(statements, "INSERT INTO message_events") == 1
    assert store.stats.commits - commits == 2  # the holding op's, then the 50 receipts'
    assert (await store.count_by_status())["delivered"] == 50


async def test_a_command_that_fails_alone_leaves_its_batch_committed(store: SqliteStore) -> None:
    await store.write(Accept(new_message(0), T0))
    release = hold_writer(store)
    before = store.stats
    futures = [
        store.write(Accept(new_message(1), T0)),
        store.write(Accept(new_message(0), T0)),  # already stored
        store.write(Accept(new_message(2, account="AC" + "9" * 32), T0)),  # no such account
        store.write(Accept(new_message(3), T0)),
        store.write(Accept(new_message(3), T0)),  # twice in the same batch
    ]
    release.set()
    results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), TIMEOUT)
    assert [type(r) for r in results] == [
        type(results[0]),
        AlreadyExists,
        UnknownAccount,
        type(results[0]),
        AlreadyExists,
    ]
    assert results[0] is results[3] is None  # stored: the caller has `NewMessage.stored`
    after = store.stats
    assert after.commits - before.commits == holding_commits(store) + 1
    assert after.failed_ops - before.failed_ops == 3
    assert await store.pending_work(CARRIER) == 3  # 0, 1 and 3


async def test_a_command_that_breaks_its_handler_fails_alone(store: SqliteStore) -> None:
    release = hold_writer(store)
    futures = [store.write(Accept(new_message(n), T0)) for n in range(5)]
    naive = store.write(Accept(new_message(99), T0.replace(tzinfo=None)))  # raises mid-handler
    futures += [store.write(Accept(new_message(n), T0)) for n in range(5, 10)]
    release.set()
    with pytest.raises(ValueError, match="timezone-aware"):
        await asyncio.wait_for(naive, TIMEOUT)
    assert await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT) == [None] * 10
    assert await store.pending_work(CARRIER) == 10
    # the rerun one at a time wrote each event once
    assert [e.reason for e in await store.message_events(sid(3))] == ["accepted"]


async def test_kinds_in_one_commit_are_applied_in_causal_order(store: SqliteStore) -> None:
    """A receipt called before the submit response naming its id, in the same batch, still
    finds its part: submit outcomes are applied before receipts within one commit."""
    await claimed(store, 1)
    release = hold_writer(store)
    early = receipt(store, "1-0", now=T0 + seconds(1))
    accepted = store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0 + seconds(1)))
    release.set()
    outcome = await asyncio.wait_for(early, TIMEOUT)
    assert outcome == ReceiptOutcome(sid(1), Status.DELIVERED, matched=True)
    assert (await accepted) is Status.SENT  # as of its own handler
    reasons = [e.reason for e in await store.message_events(sid(1))][-2:]
    assert reasons == ["submit_accepted", "receipt"]


async def test_one_message_touched_by_several_commands_of_one_batch(store: SqliteStore) -> None:
    release = hold_writer(store)
    futures = [
        store.write(Accept(new_message(1, segments=2), T0)),
        store.write(Claim(CARRIER, 10, OWNER, 30, T0)),
        store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0)),
        store.write(RecordSubmitAccepted(sid(1), 1, CARRIER, "1-1", T0)),
        receipt(store, "1-1", delivered=False, error_code=30003),
        receipt(store, "1-0"),
    ]
    release.set()
    results = await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT)
    assert [m.sid for m in results[1]] == [sid(1)]
    # part 2 failed: undelivered at once; part 1's receipt is history
    assert [r.new_status for r in results[4:]] == [Status.UNDELIVERED, None]
    msg = await store.get_message(ACCOUNT, sid(1))
    assert (msg.status, msg.attempts, msg.error_code) == (Status.UNDELIVERED, 1, 30003)
    assert [e.reason for e in await store.message_events(sid(1))] == [
        "accepted",
        "claimed",
        "part_1_accepted",
        "submit_accepted",
        "receipt",
        "late_receipt",
    ]


async def test_two_claims_in_one_batch_never_take_the_same_message(store: SqliteStore) -> None:
    for n in range(6):
        await store.write(Accept(new_message(n), T0))
    release = hold_writer(store)
    first = store.write(Claim(CARRIER, 4, "node-a", 30, T0))
    second = store.write(Claim(CARRIER, 4, "node-b", 30, T0))
    release.set()
    a, b = await asyncio.wait_for(asyncio.gather(first, second), TIMEOUT)
    assert [m.sid for m in a] == [sid(n) for n in range(4)]
    assert [m.sid for m in b] == [sid(4), sid(5)]


async def test_receipts_matching_and_not_matching_in_one_batch(store: SqliteStore) -> None:
    await sent(store, 1)
    release = hold_writer(store)
    futures = [
        receipt(store, "unknown-1"),
        receipt(store, "1-0"),
        store.write(RecordReceipt(CARRIER, "1-0", "DELIVRD", "000", None, None, True, True, T0)),
    ]
    release.set()
    outcomes = await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT)
    assert outcomes == [
        ReceiptOutcome(None, None, matched=False),
        ReceiptOutcome(sid(1), Status.DELIVERED, matched=True),
        ReceiptOutcome(sid(1), None, matched=True),
    ]
    assert [e.reason for e in await store.message_events(sid(1))][-2:] == [
        "receipt",
        "late_receipt",
    ]


async def test_plain_ops_still_run_on_the_writer(store: SqliteStore) -> None:
    thread_writer_only(store)

    def count_messages(conn: sqlite3.Connection) -> int:
        return conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    await store.write(Accept(new_message(1), T0))
    assert await store._writer.submit_op(count_messages) == 1


async def test_a_submit_outcome_called_before_the_lease_sweep_wins_in_one_batch(
    store: SqliteStore,
) -> None:
    """Called one after the other, the response is recorded and the sweep finds nothing; the
    same two writes sharing a commit must not requeue (and so resend) the answered message, nor
    refuse the submit failure with IllegalTransition."""
    for n in (1, 2):
        await store.write(Accept(new_message(n), T0))
    await store.write(Claim(CARRIER, 2, OWNER, 30, T0))
    expired = T0 + seconds(31)
    release = hold_writer(store)
    accepted = store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", expired))
    failed = store.write(
        RecordSubmitFailed(sid(2), CARRIER, 0x45, 30008, "no", expired + seconds(5), True, expired)
    )
    swept = store.write(RecoverLeases(OWNER, expired, others_are_dead=False))
    release.set()
    results = await asyncio.wait_for(
        asyncio.gather(accepted, failed, swept, return_exceptions=True), TIMEOUT
    )
    assert [getattr(r, "status", r) for r in results] == [Status.SENT, Status.QUEUED, 0]
