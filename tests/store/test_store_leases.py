"""Lease recovery: what a dead daemon left in `sending` goes back to the queue at start."""

from __future__ import annotations

from pathlib import Path

from store import Status
from store.sqlite import SqliteStore
from tests.store.store_kit import ACCOUNT, CARRIER, HOOK, OWNER, T0, new_message, seconds, sid


async def test_messages_leased_by_another_owner_are_recovered(store: SqliteStore) -> None:
    await store.accept(new_message(1), T0)
    await store.claim_due(CARRIER, limit=1, owner="dead-daemon", lease_seconds=300, now=T0)
    assert await store.recover_leases(T0 + seconds(1)) == 1
    msg = await store.get_message(ACCOUNT, sid(1))
    assert (msg.status, msg.attempts) == (Status.QUEUED, 1)
    last = (await store.message_events(sid(1)))[-1]
    assert (last.from_status, last.to_status) == (Status.SENDING, Status.QUEUED)
    assert last.reason.startswith("lease_expired")
    assert "dead-daemon" in last.reason and "duplicate" in last.reason


async def test_own_live_leases_are_left_alone_and_expired_ones_recovered(
    store: SqliteStore,
) -> None:
    await store.accept(new_message(1), T0)
    await store.claim_due(CARRIER, limit=1, owner=OWNER, lease_seconds=30, now=T0)
    assert await store.recover_leases(T0 + seconds(29)) == 0
    assert await store.recover_leases(T0 + seconds(30)) == 1
    assert "lease ran out" in (await store.message_events(sid(1)))[-1].reason
    [again] = await store.claim_due(CARRIER, limit=1, owner=OWNER, lease_seconds=30, now=T0)
    assert again.attempts == 2


async def test_recovery_is_not_reported_to_the_status_callback(store: SqliteStore) -> None:
    await store.accept(new_message(1, callback=HOOK), T0)
    await store.claim_due(CARRIER, limit=1, owner="dead", lease_seconds=30, now=T0)
    await store.recover_leases(T0)
    assert [c.status for c in await store.due_callbacks(T0, 10)] == [Status.SENDING]


async def test_a_restarted_daemon_recovers_what_the_previous_one_left(db_path: Path) -> None:
    async with SqliteStore(db_path) as first:
        await first.create_account(ACCOUNT, "Main", "token", T0)
        for n in range(3):
            await first.accept(new_message(n), T0)
        await first.claim_due(CARRIER, limit=2, lease_seconds=3600, now=T0)
    async with SqliteStore(db_path) as second:
        assert second.owner != first.owner
        assert await second.recover_leases(T0 + seconds(1)) == 2
        assert await second.pending_work(CARRIER) == 3
        assert (await second.count_by_status())["sending"] == 0


async def test_recovery_with_an_explicit_owner(store: SqliteStore) -> None:
    await store.accept(new_message(1), T0)
    await store.claim_due(CARRIER, limit=1, owner="engine-7", lease_seconds=30, now=T0)
    assert await store.recover_leases(T0, owner="engine-7") == 0
    assert await store.recover_leases(T0) == 1  # the store's own owner id differs
