"""The dead-letter queue in the store: what enters it, replay (to the same or another carrier),
purge, the listing's filters; and the per-account queue cap."""

from __future__ import annotations

import pytest

from store.commands import (
    Accept,
    CallbackGiveUp,
    Cancel,
    ExpireValidity,
    FailGoneCarriers,
    PurgeDeadLetters,
    RecordSubmitFailed,
    ReplayDeadLetter,
)
from store.errors import AlreadyReplayed, QueueFull, StoreError, UnknownDeadLetter
from store.models import DeadLetterFilter, SmppAddress, StoredRoute
from store.sqlite import SqliteStore
from store.states import IllegalTransition, Status
from tests.store.store_kit import (
    ACCOUNT,
    CARRIER,
    HOOK,
    OTHER_ACCOUNT,
    T0,
    claim,
    claim_callbacks,
    claimed,
    new_message,
    seconds,
    sid,
)


def exhausted(n: int, *, dead_letter: str | None = "retries_exhausted", now=T0):
    return RecordSubmitFailed(
        sid(n),
        CARRIER,
        0x58,
        30001,
        "Retries exhausted after 1 attempt: throttled",
        None,
        True,
        now,
        dead_letter=dead_letter,
        bind="acme#0",
    )


async def dead(store: SqliteStore, **filters) -> list:
    return await store.dead_letters(DeadLetterFilter(**filters))


async def test_retries_exhausted_enter_the_queue_with_their_last_error(store: SqliteStore) -> None:
    await claimed(store, 1)
    msg = await store.write(exhausted(1))
    assert msg.status is Status.FAILED  # the API's view does not change
    [entry] = await dead(store)
    assert (entry.kind, entry.message_sid, entry.account_sid, entry.carrier) == (
        "message",
        sid(1),
        ACCOUNT,
        CARRIER,
    )
    assert (entry.reason, entry.error_code, entry.attempts) == ("retries_exhausted", 30001, 1)
    assert entry.error_message == "Retries exhausted after 1 attempt: throttled"
    assert entry.entered_at == T0 and entry.replayed_at is None
    # the history keeps the bind that answered, with the raw SMPP status
    last = (await store.message_events(sid(1)))[-1]
    assert (last.to_status, last.smpp_status, last.bind) == (Status.FAILED, 0x58, "acme#0")


async def test_a_carriers_own_refusal_is_not_a_dead_letter(store: SqliteStore) -> None:
    await claimed(store, 1)
    await store.write(exhausted(1, dead_letter=None))
    assert (await store.find_message(sid(1))).status is Status.FAILED
    assert await dead(store) == []


async def test_validity_run_out_enters_the_queue(store: SqliteStore) -> None:
    from msgspec.structs import replace

    await store.write(Accept(replace(new_message(1), validity_until=T0 + seconds(60)), T0))
    assert await store.write(ExpireValidity(T0 + seconds(61))) == [sid(1)]
    [entry] = await dead(store)
    assert (entry.reason, entry.error_code) == ("validity_expired", 30036)


async def test_messages_of_a_carrier_gone_from_the_config_fail_into_the_queue(
    store: SqliteStore,
) -> None:
    await store.write(Accept(new_message(1, carrier="old"), T0))
    await store.write(Accept(new_message(2, carrier="old"), T0))
    await store.write(Accept(new_message(3), T0))
    gone = await store.write(FailGoneCarriers((CARRIER,), T0, limit=1))
    assert gone == [sid(1)]  # the limit holds
    assert await store.write(FailGoneCarriers((CARRIER,), T0)) == [sid(2)]
    assert await store.write(FailGoneCarriers((CARRIER,), T0)) == []
    assert (await store.find_message(sid(3))).status is Status.QUEUED
    entries = await dead(store)
    assert [(e.message_sid, e.reason, e.error_code) for e in entries] == [
        (sid(1), "carrier_gone", 30008),
        (sid(2), "carrier_gone", 30008),
    ]


