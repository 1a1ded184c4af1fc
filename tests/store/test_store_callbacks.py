"""The status-callback outbox: written with each reported transition, delivered in order.

`ClaimCallbacks` replaced the `due_callbacks` read: it leases what it returns, so a callback
claimed once is not returned again until it is acknowledged, retried or its lease runs out.
"""

from __future__ import annotations

import asyncio

import pytest

from store import CallbackNotPending, Status, UnknownCallback
from store.commands import (
    Accept,
    CallbackDelivered,
    CallbackGiveUp,
    CallbackRetry,
    CallbacksDelivered,
    CallbackSuperseded,
    RecordSubmitAccepted,
    RecordSubmitFailed,
    Requeue,
)
from store.models import DeadLetterFilter
from store.sqlite import SqliteStore
from tests.store.store_kit import (
    ACCOUNT,
    CARRIER,
    HOOK,
    OWNER,
    T0,
    TIMEOUT,
    claim,
    claim_callbacks,
    claimed,
    hold_writer,
    new_message,
    raw,
    receipt,
    seconds,
    sent,
    sid,
    us,
)


async def drain(store: SqliteStore, now=T0) -> list[tuple[str, Status]]:
    """Acknowledge due callbacks until none is left; return what was delivered, in order."""
    delivered = []
    while batch := await claim_callbacks(store, now, 100):
        for callback in batch:
            await store.write(CallbackDelivered(callback.id, now))
            delivered.append((callback.message_sid, callback.status))
    return delivered


async def test_no_status_callback_url_means_no_outbox_rows(store: SqliteStore) -> None:
    await sent(store, 1)
    await receipt(store, "1-0")
    assert await claim_callbacks(store, T0, 10) == []


async def test_each_reported_transition_queues_a_callback_with_the_webhook_fields(
    store: SqliteStore,
) -> None:
    await sent(store, 1, callback=HOOK)
    await receipt(store, "1-0", done_date="2405011207")
    [first] = await claim_callbacks(store, T0, 10)
    assert (first.message_sid, first.account_sid, first.url, first.status) == (
        sid(1),
        ACCOUNT,
        HOOK,
        Status.SENDING,
    )
    assert (first.from_addr, first.to_addr) == (new_message(1).from_addr, new_message(1).to_addr)
    assert (first.attempts, first.error_code, first.raw_done_date) == (0, None, None)
    await store.write(CallbackDelivered(first.id, T0))
    rest = await drain(store)
    assert rest == [(sid(1), Status.SENT), (sid(1), Status.DELIVERED)]


async def test_only_the_oldest_pending_callback_of_a_message_is_due(store: SqliteStore) -> None:
    await sent(store, 1, callback=HOOK)
    await sent(store, 2, callback=HOOK)
    due = await claim_callbacks(store, T0, 10)
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
    [callback] = await claim_callbacks(store, T0, 10)
    assert (callback.status, callback.error_code, callback.raw_done_date) == (
        Status.UNDELIVERED,
        30003,
        "2405011209",
    )


async def test_failed_message_reports_its_error_code(store: SqliteStore) -> None:
    await claimed(store, 1, callback=HOOK)
    await store.write(
        RecordSubmitFailed(
            sid(1),
            carrier=CARRIER,
            smpp_status=0x0B,
            error_code=30005,
            error_message="bad dest",
            retry_at=None,
            counts_attempt=True,
            now=T0,
        )
    )
    assert [s for _, s in await drain(store)] == [Status.SENDING, Status.FAILED]


async def test_retries_are_not_reported_and_sending_is_not_reported_twice(
    store: SqliteStore,
) -> None:
    await claimed(store, 1, callback=HOOK)
    await store.write(
        RecordSubmitFailed(
            sid(1),
            carrier=CARRIER,
            smpp_status=0x58,
            error_code=None,
            error_message="throttled",
            retry_at=T0,
            counts_attempt=True,
            now=T0,
        )
    )
    await claim(store, T0, limit=1)
    await store.write(Requeue(sid(1), reason="bind lost", now=T0))
    await claim(store, T0, limit=1)
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0))
    assert [s for _, s in await drain(store)] == [Status.SENDING, Status.SENT]


