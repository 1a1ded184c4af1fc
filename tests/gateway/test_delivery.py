"""The delivery lane with real parts: a SQLite store, an SMPP client, the simulator."""

from __future__ import annotations

import asyncio

import pytest

from gateway.clock import utc_now
from gateway.engine.policy import CarrierPolicy
from gateway.ids import MESSAGE, new_sid
from store.commands import Accept
from store.models import NewMessage
from tests.gateway.lane_kit import lane_rig


@pytest.fixture
async def lane_parts(tmp_path):
    policy = CarrierPolicy(max_attempts=2, retry_base=0.01, retry_max=0.02)
    async with lane_rig(tmp_path, policy=policy) as r:
        yield r.store, r.account, r.lane, r.smsc


async def _accept(store, lane, account, from_addr="+15017122661"):
    message = NewMessage(
        sid=new_sid(MESSAGE),
        account_sid=account.sid,
        from_addr=from_addr,
        to_addr="+14155552671",
        body="hello",
        num_segments=1,
        encoding="gsm7",
        carrier="sim",
    )
    now = utc_now()
    await store.write(Accept(message, now))
    lane.wake()
    return message.stored(now)


async def _final(store, account, sid, timeout=10.0):
    async with asyncio.timeout(timeout):
        while True:
            message = await store.get_message(account.sid, sid)
            if message.status in ("delivered", "undelivered", "failed"):
                return message
            await asyncio.sleep(0.02)


async def test_lane_delivers_a_stored_message(lane_parts):
    store, account, lane, smsc = lane_parts
    message = await _accept(store, lane, account)
    assert (await _final(store, account, message.sid)).status == "delivered"
    events = [(e.from_status, e.to_status) for e in await store.message_events(message.sid)]
    assert ("queued", "sending") in events and ("sending", "sent") in events
    assert smsc.stats.submits == 1


async def test_a_message_that_cannot_be_encoded_fails_after_its_retries_and_the_lane_goes_on(
    lane_parts,
):
    store, account, lane, smsc = lane_parts
    assert smsc.stats.submits == 0
    # 30 characters cannot be an SMPP source_addr (at most 20): the submit cannot be built.
    broken = await _accept(store, lane, account, from_addr="X" * 30)
    failed = await _final(store, account, broken.sid)
    assert failed.status == "failed"
    assert failed.error_code == 30008
    assert "internal error" in failed.error_message
    assert failed.attempts == 2
    healthy = await _accept(store, lane, account)
    assert (await _final(store, account, healthy.sid)).status == "delivered"


async def test_an_inbound_message_nobody_owns_is_acknowledged_and_logged_whole(lane_parts):
    import structlog
    from structlog.testing import capture_logs

    store, _account, lane, smsc = lane_parts
    await lane._client.wait_bound(5)
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(0))  # see warnings
    try:
        with capture_logs() as logs:
            smsc.send_mo(source_addr="447911123456", destination_addr="12345", text="STOP €5")
            await smsc.wait_for(lambda: smsc.stats.mo_acked == 1)
    finally:
        structlog.configure(**saved)
    inbound = [entry for entry in logs if entry["event"] == "inbound.unrouted"]
    assert len(inbound) == 1
    assert inbound[0]["text"] == "STOP €5" and inbound[0]["source"] == "447911123456"
    assert "no account owns this number" in inbound[0]["why"]
    assert sum((await store.count_by_status()).values()) == 0  # nothing stored: no owner


async def test_a_receipt_without_an_id_is_acknowledged_and_logged_not_redelivered_forever(
    lane_parts,
):
    """It can never match a message: answering it with an error (it was an IntegrityError, so
    ESME_RX_T_APPN) makes a real SMSC deliver it again, forever."""
    import structlog
    from structlog.testing import capture_logs

    from carriers.smpp import constants as c
    from carriers.smpp.pdus import DeliverSm

    _store, _account, lane, smsc = lane_parts
    await lane._client.wait_bound(5)
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(0))
    try:
        with capture_logs() as logs:
            smsc.send_deliver(
                DeliverSm(
                    esm_class=c.ESM_CLASS_SMSC_DELIVERY_RECEIPT,
                    source_addr="447911123456",
                    destination_addr="12345",
                    short_message=b"sub:001 dlvrd:001 stat:DELIVRD err:000 text:",
                )
            )
            await smsc.wait_for(lambda: smsc.stats.receipts_acked == 1)
    finally:
        structlog.configure(**saved)
    assert smsc.stats.deliver_errors == 0
    [entry] = [e for e in logs if e["event"] == "receipt.without_id"]
    assert entry["stat"] == "DELIVRD" and "stat:DELIVRD" in entry["text"]
