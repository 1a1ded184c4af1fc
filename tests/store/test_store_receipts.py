"""Delivery receipts: correlation, multi-part outcomes, orphans, late and duplicate receipts."""

from __future__ import annotations

import asyncio

from store import ReceiptOutcome, Status
from store.commands import PurgeOrphanReceipts, RecordReceipt, RecordSubmitAccepted
from store.models import PurgedReceipt
from store.sqlite import SqliteStore
from tests.store.store_kit import (
    ACCOUNT,
    CARRIER,
    T0,
    claimed,
    receipt,
    seconds,
    sent,
    sid,
)


async def status_of(store: SqliteStore, n: int) -> Status:
    msg = await store.get_message(ACCOUNT, sid(n))
    assert msg is not None
    return msg.status


async def test_delivered_receipt_settles_the_message(store: SqliteStore) -> None:
    await sent(store, 1)
    outcome = await receipt(store, "1-0", now=T0 + seconds(2))
    assert outcome == ReceiptOutcome(sid(1), Status.DELIVERED, matched=True)
    msg = await store.get_message(ACCOUNT, sid(1))
    assert (msg.status, msg.error_code, msg.date_updated) == (
        Status.DELIVERED,
        None,
        T0 + seconds(2),
    )
    last = (await store.message_events(sid(1)))[-1]
    assert (last.from_status, last.to_status) == (Status.SENT, Status.DELIVERED)
    assert (last.receipt_stat, last.receipt_err, last.carrier) == ("DELIVRD", "000", CARRIER)


async def test_undelivered_receipt_carries_the_error(store: SqliteStore) -> None:
    await sent(store, 1)
    outcome = await receipt(store, "1-0", delivered=False, error_code=30003)
    assert outcome.new_status is Status.UNDELIVERED
    msg = await store.get_message(ACCOUNT, sid(1))
    assert msg.error_code == 30003
    assert "stat=UNDELIV" in msg.error_message and "err=001" in msg.error_message


async def test_receipt_recorded_right_after_submit_without_awaiting_finds_its_part(
    store: SqliteStore,
) -> None:
    await claimed(store, 1)
    accepted = store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0))
    delivered = receipt(store, "1-0", now=T0 + seconds(1))
    # await in the "wrong" order: what counts is the order of the calls
    outcome = await delivered
    assert outcome == ReceiptOutcome(sid(1), Status.DELIVERED, matched=True)
    assert (await accepted) is Status.SENT  # as of its own commit point
    assert await status_of(store, 1) is Status.DELIVERED


async def test_ordering_holds_for_many_messages_fired_together(store: SqliteStore) -> None:
    for n in range(20):
        await claimed(store, n)
    futures = []
    for n in range(20):
        futures.append(store.write(RecordSubmitAccepted(sid(n), 0, CARRIER, f"{n}-0", T0)))
        futures.append(receipt(store, f"{n}-0"))
    await asyncio.gather(*reversed(futures))
    assert {await status_of(store, n) for n in range(20)} == {Status.DELIVERED}
    assert (await store.count_by_status())["delivered"] == 20


async def test_receipt_before_submit_response_is_held_then_matched(store: SqliteStore) -> None:
    await claimed(store, 1)
    early = await receipt(store, "1-0", done_date="2405011203")
    assert early == ReceiptOutcome(None, None, matched=False)
    assert await status_of(store, 1) is Status.SENDING
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0 + seconds(1)))
    msg = await store.find_message(sid(1))
    assert msg is not None and msg.status is Status.DELIVERED
    events = await store.message_events(sid(1))
    assert [(e.to_status, e.reason) for e in events[-2:]] == [
        (Status.SENT, "submit_accepted"),
        (Status.DELIVERED, "held_receipt"),
    ]
    assert events[-1].receipt_stat == "DELIVRD"
    # the orphan was consumed: a second submit response finds nothing more to apply
    assert await store.write(PurgeOrphanReceipts(T0 + seconds(3600))) == []


async def test_held_undelivered_receipt_keeps_its_error_code(store: SqliteStore) -> None:
    await claimed(store, 1)
    await receipt(store, "1-0", delivered=False, error_code=30005)
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0))
    msg = await store.find_message(sid(1))
    assert (msg.status, msg.error_code) == (Status.UNDELIVERED, 30005)


async def test_multi_part_message_is_delivered_when_every_part_is(store: SqliteStore) -> None:
    await sent(store, 1, segments=3)
    assert (await receipt(store, "1-2")).new_status is None
    assert (await receipt(store, "1-0")).new_status is None
    assert await status_of(store, 1) is Status.SENT
    assert (await receipt(store, "1-1")).new_status is Status.DELIVERED
    reasons = [e.reason for e in await store.message_events(sid(1))][-3:]
    assert reasons == ["receipt_part_3", "receipt_part_1", "receipt"]