async def test_a_retried_callback_waits_until_a_newer_status_supersedes_it(
    store: SqliteStore, db_path
) -> None:
    await claimed(store, 1, callback=HOOK)  # its one callback: `sending`
    await sent(store, 2, callback=HOOK)
    # limit=1: only message 1's callback is leased, as due_callbacks was a plain read
    [first] = await claim_callbacks(store, T0, 1)
    assert (first.message_sid, first.status) == (sid(1), Status.SENDING)
    await store.write(CallbackRetry(first.id, "HTTP 503", T0 + seconds(30), T0))
    # nothing newer of message 1: its callback waits for its retry; message 2 is not held
    assert [c.message_sid for c in await claim_callbacks(store, T0 + seconds(29), 10)] == [sid(2)]
    # message 1 is sent meanwhile: the application needs `sent`, not a stale `sending` first
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0 + seconds(29)))
    [newest] = await claim_callbacks(store, T0 + seconds(29), 10)
    assert (newest.message_sid, newest.status) == (sid(1), Status.SENT)
    with raw(db_path) as conn:
        state, error = conn.execute(
            "SELECT state, last_error FROM callbacks WHERE id = ?", (first.id,)
        ).fetchone()
    assert state == "skipped" and error == "HTTP 503; superseded by the newer status sent"
    # a skipped callback is settled: it never comes due again
    assert await claim_callbacks(store, T0 + seconds(60), 10) == []


async def test_a_failure_with_a_newer_status_pending_supersedes_at_once(
    store: SqliteStore, db_path
) -> None:
    await sent(store, 1, callback=HOOK)  # `sending` and `sent` pending
    [first] = await claim_callbacks(store, T0, 1)
    await store.write(CallbackRetry(first.id, "HTTP 503", T0 + seconds(30), T0))
    [newest] = await claim_callbacks(store, T0, 10)
    assert (newest.status, newest.attempts) == (Status.SENT, 0)
    with raw(db_path) as conn:
        assert (
            conn.execute("SELECT state FROM callbacks WHERE id = ?", (first.id,)).fetchone()[0]
            == "skipped"
        )


async def test_callback_superseded_with_nothing_newer_is_a_retry_at_once(
    store: SqliteStore,
) -> None:
    await claimed(store, 1, callback=HOOK)
    [first] = await claim_callbacks(store, T0, 1)
    await store.write(CallbackSuperseded(first.id, "HTTP 503", T0))
    [again] = await claim_callbacks(store, T0, 10)
    assert (again.id, again.attempts) == (first.id, 1)


async def test_giving_up_unblocks_the_next_callback(store: SqliteStore) -> None:
    await claimed(store, 1, callback=HOOK)
    [first] = await claim_callbacks(store, T0, 10)
    await store.write(CallbackGiveUp(first.id, "HTTP 410", T0))
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0))
    [nxt] = await claim_callbacks(store, T0, 10)
    assert nxt.status is Status.SENT
    with pytest.raises(CallbackNotPending, match="failed"):
        await store.write(CallbackDelivered(first.id, T0))


async def test_giving_up_on_a_callback_a_newer_status_follows_only_skips_it(
    store: SqliteStore,
) -> None:
    """Stale, not dead: the application will hear the newer status; no dead letter."""
    await sent(store, 1, callback=HOOK)  # `sending`, then `sent`
    [first] = await claim_callbacks(store, T0, 1)
    await store.write(CallbackGiveUp(first.id, "HTTP 410", T0))
    with pytest.raises(CallbackNotPending, match="skipped"):
        await store.write(CallbackDelivered(first.id, T0))
    assert await store.dead_letters(DeadLetterFilter()) == []


async def test_a_failure_settled_after_the_newer_callback_went_out_never_retries_it(
    store: SqliteStore, db_path
) -> None:
    """The sender writes settles without waiting: the older callback's failure may commit with
    (or after) the newer one's delivery. It must be skipped then, never posted after it."""
    await sent(store, 1, callback=HOOK)
    [sending] = await claim_callbacks(store, T0, 1)
    with raw(db_path) as conn:
        [(sent_id,)] = conn.execute("SELECT id FROM callbacks WHERE status = 'sent'").fetchall()
    release = hold_writer(store)
    failed = store.write(CallbackSuperseded(sending.id, "HTTP 500", T0))
    delivered = store.write(CallbackDelivered(sent_id, T0))  # same commit
    release.set()
    await asyncio.wait_for(asyncio.gather(failed, delivered), TIMEOUT)
    assert await claim_callbacks(store, T0 + seconds(3600), 10) == []  # nothing to post again


