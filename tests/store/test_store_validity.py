"""ValidityPeriod in the store: a message not submitted by the end of its validity fails (30036),
whether the delivery engine tries to claim it or nothing claims at all (the carrier is down)."""

from __future__ import annotations

from msgspec.structs import replace

from store.commands import Accept, ExpireValidity
from store.sqlite import SqliteStore
from store.states import Status
from tests.store.store_kit import (
    ACCOUNT,
    HOOK,
    T0,
    claim,
    claim_callbacks,
    new_message,
    seconds,
    sid,
)


async def accept_valid_for(store: SqliteStore, n: int, valid: float | None, **options) -> None:
    until = None if valid is None else T0 + seconds(valid)
    await store.write(Accept(replace(new_message(n, **options), validity_until=until), T0))


async def test_the_validity_is_kept_with_the_message(store: SqliteStore) -> None:
    await accept_valid_for(store, 1, 600)
    message = await store.get_message(ACCOUNT, sid(1))
    assert message is not None and message.validity_until == T0 + seconds(600)


async def test_a_claim_after_the_validity_fails_it_instead_of_sending_it(
    store: SqliteStore,
) -> None:
    await accept_valid_for(store, 1, 60, callback=HOOK)
    await accept_valid_for(store, 2, 600)
    await accept_valid_for(store, 3, None)
    claimed = await claim(store, T0 + seconds(61))
    assert [m.sid for m in claimed] == [sid(2), sid(3)]
    expired = await store.get_message(ACCOUNT, sid(1))
    assert expired is not None and (expired.status, expired.error_code) == (Status.FAILED, 30036)
    events = await store.message_events(sid(1))
    assert (events[-1].from_status, events[-1].to_status, events[-1].reason) == (
        Status.QUEUED, Status.FAILED, "validity_expired"
    )  # fmt: skip
    [callback] = await claim_callbacks(store, T0 + seconds(61), 10)
    assert (callback.message_sid, callback.status, callback.error_code) == (
        sid(1), Status.FAILED, 30036
    )  # fmt: skip


async def test_the_sweep_fails_expired_messages_that_nothing_claims(store: SqliteStore) -> None:
    await accept_valid_for(store, 1, 60)
    await accept_valid_for(store, 2, 30)
    await accept_valid_for(store, 3, 600)
    await accept_valid_for(store, 4, None)
    assert await store.write(ExpireValidity(T0 + seconds(29))) == []
    assert await store.write(ExpireValidity(T0 + seconds(60))) == [sid(2), sid(1)]
    statuses = {n: (await store.get_message(ACCOUNT, sid(n))).status for n in (1, 2, 3, 4)}
    assert statuses == {1: Status.FAILED, 2: Status.FAILED, 3: Status.QUEUED, 4: Status.QUEUED}
    assert await store.write(ExpireValidity(T0 + seconds(60))) == []  # once only


async def test_a_message_being_sent_is_left_to_its_carrier(store: SqliteStore) -> None:
    await accept_valid_for(store, 1, 60)
    await claim(store, T0)
    assert await store.write(ExpireValidity(T0 + seconds(120))) == []
    message = await store.get_message(ACCOUNT, sid(1))
    assert message is not None and message.status is Status.SENDING
