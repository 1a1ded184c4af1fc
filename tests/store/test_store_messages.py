"""Accept → Claim → submit outcome / requeue, and the reads the engine and API use."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store import AlreadyExists, IllegalTransition, Status, UnknownAccount, UnknownMessage
from store.commands import (
    Accept,
    Claim,
    RecordSubmitAccepted,
    RecordSubmitFailed,
    RecoverLeases,
    Requeue,
)
from store.sqlite import SqliteStore
from store.sqlite_ops.outbound import CLAIM_DUE_SQL
from tests.store.store_kit import (
    ACCOUNT,
    CARRIER,
    OTHER_ACCOUNT,
    OWNER,
    T0,
    claim,
    claimed,
    new_message,
    seconds,
    sent,
    sid,
)


async def test_accepted_message_is_queued_and_readable(store: SqliteStore) -> None:
    await store.write(Accept(new_message(1, segments=2), T0))
    msg = await store.find_message(sid(1))
    assert msg.status is Status.QUEUED
    assert (msg.sid, msg.account_sid, msg.direction) == (sid(1), ACCOUNT, "outbound-api")
    assert (msg.num_segments, msg.encoding, msg.carrier, msg.attempts) == (2, "gsm7", CARRIER, 0)
    assert msg.date_created == msg.date_updated == T0 and msg.date_sent is None
    assert msg.error_code is None and msg.error_message is None
    assert await store.get_message(ACCOUNT, sid(1)) == msg


async def test_a_message_is_invisible_to_other_accounts(store: SqliteStore) -> None:
    await store.write(Accept(new_message(1), T0))
    assert await store.get_message(OTHER_ACCOUNT, sid(1)) is None
    assert await store.get_message(ACCOUNT, sid(2)) is None


async def test_accept_records_the_first_event(store: SqliteStore) -> None:
    await store.write(Accept(new_message(1), T0))
    [event] = await store.message_events(sid(1))
    assert (event.from_status, event.to_status, event.reason, event.at) == (
        None,
        Status.QUEUED,
        "accepted",
        T0,
    )


async def test_accept_refuses_duplicates_unknown_accounts_and_bad_input(
    store: SqliteStore,
) -> None:
    await store.write(Accept(new_message(1), T0))
    with pytest.raises(AlreadyExists):
        await store.write(Accept(new_message(1), T0))
    with pytest.raises(UnknownAccount, match="AC" + "9" * 32):
        await store.write(Accept(new_message(2, account="AC" + "9" * 32), T0))
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.write(Accept(new_message(3), T0.replace(tzinfo=None)))
    with pytest.raises(ValueError, match="num_segments"):
        await store.write(Accept(new_message(4, segments=0), T0))
    assert (await store.count_by_status())["queued"] == 1


async def test_count_by_status_lists_every_status(store: SqliteStore) -> None:
    for n in range(3):
        await store.write(Accept(new_message(n), T0))
    await claim(store, limit=1)
    counts = await store.count_by_status()
    assert set(counts) == {str(s) for s in Status}
    assert (counts["queued"], counts["sending"], counts["delivered"]) == (2, 1, 0)


async def test_claim_takes_due_messages_oldest_first_up_to_the_limit(store: SqliteStore) -> None:
    for n in range(5):
        await store.write(Accept(new_message(n), T0 + seconds(n)))
    await store.write(Accept(new_message(10, carrier="other"), T0))
    assert await claim(store, T0 - seconds(1)) == []  # nothing due yet
    first = await claim(store, T0 + seconds(10), limit=2)
    assert [m.sid for m in first] == [sid(0), sid(1)]
    rest = await claim(store, T0 + seconds(10))
    assert [m.sid for m in rest] == [sid(2), sid(3), sid(4)]
    assert await claim(store, T0 + seconds(10)) == []  # claimed messages are not claimed twice


async def test_messages_due_at_the_same_instant_are_claimed_in_acceptance_order(
    store: SqliteStore,
) -> None:
    order = [7, 3, 9, 1, 5]
    for n in order:
        await store.write(Accept(new_message(n), T0))
    assert [m.sid for m in await claim(store)] == [sid(n) for n in order]


async def test_claim_moves_to_sending_counts_the_attempt_and_takes_a_lease(
    store: SqliteStore, db_path: Path
) -> None:
    await store.write(Accept(new_message(1), T0))
    [msg] = await store.write(Claim(CARRIER, 1, "node-a", 45, T0))
    assert (msg.status, msg.attempts, msg.date_updated) == (Status.SENDING, 1, T0)
    events = await store.message_events(sid(1))
    assert (events[-1].from_status, events[-1].to_status, events[-1].reason) == (
        Status.QUEUED,
        Status.SENDING,
        "claimed",
    )
    assert events[-1].attempt == 1
    with sqlite3.connect(db_path) as conn:
        owner, expires = conn.execute(
            "SELECT lease_owner, lease_expires_at FROM messages WHERE sid = ?", (sid(1),)
        ).fetchone()
    assert owner == "node-a"
    assert expires - int(T0.timestamp() * 1_000_000) == 45_000_000


async def test_claim_refuses_a_negative_limit_or_a_lease_that_is_not_positive(
    store: SqliteStore,
) -> None:
    await store.write(Accept(new_message(1), T0))
    with pytest.raises(ValueError, match="limit"):
        await store.write(Claim(CARRIER, -1, "node-a", 30, T0))
    with pytest.raises(ValueError, match="lease_seconds"):
        await store.write(Claim(CARRIER, 1, "node-a", 0, T0))
    assert await store.pending_work(CARRIER) == 1


async def test_claim_reads_the_queue_through_its_index_without_sorting(db_path: Path) -> None:
    async with SqliteStore(db_path):
        pass
    with sqlite3.connect(db_path) as conn:
        plan = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + CLAIM_DUE_SQL, ("acme", 0, 10))]
    assert plan == ["SEARCH messages USING INDEX messages_due (carrier=? AND next_attempt_at<?)"]


async def test_pending_work_and_next_due_at_follow_the_queue(store: SqliteStore) -> None:
    assert await store.pending_work(CARRIER) == 0
    assert await store.next_due_at(CARRIER) is None
    await store.write(Accept(new_message(1), T0 + seconds(5)))
    await store.write(Accept(new_message(2), T0 + seconds(3)))
    await store.write(Accept(new_message(3, carrier="other"), T0))
    assert await store.pending_work(CARRIER) == 2
    assert await store.next_due_at(CARRIER) == T0 + seconds(3)
    await claim(store, T0 + seconds(10), limit=1)
    assert await store.pending_work(CARRIER) == 1
    assert await store.next_due_at(CARRIER) == T0 + seconds(5)


async def test_submit_accepted_makes_a_single_part_message_sent(store: SqliteStore) -> None:
    await claimed(store, 1)
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "c-1", T0 + seconds(1)))
    msg = await store.find_message(sid(1))
    assert msg is not None
    assert (msg.status, msg.date_sent, msg.date_updated) == (
        Status.SENT,
        T0 + seconds(1),
        T0 + seconds(1),
    )
    last = (await store.message_events(sid(1)))[-1]
    assert (last.from_status, last.to_status, last.reason) == (
        Status.SENDING,
        Status.SENT,
        "submit_accepted",
    )


async def test_multi_part_message_is_sent_only_when_every_part_is_accepted(
    store: SqliteStore,
) -> None:
    await claimed(store, 1, segments=3)
    for part in (2, 0):
        await store.write(RecordSubmitAccepted(sid(1), part, CARRIER, f"c-{part}", T0))
        msg = await store.find_message(sid(1))
        assert msg is not None and msg.status is Status.SENDING
    await store.write(RecordSubmitAccepted(sid(1), 1, CARRIER, "c-1", T0))
    msg = await store.find_message(sid(1))
    assert msg is not None and msg.status is Status.SENT
    reasons = [e.reason for e in await store.message_events(sid(1))]
    assert reasons == [
        "accepted",
        "claimed",
        "part_3_accepted",
        "part_1_accepted",
        "submit_accepted",
    ]


async def test_submit_accepted_for_an_unknown_message_is_none(store: SqliteStore) -> None:
    assert await store.write(RecordSubmitAccepted(sid(404), 0, CARRIER, "c", T0)) is None


async def test_submit_accepted_rejects_a_part_index_out_of_range(store: SqliteStore) -> None:
    await claimed(store, 1, segments=2)
    with pytest.raises(ValueError, match="part_index 2"):
        await store.write(RecordSubmitAccepted(sid(1), 2, CARRIER, "c", T0))


async def test_duplicate_submit_response_changes_nothing(store: SqliteStore) -> None:
    await sent(store, 1)
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0))
    msg = await store.find_message(sid(1))
    assert msg is not None and msg.status is Status.SENT
    assert (await store.message_events(sid(1)))[-1].reason == "duplicate_submit_resp"


async def test_late_submit_response_keeps_the_id_and_changes_no_status(
    store: SqliteStore,
) -> None:
    await claimed(store, 1)
    await store.write(Requeue(sid(1), reason="stopping", now=T0))
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0 + seconds(1)))
    msg = await store.find_message(sid(1))
    assert msg is not None and msg.status is Status.QUEUED
    assert (await store.message_events(sid(1)))[-1].reason == "late_submit_resp"


async def test_permanent_submit_failure_fails_the_message_with_its_error(
    store: SqliteStore,
) -> None:
    await claimed(store, 1)
    msg = await store.write(
        RecordSubmitFailed(
            sid(1),
            carrier=CARRIER,
            smpp_status=0x0B,
            error_code=30005,
            error_message="Invalid destination address",
            retry_at=None,
            counts_attempt=True,
            now=T0 + seconds(1),
        )
    )
    assert (msg.status, msg.error_code, msg.error_message) == (
        Status.FAILED,
        30005,
        "Invalid destination address",
    )
    last = (await store.message_events(sid(1)))[-1]
    assert (last.to_status, last.smpp_status, last.carrier) == (Status.FAILED, 0x0B, CARRIER)
    assert await store.pending_work(CARRIER) == 0


async def test_temporary_submit_failure_requeues_until_retry_at(store: SqliteStore) -> None:
    await claimed(store, 1)
    retry_at = T0 + seconds(30)
    msg = await store.write(
        RecordSubmitFailed(
            sid(1),
            carrier=CARRIER,
            smpp_status=0x58,
            error_code=None,
            error_message="throttled",
            retry_at=retry_at,
            counts_attempt=True,
            now=T0 + seconds(1),
        )
    )
    assert (msg.status, msg.attempts, msg.error_code) == (Status.QUEUED, 1, None)
    last = (await store.message_events(sid(1)))[-1]
    assert (last.to_status, last.reason, last.smpp_status) == (Status.QUEUED, "retry", 0x58)
    assert await store.next_due_at(CARRIER) == retry_at
    assert await claim(store, retry_at - seconds(1)) == []
    [again] = await claim(store, retry_at)
    assert again.attempts == 2


async def test_a_throttled_submit_gives_the_attempt_back(store: SqliteStore) -> None:
    # Was test_temporary_failure_needs_a_retry_time: "permanent=False without retry_at" can no
    # longer be written (retry_at=None *is* the permanent failure), so this checks what replaced
    # the flag instead: a retry that does not count the attempt.
    await claimed(store, 1)
    retry_at = T0 + seconds(5)
    msg = await store.write(
        RecordSubmitFailed(
            sid(1),
            carrier=CARRIER,
            smpp_status=0x58,
            error_code=None,
            error_message="ESME_RTHROTTLED",
            retry_at=retry_at,
            counts_attempt=False,
            now=T0 + seconds(1),
            reason="throttled",
        )
    )
    assert (msg.status, msg.attempts) == (Status.QUEUED, 0)
    last = (await store.message_events(sid(1)))[-1]
    assert (last.to_status, last.reason, last.attempt) == (Status.QUEUED, "throttled", 0)
    [again] = await claim(store, retry_at)
    assert again.attempts == 1


async def test_requeue_gives_the_attempt_back_and_keeps_the_place_in_line(
    store: SqliteStore,
) -> None:
    await store.write(Accept(new_message(1), T0))
    await store.write(Accept(new_message(2), T0 + seconds(1)))
    await claim(store, T0 + seconds(5))
    msg = await store.write(Requeue(sid(1), reason="bind lost", now=T0 + seconds(6)))
    assert (msg.status, msg.attempts) == (Status.QUEUED, 0)
    assert (await store.message_events(sid(1)))[-1].reason == "bind lost"
    # Requeue no longer has count_attempt: a PDU that never left never counts.
    other = await store.write(Requeue(sid(2), reason="x", now=T0 + seconds(6)))
    assert other.attempts == 0
    assert [m.sid for m in await claim(store, T0 + seconds(7))] == [sid(1), sid(2)]


async def test_illegal_transitions_are_refused_and_write_nothing(store: SqliteStore) -> None:
    await sent(store, 2)
    await store.write(Accept(new_message(1), T0))
    before = [await store.message_events(sid(n)) for n in (1, 2)]
    with pytest.raises(IllegalTransition, match="from queued to queued"):
        await store.write(Requeue(sid(1), reason="x", now=T0))
    with pytest.raises(IllegalTransition, match="from sent to failed"):
        await store.write(
            RecordSubmitFailed(
                sid(2),
                carrier=CARRIER,
                smpp_status=0x45,
                error_code=30008,
                error_message="late",
                retry_at=None,
                counts_attempt=True,
                now=T0,
            )
        )
    assert [await store.message_events(sid(n)) for n in (1, 2)] == before
    assert (await store.get_message(ACCOUNT, sid(1))).status is Status.QUEUED
    assert (await store.get_message(ACCOUNT, sid(2))).status is Status.SENT


async def test_ops_on_unknown_messages_raise(store: SqliteStore) -> None:
    with pytest.raises(UnknownMessage, match=sid(404)):
        await store.write(Requeue(sid(404), reason="x", now=T0))
    with pytest.raises(UnknownMessage):
        await store.write(
            RecordSubmitFailed(
                sid(404),
                carrier=CARRIER,
                smpp_status=None,
                error_code=None,
                error_message=None,
                retry_at=None,
                counts_attempt=True,
                now=T0,
            )
        )


async def test_a_resend_answered_with_the_id_of_the_earlier_copy_is_sent(
    store: SqliteStore,
) -> None:
    """The first copy's response came after its lease was recovered (recorded as late); the
    resend is answered with the same id (an SMSC that deduplicates submits). This attempt's
    part is accepted: the message is sent, and its receipt window starts now."""
    await claimed(store, 1)  # lease of 60 s
    await store.write(RecoverLeases(OWNER, T0 + seconds(60), others_are_dead=False))
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0 + seconds(61)))
    [again] = await claim(store, T0 + seconds(62))
    assert again.attempts == 2
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0 + seconds(63)))
    msg = await store.find_message(sid(1))
    assert msg is not None and msg.status is Status.SENT
