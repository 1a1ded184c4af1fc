"""Scheduled messages (SendAt) and cancel, in the store: a scheduled message is queued at its
time and not before; a cancel wins over a claim it meets, and never touches a message on a
carrier."""

from __future__ import annotations

import asyncio

import pytest
from msgspec.structs import replace

from store import NotCancelable, UnknownMessage
from store.commands import Accept, Cancel, Claim, ReleaseScheduled
from store.sqlite import SqliteStore
from store.states import Status
from tests.store.store_kit import (
    ACCOUNT,
    CARRIER,
    HOOK,
    OTHER_ACCOUNT,
    OWNER,
    T0,
    claim,
    claim_callbacks,
    claimed,
    hold_writer,
    new_message,
    seconds,
    sid,
)


async def schedule(store: SqliteStore, n: int, at: float, **options) -> None:
    message = replace(new_message(n, **options), send_at=T0 + seconds(at))
    await store.write(Accept(message, T0))
    assert message.stored(T0).status is Status.SCHEDULED
    assert (await store.find_message(message.sid)).status is Status.SCHEDULED


async def test_a_scheduled_message_is_queued_at_its_time_and_not_before(
    store: SqliteStore,
) -> None:
    await schedule(store, 1, 900)
    await schedule(store, 2, 1800)
    assert await store.next_scheduled_at() == T0 + seconds(900)
    assert await claim(store, T0 + seconds(899)) == []
    assert await store.write(ReleaseScheduled(T0 + seconds(899))) == []
    assert await store.write(ReleaseScheduled(T0 + seconds(900))) == [sid(1)]
    assert await store.next_scheduled_at() == T0 + seconds(1800)
    [message] = await claim(store, T0 + seconds(900))
    assert message.sid == sid(1)
    events = await store.message_events(sid(1))
    assert [(e.to_status, e.reason) for e in events] == [
        (Status.SCHEDULED, "scheduled"),
        (Status.QUEUED, "send_time_came"),
        (Status.SENDING, "claimed"),
    ]


async def test_cancel_while_scheduled_or_queued_and_never_after(store: SqliteStore) -> None:
    await schedule(store, 1, 900, callback=HOOK)
    await claimed(store, 3)
    await store.write(Accept(new_message(2), T0))
    canceled = await store.write(Cancel(ACCOUNT, sid(1), T0 + seconds(1)))
    assert canceled.status is Status.CANCELED
    assert (await store.write(Cancel(ACCOUNT, sid(2), T0 + seconds(1)))).status is Status.CANCELED
    with pytest.raises(NotCancelable, match="is sending"):
        await store.write(Cancel(ACCOUNT, sid(3), T0 + seconds(1)))
    with pytest.raises(NotCancelable, match="is canceled"):
        await store.write(Cancel(ACCOUNT, sid(1), T0 + seconds(2)))
    with pytest.raises(UnknownMessage):
        await store.write(Cancel(OTHER_ACCOUNT, sid(2), T0 + seconds(2)))
    # the customer hears of the cancel (a callback), and nothing is released or claimed later
    [callback] = await claim_callbacks(store, T0 + seconds(2), 10)
    assert (callback.message_sid, callback.status) == (sid(1), Status.CANCELED)
    assert await store.write(ReleaseScheduled(T0 + seconds(3600))) == []
    assert await claim(store, T0 + seconds(3600)) == []


async def test_a_cancel_meeting_a_claim_in_one_commit_wins(store: SqliteStore) -> None:
    for n in range(20):
        await store.write(Accept(new_message(n), T0))
    release = hold_writer(store)
    claim_future = store.write(Claim(CARRIER, 20, OWNER, 30, T0))  # called first
    cancels = [store.write(Cancel(ACCOUNT, sid(n), T0)) for n in range(0, 20, 2)]
    release.set()
    results = await asyncio.gather(claim_future, *cancels)
    claimed_sids = {m.sid for m in results[0]}
    assert claimed_sids == {sid(n) for n in range(1, 20, 2)}
    assert all(m.status is Status.CANCELED for m in results[1:])