async def test_multi_part_message_is_undelivered_as_soon_as_one_part_fails(
    store: SqliteStore,
) -> None:
    await sent(store, 1, segments=2)
    failed = await receipt(store, "1-1", delivered=False, error_code=30003)
    assert failed.new_status is Status.UNDELIVERED  # part 1's receipt need not come
    assert (await receipt(store, "1-0")).new_status is None  # history only
    msg = await store.get_message(ACCOUNT, sid(1))
    assert msg.error_code == 30003
    assert "part 2 of 2" in msg.error_message
    reasons = [e.reason for e in await store.message_events(sid(1))][-2:]
    assert reasons == ["receipt", "late_receipt"]


async def test_a_part_that_failed_before_the_last_was_accepted_settles_it_when_sent(
    store: SqliteStore,
) -> None:
    await claimed(store, 1, segments=2)
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0))
    await receipt(store, "1-0", delivered=False, error_code=30003)
    assert await status_of(store, 1) is Status.SENDING
    await store.write(RecordSubmitAccepted(sid(1), 1, CARRIER, "1-1", T0))
    msg = await store.find_message(sid(1))
    assert (msg.status, msg.error_code) == (Status.UNDELIVERED, 30003)


async def test_receipts_for_parts_arriving_while_other_parts_are_unanswered(
    store: SqliteStore,
) -> None:
    await claimed(store, 1, segments=2)
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0))
    await receipt(store, "1-0")  # part 1 delivered before part 2 was even accepted
    assert await status_of(store, 1) is Status.SENDING
    await receipt(store, "1-1")  # and part 2's receipt overtakes its response
    await store.write(RecordSubmitAccepted(sid(1), 1, CARRIER, "1-1", T0))
    msg = await store.find_message(sid(1))
    assert msg.status is Status.DELIVERED


async def test_late_receipt_on_a_final_message_is_history_only(store: SqliteStore) -> None:
    await sent(store, 1)
    await receipt(store, "1-0", delivered=False, error_code=30003)
    outcome = await receipt(store, "1-0", delivered=True, now=T0 + seconds(60))
    assert outcome == ReceiptOutcome(sid(1), None, matched=True)
    msg = await store.get_message(ACCOUNT, sid(1))
    assert (msg.status, msg.error_code) == (Status.UNDELIVERED, 30003)
    last = (await store.message_events(sid(1)))[-1]
    assert (last.from_status, last.to_status, last.reason) == (
        Status.UNDELIVERED,
        None,
        "late_receipt",
    )
    assert (last.receipt_stat, last.at) == ("DELIVRD", T0 + seconds(60))


async def test_duplicate_receipt_for_a_part_does_not_count_twice(store: SqliteStore) -> None:
    await sent(store, 1, segments=2)
    await receipt(store, "1-0")
    outcome = await receipt(store, "1-0")
    assert outcome.new_status is None
    assert await status_of(store, 1) is Status.SENT
    assert (await store.message_events(sid(1)))[-1].reason == "duplicate_receipt"


async def test_intermediate_receipt_changes_nothing(store: SqliteStore) -> None:
    await sent(store, 1)
    outcome = await receipt(store, "1-0", final=False)
    assert outcome == ReceiptOutcome(sid(1), None, matched=True)
    assert await status_of(store, 1) is Status.SENT
    last = (await store.message_events(sid(1)))[-1]
    assert (last.reason, last.receipt_stat) == ("intermediate_receipt", "ENROUTE")
    assert (await receipt(store, "1-0")).new_status is Status.DELIVERED


async def test_stale_orphans_can_be_purged(store: SqliteStore) -> None:
    await receipt(store, "never-1", now=T0)
    await receipt(store, "never-2", now=T0 + seconds(10))
    assert await store.write(PurgeOrphanReceipts(T0 + seconds(5))) == [
        PurgedReceipt(CARRIER, "never-1", "DELIVRD", T0)
    ]
    purged = await store.write(PurgeOrphanReceipts(T0 + seconds(60)))
    assert [p.carrier_message_id for p in purged] == ["never-2"]
    assert await store.write(PurgeOrphanReceipts(T0 + seconds(60))) == []


async def test_a_reused_carrier_id_belongs_to_the_newest_submit(store: SqliteStore) -> None:
    await sent(store, 1)
    await receipt(store, "1-0")
    await claimed(store, 2)
    await store.write(RecordSubmitAccepted(sid(2), 0, CARRIER, "1-0", T0))  # the SMSC wrapped
    assert (await receipt(store, "1-0")).message_sid == sid(2)
    assert await status_of(store, 2) is Status.DELIVERED


async def test_same_id_on_another_carrier_is_another_part(store: SqliteStore) -> None:
    await sent(store, 1)
    outcome = await store.write(
        RecordReceipt(
            "other",
            "1-0",
            stat="DELIVRD",
            err="000",
            done_date=None,
            error_code=None,
            delivered=True,
            final=True,
            now=T0,
        )
    )
    assert outcome.matched is False
    assert await status_of(store, 1) is Status.SENT
