"""Lease recovery: what a dead daemon left in `sending` goes back to the queue.

The old `recover_leases(now, owner=)` recovered every lease not held by `owner`; that is now
`RecoverLeases(owner, now, others_are_dead=True)` (one daemon per SQLite file, at start). The
periodic sweep, `others_are_dead=False`, recovers expired leases only.
"""

from __future__ import annotations

from pathlib import Path

from store import Status
from store.commands import Accept, Claim, CreateAccount, RecoverLeases
from store.sqlite import SqliteStore
from tests.store.store_kit import (
    ACCOUNT,
    CARRIER,
    HOOK,
    OWNER,
    T0,
    claim_callbacks,
    new_message,
    raw,
    seconds,
    sent,
    sid,
    us,
)


def recover(store: SqliteStore, now, *, owner: str = OWNER, others_are_dead: bool = True):
    return store.write(RecoverLeases(owner, now, others_are_dead))


async def test_messages_leased_by_another_owner_are_recovered(store: SqliteStore) -> None:
    await store.write(Accept(new_message(1), T0))
    await store.write(Claim(CARRIER, 1, "dead-daemon", 300, T0))
    assert await recover(store, T0 + seconds(1)) == 1
    msg = await store.get_message(ACCOUNT, sid(1))
    assert (msg.status, msg.attempts) == (Status.QUEUED, 1)
    last = (await store.message_events(sid(1)))[-1]
    assert (last.from_status, last.to_status) == (Status.SENDING, Status.QUEUED)
    assert last.reason.startswith("lease_expired")
    assert "dead-daemon" in last.reason and "duplicate" in last.reason


async def test_own_live_leases_are_left_alone_and_expired_ones_recovered(
    store: SqliteStore,
) -> None:
    await store.write(Accept(new_message(1), T0))
    await store.write(Claim(CARRIER, 1, OWNER, 30, T0))
    assert await recover(store, T0 + seconds(29)) == 0
    assert await recover(store, T0 + seconds(30)) == 1
    assert "lease ran out" in (await store.message_events(sid(1)))[-1].reason
    [again] = await store.write(Claim(CARRIER, 1, OWNER, 30, T0))
    assert again.attempts == 2


async def test_recovery_is_not_reported_to_the_status_callback(store: SqliteStore) -> None:
    await store.write(Accept(new_message(1, callback=HOOK), T0))
    await store.write(Claim(CARRIER, 1, "dead", 30, T0))
    await recover(store, T0)
    assert [c.status for c in await claim_callbacks(store, T0, 10)] == [Status.SENDING]


async def test_a_restarted_daemon_recovers_what_the_previous_one_left(db_path: Path) -> None:
    async with SqliteStore(db_path) as first:
        await first.write(CreateAccount(ACCOUNT, "Main", "token", T0))
        for n in range(3):
            await first.write(Accept(new_message(n), T0))
        await first.write(Claim(CARRIER, 2, first.owner, 3600, T0))
    async with SqliteStore(db_path) as second:
        assert second.owner != first.owner
        assert await recover(second, T0 + seconds(1), owner=second.owner) == 2
        assert await second.pending_work(CARRIER) == 3
        assert (await second.count_by_status())["sending"] == 0


async def test_recovery_with_an_explicit_owner(store: SqliteStore) -> None:
    await store.write(Accept(new_message(1), T0))
    await store.write(Claim(CARRIER, 1, "engine-7", 30, T0))
    assert await recover(store, T0, owner="engine-7") == 0
    assert await recover(store, T0) == 1  # the store's own owner id differs


# -- the periodic sweep: others are alive, only expired leases are recovered -----------------


async def test_the_sweep_recovers_only_expired_leases_whoever_holds_them(
    store: SqliteStore,
) -> None:
    for n in range(4):
        await store.write(Accept(new_message(n), T0))
    await store.write(Claim(CARRIER, 1, "node-b", 60, T0))  # 0: expires at T0 + 60
    await store.write(Claim(CARRIER, 1, OWNER, 30, T0))  # 1: expires at T0 + 30
    await store.write(Claim(CARRIER, 1, "node-b", 300, T0))  # 2: live
    await store.write(Claim(CARRIER, 1, OWNER, 300, T0))  # 3: live
    assert await recover(store, T0 + seconds(29), others_are_dead=False) == 0
    assert await recover(store, T0 + seconds(60), others_are_dead=False) == 2
    statuses = [(await store.get_message(ACCOUNT, sid(n))).status for n in range(4)]
    assert statuses == [Status.QUEUED, Status.QUEUED, Status.SENDING, Status.SENDING]
    reasons = [(await store.message_events(sid(n)))[-1].reason for n in (0, 1)]
    assert all(r.startswith("lease_expired") for r in reasons)
    assert "lease ran out" in reasons[1]
    # run again: nothing else has expired
    assert await recover(store, T0 + seconds(61), others_are_dead=False) == 0


async def test_the_sweep_releases_expired_callback_leases_only(
    store: SqliteStore, db_path: Path
) -> None:
    await sent(store, 1, callback=HOOK)
    await sent(store, 2, callback=HOOK)
    [mine] = await claim_callbacks(store, T0, 1, owner=OWNER, lease_seconds=30)
    [theirs] = await claim_callbacks(store, T0, 1, owner="node-b", lease_seconds=300)
    assert (mine.message_sid, theirs.message_sid) == (sid(1), sid(2))
    await recover(store, T0 + seconds(30), others_are_dead=False)
    with raw(db_path) as conn:
        leases = {
            r["id"]: (r["lease_owner"], r["next_attempt_at"])
            for r in conn.execute("SELECT id, lease_owner, next_attempt_at FROM callbacks")
        }
    assert leases[mine.id] == (None, us(T0 + seconds(30)))
    assert leases[theirs.id] == ("node-b", us(T0 + seconds(300)))
    # the released one is claimable by anyone now; the live lease is still not due
    [again] = await claim_callbacks(store, T0 + seconds(30), 10, owner="node-c")
    assert again.id == mine.id
    # at start (others are dead) the live leases of node-b and node-c are released too
    await recover(store, T0 + seconds(31), others_are_dead=True)
    freed = await claim_callbacks(store, T0 + seconds(31), 10)
    assert sorted(c.id for c in freed) == sorted([mine.id, theirs.id])
