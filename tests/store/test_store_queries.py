"""Parts due for a query_sm, and noting that one was asked: the store's half of query_sm."""

from __future__ import annotations

from msgspec.structs import replace

from store.commands import Accept, NoteQueried, RecordSubmitAccepted
from store.models import SmppAddress, StoredRoute
from store.sqlite import SqliteStore
from tests.store.store_kit import (
    CARRIER,
    T0,
    claim,
    claimed,
    new_message,
    receipt,
    seconds,
    sent,
    sid,
)


async def due(store: SqliteStore, at, *, after=10, window=3600, interval=60):
    parts = await store.parts_to_query(
        CARRIER,
        submitted_before=at - seconds(after),
        not_before=at - seconds(window),
        queried_before=at - seconds(interval),
        limit=100,
    )
    return [(p.message_sid, p.part_index, p.carrier_message_id, p.query_id) for p in parts]


async def test_parts_waiting_long_enough_are_due_with_the_id_as_the_smsc_wrote_it(
    store: SqliteStore,
) -> None:
    await claimed(store, 1)
    await store.write(RecordSubmitAccepted(sid(1), 0, CARRIER, "a1", T0, raw_message_id="00A1"))
    await sent(store, 2, now=T0 + seconds(5))
    assert await due(store, T0 + seconds(9)) == []  # not waiting long enough yet
    assert await due(store, T0 + seconds(20)) == [
        (sid(1), 0, "a1", "00A1"),
        (sid(2), 0, "2-0", "2-0"),  # no raw id kept: the key is the id
    ]
    [part] = await store.parts_to_query(
        CARRIER, T0 + seconds(1), T0 - seconds(1), T0 + seconds(1), 10
    )
    # Stored without a route: the sender as stored is all there is.
    assert (part.source, part.from_addr, part.submitted_at) == (None, "+15017122661", T0)


async def test_a_routed_part_is_asked_from_the_address_it_was_submitted_from(
    store: SqliteStore,
) -> None:
    route = StoredRoute(SmppAddress("Acme", 5, 0), SmppAddress("15558670003", 1, 1), ("m",))
    await store.write(Accept(replace(new_message(3), route=route), T0))
    await claim(store, T0, limit=1, lease_seconds=60)
    await store.write(RecordSubmitAccepted(sid(3), 0, CARRIER, "3-0", T0))
    [part] = await store.parts_to_query(
        CARRIER, T0 + seconds(1), T0 - seconds(1), T0 + seconds(1), 10
    )
    assert part.source == SmppAddress("Acme", 5, 0)


async def test_a_settled_part_or_one_past_its_window_is_not_due(store: SqliteStore) -> None:
    await sent(store, 1)
    await sent(store, 2)
    await receipt(store, "1-0", now=T0 + seconds(1))
    assert await due(store, T0 + seconds(20)) == [(sid(2), 0, "2-0", "2-0")]
    assert await due(store, T0 + seconds(20), window=15) == []


async def test_a_noted_part_is_asked_again_only_after_the_interval(store: SqliteStore) -> None:
    await sent(store, 1)
    await sent(store, 2)
    noted = await store.write(NoteQueried(CARRIER, ("1-0", "missing"), T0 + seconds(20)))
    assert noted == 1
    assert await due(store, T0 + seconds(30)) == [(sid(2), 0, "2-0", "2-0")]
    assert [p[0] for p in await due(store, T0 + seconds(81))] == [sid(1), sid(2)]
