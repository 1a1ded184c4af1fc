"""Inbound (MO) messages in the store: whole ones, parts joined in order whatever order they come
in, duplicates, a wait that runs out, and an owner that does not exist."""

from __future__ import annotations

import pytest

from carriers.smpp.text import decode_text
from store import Status, UnknownAccount
from store.commands import CompleteStaleInbound, RecordInbound
from store.models import INBOUND, InboundOutcome
from store.sqlite import SqliteStore
from tests.store.store_kit import ACCOUNT, CARRIER, OTHER_ACCOUNT, T0, seconds

SENDER, NUMBER = "+447911123456", "12345"


def part(n: int, payload: bytes, concat=None, *, at=T0, sender=SENDER, account=ACCOUNT,
         data_coding: int = 0, window: float = 3600.0) -> RecordInbound:  # fmt: skip
    return RecordInbound(
        sid=f"SM{n:032x}", account_sid=account, carrier=CARRIER, from_addr=sender,
        to_addr=NUMBER, data_coding=data_coding, payload=payload, concat=concat,
        encoding="ucs2" if data_coding == 8 else "gsm7", decode=decode_text, now=at,
        reassembly_seconds=window,
    )  # fmt: skip


async def test_a_whole_message_is_received_at_once(store: SqliteStore) -> None:
    outcome = await store.write(part(1, b"STOP"))
    assert outcome == InboundOutcome(f"SM{1:032x}", Status.RECEIVED)
    msg = await store.get_message(ACCOUNT, outcome.message_sid)
    assert (msg.direction, msg.status, msg.body, msg.from_addr, msg.to_addr) == (
        INBOUND, Status.RECEIVED, "STOP", SENDER, NUMBER
    )  # fmt: skip
    [event] = await store.message_events(outcome.message_sid)
    assert (event.from_status, event.to_status, event.reason) == (None, Status.RECEIVED, "received")


async def test_parts_out_of_order_make_one_message_joined_before_decoding(
    store: SqliteStore,
) -> None:
    # A surrogate pair (😀) split across parts 2 and 3: decoding each part alone would garble it.
    octets = "ab😀c".encode("utf-16-be")
    chunks = [octets[0:4], octets[4:6], octets[6:]]
    third = await store.write(part(3, chunks[2], (7, 3, 3), data_coding=8))
    assert third.status is Status.RECEIVING
    first = await store.write(part(1, chunks[0], (7, 3, 1), data_coding=8, at=T0 + seconds(1)))
    assert first == InboundOutcome(third.message_sid, Status.RECEIVING)
    msg = await store.get_message(ACCOUNT, third.message_sid)
    assert (msg.status, msg.num_segments, msg.body) == (Status.RECEIVING, 3, "")
    last = await store.write(part(2, chunks[1], (7, 3, 2), data_coding=8, at=T0 + seconds(2)))
    assert last == InboundOutcome(third.message_sid, Status.RECEIVED)
    msg = await store.get_message(ACCOUNT, third.message_sid)
    assert (msg.status, msg.body, msg.encoding) == (Status.RECEIVED, "ab😀c", "ucs2")
    reasons = [e.reason for e in await store.message_events(msg.sid)]
    assert reasons == ["first_part_received", "reassembled"]


async def test_a_part_delivered_twice_is_stored_once(store: SqliteStore) -> None:
    await store.write(part(1, b"one ", (9, 2, 1)))
    again = await store.write(part(2, b"one ", (9, 2, 1)))
    assert again.duplicate and again.status is Status.RECEIVING
    done = await store.write(part(3, b"two", (9, 2, 2)))
    msg = await store.get_message(ACCOUNT, done.message_sid)
    assert (msg.status, msg.body) == (Status.RECEIVED, "one two")


async def test_parts_of_other_senders_or_references_never_mix(store: SqliteStore) -> None:
    a = await store.write(part(1, b"A1", (5, 2, 1)))
    b = await store.write(part(2, b"B1", (5, 2, 1), sender="+447911000000"))
    c = await store.write(part(3, b"C1", (6, 2, 1)))
    assert len({a.message_sid, b.message_sid, c.message_sid}) == 3
    done = await store.write(part(4, b"A2", (5, 2, 2)))
    assert done.message_sid == a.message_sid
    assert (await store.get_message(ACCOUNT, a.message_sid)).body == "A1A2"


async def test_a_reference_reused_after_the_window_starts_a_new_message(
    store: SqliteStore,
) -> None:
    old = await store.write(part(1, b"old", (5, 2, 1), window=60))
    new = await store.write(part(2, b"new", (5, 2, 1), at=T0 + seconds(61), window=60))
    assert new.message_sid != old.message_sid and not new.duplicate


async def test_a_message_whose_parts_stop_coming_is_received_with_what_came(
    store: SqliteStore,
) -> None:
    started = await store.write(part(1, b"first ", (3, 3, 1)))
    await store.write(part(2, b"third", (3, 3, 3), at=T0 + seconds(30)))
    # Not stale yet: its newest part is younger than the cut-off.
    stale = CompleteStaleInbound(T0 + seconds(20), T0 + seconds(80), decode_text)
    assert await store.write(stale) == []
    stale = CompleteStaleInbound(T0 + seconds(31), T0 + seconds(91), decode_text)
    assert await store.write(stale) == [started.message_sid]
    msg = await store.get_message(ACCOUNT, started.message_sid)
    assert (msg.status, msg.body) == (Status.RECEIVED, "first third")
    assert msg.error_message == "Part(s) 2 of 3 never arrived."
    assert (await store.message_events(msg.sid))[-1].reason == "reassembly_timed_out"
    late = await store.write(part(4, b"second ", (3, 3, 2), at=T0 + seconds(95)))
    assert late.message_sid != msg.sid  # it can no longer join a received message


async def test_an_owner_that_does_not_exist_refuses_the_message(store: SqliteStore) -> None:
    with pytest.raises(UnknownAccount):
        await store.write(part(1, b"hi", account="AC" + "f" * 32))
    ok = await store.write(part(2, b"hi", account=OTHER_ACCOUNT))
    assert (await store.get_message(OTHER_ACCOUNT, ok.message_sid)).body == "hi"