async def test_acknowledging_twice_or_an_unknown_callback_is_an_error(store: SqliteStore) -> None:
    await sent(store, 1, callback=HOOK)
    [first] = await claim_callbacks(store, T0, 10)
    await store.write(CallbackDelivered(first.id, T0))
    with pytest.raises(CallbackNotPending, match="done"):
        await store.write(CallbackRetry(first.id, "x", T0, T0))
    with pytest.raises(UnknownCallback):
        await store.write(CallbackGiveUp(987654, "x", T0))
    with pytest.raises(UnknownCallback):
        await store.write(CallbackDelivered(987654, T0))


async def test_claim_callbacks_respects_the_limit(store: SqliteStore) -> None:
    for n in range(5):
        await sent(store, n, callback=HOOK)
    assert len(await claim_callbacks(store, T0, 3)) == 3
    # the three leased ones are not due again; the other two messages' first callbacks are
    assert len(await claim_callbacks(store, T0, 3)) == 2
    assert await claim_callbacks(store, T0, 3) == []


# -- ClaimCallbacks leases what it returns ----------------------------------------------------


async def test_a_claimed_callback_is_not_claimed_again_until_its_lease_runs_out(
    store: SqliteStore,
) -> None:
    await sent(store, 1, callback=HOOK)
    [first] = await claim_callbacks(store, T0, owner="node-a", lease_seconds=30)
    assert await claim_callbacks(store, T0, owner="node-a") == []
    assert await claim_callbacks(store, T0 + seconds(29), owner="node-b") == []
    [again] = await claim_callbacks(store, T0 + seconds(30), owner="node-b", lease_seconds=30)
    # the same callback (the message's oldest), not counted as an attempt by being claimed
    assert (again.id, again.status, again.attempts) == (first.id, Status.SENDING, 0)
    # node-a's late acknowledgement still settles it: leases order senders, they do not fence
    await store.write(CallbackDelivered(first.id, T0 + seconds(31)))
    [nxt] = await claim_callbacks(store, T0 + seconds(31))
    assert nxt.status is Status.SENT


async def test_only_the_oldest_pending_callback_is_due_even_when_it_is_leased(
    store: SqliteStore,
) -> None:
    await sent(store, 1, callback=HOOK)
    await receipt(store, "1-0")
    [first] = await claim_callbacks(store, T0, lease_seconds=30)
    assert first.status is Status.SENDING
    # `sent` and `delivered` wait behind the leased `sending`, however long it takes
    assert await claim_callbacks(store, T0 + seconds(10)) == []
    await store.write(CallbackDelivered(first.id, T0 + seconds(10)))
    [second] = await claim_callbacks(store, T0 + seconds(10))
    assert second.status is Status.SENT
    await store.write(CallbackGiveUp(second.id, "HTTP 410", T0 + seconds(11)))
    [third] = await claim_callbacks(store, T0 + seconds(11))
    assert third.status is Status.DELIVERED


async def test_claims_by_two_senders_never_share_a_callback(store: SqliteStore) -> None:
    for n in range(6):
        await sent(store, n, callback=HOOK)
    a = await claim_callbacks(store, T0, 4, owner="node-a")
    b = await claim_callbacks(store, T0, 4, owner="node-b")
    assert len(a) == 4 and len(b) == 2
    assert not {c.id for c in a} & {c.id for c in b}
    assert {c.message_sid for c in a + b} == {sid(n) for n in range(6)}