async def test_replay_is_a_recorded_new_attempt(store: SqliteStore) -> None:
    await claimed(store, 1, callback=HOOK)
    await store.write(exhausted(1))
    [entry] = await dead(store)
    later = T0 + seconds(600)
    replayed = await store.write(ReplayDeadLetter(entry.id, later))
    assert (replayed.replayed_at, replayed.replayed_to) == (later, CARRIER)
    msg = await store.find_message(sid(1))
    assert (msg.status, msg.attempts, msg.error_code, msg.error_message) == (
        Status.QUEUED,
        0,
        None,
        None,
    )
    assert (await store.message_events(sid(1)))[-1].reason == "replayed"
    # out of the open listing, kept for the audit
    assert await dead(store) == []
    assert [e.id for e in await dead(store, include_replayed=True)] == [entry.id]
    with pytest.raises(AlreadyReplayed, match="twice"):
        await store.write(ReplayDeadLetter(entry.id, later))
    # and it is sent again: claimed, from a fresh budget
    [again] = await claim(store, later)
    assert (again.sid, again.attempts) == (sid(1), 1)


async def test_replay_to_another_carrier_sends_every_part_there(store: SqliteStore) -> None:
    from store.commands import RecordSubmitAccepted

    await claimed(store, 1, segments=2)
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0))
    await store.write(exhausted(1))
    [entry] = await dead(store)
    route = StoredRoute(
        SmppAddress("15017122661", 1, 1), SmppAddress("15558670001", 1, 1), ("a", "b")
    )
    await store.write(ReplayDeadLetter(entry.id, T0, to_carrier="beta", route=route))
    assert await claim(store, T0) == []  # not acme's any more
    [msg] = await claim(store, T0, carrier="beta")
    assert (msg.carrier, msg.route, msg.num_segments) == ("beta", route, 2)
    assert msg.accepted_parts == ()  # acme took part 1; beta gets both
    assert (await store.message_events(sid(1)))[-2].reason == "replayed to carrier beta"


async def test_replay_to_another_carrier_needs_its_route(store: SqliteStore) -> None:
    await claimed(store, 1)
    await store.write(exhausted(1))
    [entry] = await dead(store)
    with pytest.raises(StoreError, match="route"):
        await store.write(ReplayDeadLetter(entry.id, T0, to_carrier="beta"))
    assert (await store.find_message(sid(1))).status is Status.FAILED


async def test_replay_gives_the_validity_period_again(store: SqliteStore) -> None:
    from msgspec.structs import replace

    await store.write(Accept(replace(new_message(1), validity_until=T0 + seconds(60)), T0))
    await store.write(ExpireValidity(T0 + seconds(61)))
    [entry] = await dead(store)
    later = T0 + seconds(3600)
    await store.write(ReplayDeadLetter(entry.id, later))
    msg = await store.find_message(sid(1))
    assert (msg.status, msg.validity_until) == (Status.QUEUED, later + seconds(60))
    assert await store.write(ExpireValidity(later + seconds(59))) == []


async def test_replay_of_a_message_no_longer_failed_or_unknown_is_refused(
    store: SqliteStore,
) -> None:
    with pytest.raises(UnknownDeadLetter):
        await store.write(ReplayDeadLetter(999, T0))
    await claimed(store, 1)
    await store.write(exhausted(1))
    [entry] = await dead(store)
    await store.write(ReplayDeadLetter(entry.id, T0))
    await claim(store, T0)
    await store.write(exhausted(1))  # dead again: a second entry
    first, second = await dead(store, include_replayed=True)
    assert first.id == entry.id and second.replayed_at is None
    await store.write(ReplayDeadLetter(second.id, T0))
    # a third entry cannot be made by hand; a replay of a message that is queued is illegal
    with pytest.raises((AlreadyReplayed, IllegalTransition)):
        await store.write(ReplayDeadLetter(second.id, T0))


