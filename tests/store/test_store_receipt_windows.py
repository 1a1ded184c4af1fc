"""Receipt windows: a receipt matches only a part submitted within the carrier's window, and a
held receipt is applied only to a part recorded within `ORPHAN_HOLD_SECONDS` of its arrival.
Carriers reissue ids (counters wrap, a restarted SMSC starts over): an old receipt must never
settle a new message, nor a new receipt an old one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from store import ReceiptOutcome, Status
from store.commands import (
    CloseReceiptWindows,
    PurgeOrphanReceipts,
    RecordSubmitAccepted,
)
from store.sqlite import SqliteStore
from store.sqlite_ops.receipts import ORPHAN_HOLD_SECONDS
from tests.store.store_kit import (
    ACCOUNT,
    CARRIER,
    HOOK,
    T0,
    TIMEOUT,
    claimed,
    hold_writer,
    raw,
    receipt,
    seconds,
    sent,
    sid,
)

HOUR = 3600.0
UNMATCHED = ReceiptOutcome(None, None, matched=False)


async def status_of(store: SqliteStore, n: int) -> Status:
    msg = await store.get_message(ACCOUNT, sid(n))
    assert msg is not None
    return msg.status


def part_states(db_path: Path) -> dict[str, str]:
    with raw(db_path) as conn:
        return dict(conn.execute("SELECT carrier_message_id, status FROM message_parts"))


def callback_rows(db_path: Path) -> list[tuple[str]]:
    with raw(db_path) as conn:
        return [tuple(r) for r in conn.execute("SELECT status FROM callbacks ORDER BY id")]


def close(store: SqliteStore, now, *, window: float = HOUR, carrier: str = CARRIER, limit=1000):
    return store.write(CloseReceiptWindows(carrier, window, now, limit))


async def test_a_receipt_past_the_window_does_not_match_and_is_held(store: SqliteStore) -> None:
    await sent(store, 1)
    before = await store.message_events(sid(1))
    late = T0 + seconds(HOUR + 1)
    assert await receipt(store, "1-0", now=late, window_seconds=HOUR) == UNMATCHED
    assert await status_of(store, 1) is Status.SENT
    assert await store.message_events(sid(1)) == before
    assert len(await store.write(PurgeOrphanReceipts(late + seconds(1)))) == 1  # it was held


async def test_a_receipt_at_the_edge_of_the_window_still_matches(store: SqliteStore) -> None:
    await sent(store, 1)
    outcome = await receipt(store, "1-0", now=T0 + seconds(HOUR), window_seconds=HOUR)
    assert outcome == ReceiptOutcome(sid(1), Status.DELIVERED, matched=True)


async def test_the_window_counts_from_each_parts_own_submit(store: SqliteStore) -> None:
    await claimed(store, 1, segments=2)
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0))
    await store.write(RecordSubmitAccepted(sid(1), 1, CARRIER, "1-1", T0 + seconds(HOUR)))
    now = T0 + seconds(HOUR + 10)
    assert await receipt(store, "1-0", now=now, window_seconds=HOUR) == UNMATCHED
    assert (await receipt(store, "1-1", now=now, window_seconds=HOUR)).matched


async def test_closing_windows_notes_the_missing_receipt_and_keeps_the_message_sent(
    store: SqliteStore, db_path: Path
) -> None:
    await sent(store, 1, callback=HOOK)
    await sent(store, 2, segments=2, now=T0 + seconds(10))
    await sent(store, 3, now=T0 + seconds(HOUR))  # within the window
    await sent(store, 4)
    await receipt(store, "4-0")  # answered: nothing to close
    callbacks_before = callback_rows(db_path)
    now = T0 + seconds(HOUR + 20)
    assert await close(store, now) == 2  # messages 1 and 2 (both of its parts)
    assert part_states(db_path) == {
        "1-0": "no_receipt",
        "2-0": "no_receipt",
        "2-1": "no_receipt",
        "3-0": "sent",
        "4-0": "delivered",
    }
    for n in (1, 2):
        assert await status_of(store, n) is Status.SENT
        last = (await store.message_events(sid(n)))[-1]
        assert (last.from_status, last.to_status, last.at, last.carrier) == (
            Status.SENT,
            None,
            now,
            CARRIER,
        )
        assert last.reason.startswith("no_receipt")
        assert "1 h" in last.reason
    assert (await store.message_events(sid(3)))[-1].reason == "submit_accepted"
    # no status change, so nothing new to tell the customer
    assert callback_rows(db_path) == callbacks_before == [("sending",), ("sent",)]
    # and closing again finds nothing left open
    assert await close(store, now) == 0


async def test_a_receipt_after_the_window_closed_does_not_settle_the_message(
    store: SqliteStore, db_path: Path
) -> None:
    await sent(store, 1)
    await close(store, T0 + seconds(HOUR + 1))
    # even asked with a wide window, a closed part's id no longer matches
    later = T0 + seconds(HOUR + 2)
    assert await receipt(store, "1-0", now=later, window_seconds=72 * HOUR) == UNMATCHED
    assert await status_of(store, 1) is Status.SENT
    assert part_states(db_path) == {"1-0": "no_receipt"}


async def test_closing_windows_is_per_carrier_and_limited(store: SqliteStore) -> None:
    for n in range(3):
        await sent(store, n)
    now = T0 + seconds(HOUR + 1)
    assert await close(store, now, carrier="other") == 0
    assert await close(store, now, limit=2) == 2
    assert await close(store, now, limit=2) == 1


async def test_a_reused_id_after_the_window_belongs_to_the_new_message_only(
    store: SqliteStore,
) -> None:
    await sent(store, 1)  # "1-0", never answered
    later = T0 + seconds(2 * HOUR)
    await claimed(store, 2, now=later)
    await store.write(RecordSubmitAccepted(sid(2), 0, CARRIER, "1-0", later))  # id reissued
    history = await store.message_events(sid(1))
    outcome = await receipt(store, "1-0", now=later + seconds(5), window_seconds=HOUR)
    assert outcome == ReceiptOutcome(sid(2), Status.DELIVERED, matched=True)
    assert await status_of(store, 1) is Status.SENT
    assert await store.message_events(sid(1)) == history


async def test_a_reused_id_after_the_window_closed_belongs_to_the_new_message_only(
    store: SqliteStore,
) -> None:
    await sent(store, 1)
    await close(store, T0 + seconds(HOUR + 1))
    later = T0 + seconds(2 * HOUR)
    await claimed(store, 2, now=later)
    await store.write(RecordSubmitAccepted(sid(2), 0, CARRIER, "1-0", later))
    history = await store.message_events(sid(1))
    first = await receipt(store, "1-0", now=later + seconds(1), delivered=False, error_code=30003)
    assert first == ReceiptOutcome(sid(2), Status.UNDELIVERED, matched=True)
    second = await receipt(store, "1-0", now=later + seconds(2))  # a duplicate: history only
    assert second == ReceiptOutcome(sid(2), None, matched=True)
    assert await status_of(store, 1) is Status.SENT
    assert await store.message_events(sid(1)) == history


async def test_an_old_receipt_held_before_the_id_was_reused_goes_to_the_new_message_only(
    store: SqliteStore,
) -> None:
    """A receipt for the old message arriving after its window is held; the new submit that
    reissues the id moments later cannot tell it apart and takes it. The old message never
    does."""
    await sent(store, 1)
    later = T0 + seconds(2 * HOUR)
    assert await receipt(store, "1-0", now=later, window_seconds=HOUR) == UNMATCHED
    await claimed(store, 2, now=later)
    await store.write(RecordSubmitAccepted(sid(2), 0, CARRIER, "1-0", later + seconds(1)))
    msg = await store.find_message(sid(2))
    assert msg.status is Status.DELIVERED
    assert (await store.message_events(sid(2)))[-1].reason == "held_receipt"
    assert await status_of(store, 1) is Status.SENT
    assert [e.reason for e in await store.message_events(sid(1))] == [
        "accepted",
        "claimed",
        "submit_accepted",
    ]


async def test_a_held_receipt_older_than_the_hold_is_not_applied_to_a_new_part(
    store: SqliteStore,
) -> None:
    await receipt(store, "x-0", now=T0, delivered=False, error_code=30003)
    await receipt(store, "y-0", now=T0)
    later = T0 + seconds(ORPHAN_HOLD_SECONDS + 1)
    await claimed(store, 1, now=later)
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "x-0", later))
    msg = await store.find_message(sid(1))
    assert (msg.status, msg.error_code) == (Status.SENT, None)
    assert (await store.message_events(sid(1)))[-1].reason == "submit_accepted"
    # its own receipt then settles it
    assert (await receipt(store, "x-0", now=later)).new_status is Status.DELIVERED
    # one held exactly ORPHAN_HOLD_SECONDS ago is still applied
    edge = T0 + seconds(ORPHAN_HOLD_SECONDS)
    await claimed(store, 2, now=edge)
    await store.write(RecordSubmitAccepted(sid(2), 0, CARRIER, "y-0", edge))
    msg = await store.find_message(sid(2))
    assert msg.status is Status.DELIVERED


async def test_the_hold_is_measured_from_each_submit_even_in_one_batch(
    store: SqliteStore,
) -> None:
    await receipt(store, "b-0", now=T0)
    await claimed(store, 1)
    await claimed(store, 2)
    release = hold_writer(store)
    first = store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "a-0", T0))
    late = T0 + seconds(ORPHAN_HOLD_SECONDS + 300)  # what it would be alone: too old to apply
    second = store.write(RecordSubmitAccepted(sid(2), 0, CARRIER, "b-0", late))
    release.set()
    await asyncio.wait_for(asyncio.gather(first, second), TIMEOUT)
    assert await status_of(store, 2) is Status.SENT