async def test_a_retry_releases_the_later_callbacks_of_its_message_to_the_retry_time(
    store: SqliteStore, db_path
) -> None:
    """With hand_callbacks_to, later callbacks are written leased; a retry of an earlier one
    must not leave them stranded behind that lease: they wait exactly as long as it does."""
    store.hand_callbacks_to(lambda callbacks: None, lease_seconds=300)
    await sent(store, 1, callback=HOOK)
    await sent(store, 2, callback=HOOK)
    with raw(db_path) as conn:
        ids = {
            (r["message_sid"], r["status"]): r["id"]
            for r in conn.execute("SELECT id, message_sid, status FROM callbacks")
        }
    # message 1's `sending` is settled so only `sent` is pending, and it is leased
    await store.write(CallbackDelivered(ids[(sid(1), "sending")], T0))
    await store.write(Accept(new_message(3, callback=HOOK), T0))
    await claim(store, T0, limit=1)  # message 3: `sending`, leased
    with raw(db_path) as conn:
        ids[(sid(3), "sending")] = conn.execute(
            "SELECT id FROM callbacks WHERE message_sid = ?", (sid(3),)
        ).fetchone()[0]
    retry_at = T0 + seconds(10)
    await store.write(CallbackRetry(ids[(sid(3), "sending")], "HTTP 503", retry_at, T0))
    # message 3 is accepted meanwhile: its `sent` is written leased, behind the retry
    await store.write(RecordSubmitAccepted(sid(3), 0, CARRIER, "3-0", T0))
    with raw(db_path) as conn:
        rows_now = {
            r["id"]: (r["state"], r["lease_owner"], r["next_attempt_at"])
            for r in conn.execute("SELECT id, state, lease_owner, next_attempt_at FROM callbacks")
        }
    # the waiting `sending` is superseded by `sent`; messages 1 and 2 are not concerned
    assert rows_now[ids[(sid(3), "sending")]][0] == "skipped"
    assert rows_now[ids[(sid(1), "sent")]] == ("pending", OWNER, us(T0 + seconds(300)))
    assert rows_now[ids[(sid(2), "sent")]][1:] == (OWNER, us(T0 + seconds(300)))


async def test_acknowledging_twice_in_one_batch_fails_the_second_time(
    store: SqliteStore,
) -> None:
    await sent(store, 1, callback=HOOK)
    [first] = await claim_callbacks(store, T0)
    release = hold_writer(store)
    acks = [store.write(CallbackDelivered(first.id, T0)) for _ in range(2)]
    release.set()
    results = await asyncio.wait_for(asyncio.gather(*acks, return_exceptions=True), TIMEOUT)
    assert results[0] is None
    assert isinstance(results[1], CallbackNotPending)


async def test_claim_callbacks_refuses_a_negative_limit_or_a_lease_that_is_not_positive(
    store: SqliteStore,
) -> None:
    for n in range(3):
        await sent(store, n, callback=HOOK)
    with pytest.raises(ValueError, match="limit"):
        await claim_callbacks(store, T0, -1)
    with pytest.raises(ValueError, match="lease_seconds"):
        await claim_callbacks(store, T0, 10, lease_seconds=0)
    assert len(await claim_callbacks(store, T0, 10)) == 3  # nothing was leased


async def test_deliveries_written_together_settle_each_and_name_those_not_pending(
    store: SqliteStore,
) -> None:
    for n in range(3):
        await sent(store, n, callback=HOOK)
    first, second, third = await claim_callbacks(store, T0, 10)  # each message's `sending`
    await store.write(CallbackDelivered(first.id, T0))  # settled already, alone
    missing = await store.write(CallbacksDelivered((first.id, second.id, third.id, 987654), T0))
    assert missing == (first.id, 987654)  # the others are settled, one stale id held none back
    assert await store.write(CallbacksDelivered((second.id,), T0)) == (second.id,)
    # Each message's next callback (`sent`) is due now: the three were settled.
    due = await claim_callbacks(store, T0, 10)
    assert sorted((c.message_sid, c.status) for c in due) == [
        (sid(n), Status.SENT) for n in range(3)
    ]


async def test_deliveries_written_together_are_one_write(store: SqliteStore) -> None:
    for n in range(2):
        await sent(store, n, callback=HOOK)
    ids = tuple(c.id for c in await claim_callbacks(store, T0, 10))
    assert await store.write(CallbacksDelivered(ids, T0)) == ()
    assert await drain(store) == [(sid(n), s) for n in range(2) for s in (Status.SENT,)]