async def test_a_callback_given_up_enters_the_queue_and_replays(store: SqliteStore) -> None:
    await claimed(store, 1, callback=HOOK)
    [callback] = await claim_callbacks(store, T0)
    await store.write(CallbackGiveUp(callback.id, "HTTP 410", T0))
    [entry] = await dead(store, kind="callback")
    assert (entry.callback_id, entry.reason, entry.message_sid) == (
        callback.id,
        "callback_failed",
        sid(1),
    )
    assert entry.error_message == f"StatusCallback {HOOK} (sending): HTTP 410"
    await store.write(ReplayDeadLetter(entry.id, T0 + seconds(5)))
    [again] = await claim_callbacks(store, T0 + seconds(5))
    assert (again.id, again.attempts, again.status) == (callback.id, 0, Status.SENDING)


async def test_a_stale_callback_is_not_replayed(store: SqliteStore) -> None:
    from store.commands import RecordSubmitAccepted

    await claimed(store, 1, callback=HOOK)  # `sending`
    [first] = await claim_callbacks(store, T0, 1)
    await store.write(CallbackGiveUp(first.id, "HTTP 410", T0))
    [entry] = await dead(store, kind="callback")
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "1-0", T0))  # `sent` since
    with pytest.raises(StoreError, match="newer status"):
        await store.write(ReplayDeadLetter(entry.id, T0))


async def test_listing_filters_and_purge(store: SqliteStore) -> None:
    await store.write(Accept(new_message(1, carrier="old"), T0))
    await store.write(Accept(new_message(2, carrier="old", account=OTHER_ACCOUNT), T0))
    await store.write(FailGoneCarriers((CARRIER,), T0 + seconds(10)))
    await claimed(store, 3)
    await store.write(exhausted(3, now=T0 + seconds(20)))
    assert len(await dead(store)) == 3
    assert [e.message_sid for e in await dead(store, carrier="old")] == [sid(1), sid(2)]
    assert [e.message_sid for e in await dead(store, account_sid=OTHER_ACCOUNT)] == [sid(2)]
    assert [e.message_sid for e in await dead(store, error_code=30001)] == [sid(3)]
    assert [e.message_sid for e in await dead(store, since=T0 + seconds(15))] == [sid(3)]
    assert [e.message_sid for e in await dead(store, limit=1)] == [sid(1)]
    first = (await dead(store))[0]
    assert [e.message_sid for e in await dead(store, after_id=first.id)] == [sid(2), sid(3)]
    assert await store.dead_letter(first.id) == first
    ids = tuple(e.id for e in await dead(store, carrier="old"))
    assert await store.write(PurgeDeadLetters(ids)) == 2
    assert [e.message_sid for e in await dead(store)] == [sid(3)]
    assert (await store.find_message(sid(1))).status is Status.FAILED  # the message stays


# -- the per-account queue cap ------------------------------------------------------------


async def test_the_queue_cap_refuses_beyond_its_count_and_frees_as_messages_leave(
    store: SqliteStore,
) -> None:
    from msgspec.structs import replace

    from store.commands import RecordSubmitAccepted

    futures = [store.write(Accept(new_message(n), T0, max_unsent=3)) for n in range(5)]
    results = [await _outcome(f) for f in futures]
    assert [type(r).__name__ for r in results] == ["NoneType"] * 3 + ["QueueFull"] * 2
    assert "3 unsent messages, its queue cap is 3" in str(results[3])
    # another account is not concerned; nor is an uncapped accept
    await store.write(Accept(new_message(10, account=OTHER_ACCOUNT), T0, max_unsent=3))
    # sending still counts (not yet on a carrier for sure); sent does not
    [msg, *_] = await claim(store, T0, limit=1)
    with pytest.raises(QueueFull):
        await store.write(Accept(new_message(5), T0, max_unsent=3))
    await store.write(RecordSubmitAccepted(msg.sid, 0, CARRIER, "x-0", T0))
    await store.write(Accept(new_message(5), T0, max_unsent=3))
    # a scheduled message counts; a canceled one frees its place
    with pytest.raises(QueueFull):
        await store.write(
            Accept(replace(new_message(6), send_at=T0 + seconds(3600)), T0, max_unsent=3)
        )
    await store.write(Cancel(ACCOUNT, sid(5), T0))
    await store.write(Accept(replace(new_message(6), send_at=T0 + seconds(3600)), T0, max_unsent=3))


async def _outcome(future):
    try:
        return await future
    except Exception as exc:
        return exc
