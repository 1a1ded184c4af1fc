"""The status-callback outbox: written with each reported transition, delivered in order."""

from __future__ import annotations

import pytest

from store import CallbackNotPending, Status, UnknownCallback
from store.sqlite import SqliteStore
from tests.store.store_kit import (
    ACCOUNT,
    CARRIER,
    HOOK,
    T0,
    claimed,
    new_message,
    receipt,
    seconds,
    sent,
    sid,
)


async def drain(store: SqliteStore, now=T0) -> list[tuple[str, Status]]:
    """Acknowledge due callbacks until none is left; return what was delivered, in order."""
    delivered = []
    while batch := await store.due_callbacks(now, 100):
        for callback in batch:
            await store.callback_delivered(callback.id, now)
            delivered.append((callback.message_sid, callback.status))
    return delivered


async def test_no_status_callback_url_means_no_outbox_rows(store: SqliteStore) -> None:
    await sent(store, 1)
    await receipt(store, "1-0")
    assert await store.due_callbacks(T0, 10) == []


async def test_each_reported_transition_queues_a_callback_with_the_webhook_fields(
    store: SqliteStore,
) -> None:
    await sent(store, 1, callback=HOOK)
    await receipt(store, "1-0", done_date="2405011207")
    [first] = await store.due_callbacks(T0, 10)
    assert (first.message_sid, first.account_sid, first.url, first.status) == (
        sid(1),
        ACCOUNT,
        HOOK,
        Status.SENDING,
    )
    assert (first.from_addr, first.to_addr) == (new_message(1).from_addr, new_message(1).to_addr)
    assert (first.attempts, first.error_code, first.raw_done_date) == (0, None, None)
    await store.callback_delivered(first.id, T0)
    rest = await drain(store)
    assert rest == [(sid(1), Status.SENT), (sid(1), Status.DELIVERED)]


async def test_only_the_oldest_pending_callback_of_a_message_is_due(store: SqliteStore) -> None:
    await sent(store, 1, callback=HOOK)
    await sent(store, 2, callback=HOOK)
    due = await store.due_callbacks(T0, 10)
    assert [(c.message_sid, c.status) for c in due] == [
        (sid(1), Status.SENDING),
        (sid(2), Status.SENDING),
    ]


async def test_callbacks_of_one_message_are_delivered_in_transition_order(
    store: SqliteStore,
) -> None:
    for n in range(3):
        await sent(store, n, callback=HOOK)
    for n in range(3):
        await receipt(store, f"{n}-0", delivered=n != 1, error_code=30003 if n == 1 else None)
    delivered = await drain(store)
    for n in range(3):
        mine = [status for message_sid, status in delivered if message_sid == sid(n)]
        outcome = Status.UNDELIVERED if n == 1 else Status.DELIVERED
        assert mine == [Status.SENDING, Status.SENT, outcome]


async def test_undelivered_callback_has_error_code_and_raw_done_date(store: SqliteStore) -> None:
    await sent(store, 1, callback=HOOK)
    await drain(store)
    await receipt(store, "1-0", delivered=False, error_code=30003, done_date="2405011209")
    [callback] = await store.due_callbacks(T0, 10)
    assert (callback.status, callback.error_code, callback.raw_done_date) == (
        Status.UNDELIVERED,
        30003,
        "2405011209",
    )


async def test_failed_message_reports_its_error_code(store: SqliteStore) -> None:
    await claimed(store, 1, callback=HOOK)
    await store.record_submit_failed(
        sid(1),
        carrier=CARRIER,
        smpp_status=0x0B,
        error_code=30005,
        error_message="bad dest",
        permanent=True,
        retry_at=None,
        now=T0,
    )
    assert [s for _, s in await drain(store)] == [Status.SENDING, Status.FAILED]


async def test_retries_are_not_reported_and_sending_is_not_reported_twice(
    store: SqliteStore,
) -> None:
    await claimed(store, 1, callback=HOOK)
    await store.record_submit_failed(
        sid(1),
        carrier=CARRIER,
        smpp_status=0x58,
        error_code=None,
        error_message="throttled",
        permanent=False,
        retry_at=T0,
        now=T0,
    )
    await store.claim_due(CARRIER, limit=1, lease_seconds=30, now=T0)
    await store.requeue(sid(1), reason="bind lost", now=T0)
    await store.claim_due(CARRIER, limit=1, lease_seconds=30, now=T0)
    await store.record_submit_accepted(sid(1), 0, CARRIER, "1-0", T0)
    assert [s for _, s in await drain(store)] == [Status.SENDING, Status.SENT]


async def test_a_retried_callback_waits_and_holds_back_the_next_one(store: SqliteStore) -> None:
    await sent(store, 1, callback=HOOK)
    await sent(store, 2, callback=HOOK)
    first = (await store.due_callbacks(T0, 10))[0]
    await store.callback_retry(first.id, error="HTTP 503", next_attempt_at=T0 + seconds(30), now=T0)
    # message 1 is blocked behind its retrying callback; message 2 is not
    assert [c.message_sid for c in await store.due_callbacks(T0 + seconds(29), 10)] == [sid(2)]
    due = {c.message_sid: c for c in await store.due_callbacks(T0 + seconds(30), 10)}
    assert (due[sid(1)].id, due[sid(1)].attempts) == (first.id, 1)


async def test_giving_up_unblocks_the_next_callback(store: SqliteStore) -> None:
    await sent(store, 1, callback=HOOK)
    [first] = await store.due_callbacks(T0, 10)
    await store.callback_give_up(first.id, error="HTTP 410", now=T0)
    [nxt] = await store.due_callbacks(T0, 10)
    assert nxt.status is Status.SENT
    with pytest.raises(CallbackNotPending, match="failed"):
        await store.callback_delivered(first.id, T0)


async def test_acknowledging_twice_or_an_unknown_callback_is_an_error(store: SqliteStore) -> None:
    await sent(store, 1, callback=HOOK)
    [first] = await store.due_callbacks(T0, 10)
    await store.callback_delivered(first.id, T0)
    with pytest.raises(CallbackNotPending, match="done"):
        await store.callback_retry(first.id, error="x", next_attempt_at=T0, now=T0)
    with pytest.raises(UnknownCallback):
        await store.callback_give_up(987654, error="x", now=T0)


async def test_due_callbacks_respects_the_limit(store: SqliteStore) -> None:
    for n in range(5):
        await sent(store, n, callback=HOOK)
    assert len(await store.due_callbacks(T0, 3)) == 3
