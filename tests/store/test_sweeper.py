"""The sweeper's pass over a real store: held receipts that never matched are purged, with a
warning an operator can act on (usually a receipt_id_format that does not fit the carrier)."""

from __future__ import annotations

import pytest
import structlog
from structlog.testing import capture_logs

import gateway.engine.sweeper as sweeper_module
from gateway.engine.policy import CarrierPolicy
from gateway.engine.sweeper import PURGED_IDS_LOGGED, Sweeper
from store.lifecycle import ORPHAN_HOLD_SECONDS
from store.sqlite import SqliteStore
from tests.store.store_kit import CARRIER, T0, receipt, seconds


@pytest.fixture(autouse=True)
def sweeper_warnings_visible(monkeypatch):
    """Earlier tests in this process may have filtered warnings out (tests/carriers quiets
    structlog for the session) or cached the module's logger with a daemon's processors, out of
    capture_logs' reach: let warnings through, and give the sweeper a fresh logger."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(0))
    monkeypatch.setattr(sweeper_module, "log", structlog.get_logger("gateway.sweeper"))
    yield
    structlog.configure(**saved)


async def test_a_sweep_purges_stale_orphans_and_warns_per_carrier(store: SqliteStore) -> None:
    for n in range(PURGED_IDS_LOGGED + 5):
        await receipt(store, f"never-{n:02d}", now=T0)
    await receipt(store, "recent", now=T0 + seconds(ORPHAN_HOLD_SECONDS))
    sweeper = Sweeper(
        store, {CARRIER: CarrierPolicy()}, clock=lambda: T0 + seconds(ORPHAN_HOLD_SECONDS + 1)
    )
    with capture_logs() as logs:
        await sweeper.sweep()
    warnings = [e for e in logs if e["event"] == "receipts.orphans_purged"]
    assert len(warnings) == 1
    (warning,) = warnings
    assert (warning["log_level"], warning["carrier"], warning["count"]) == (
        "warning",
        CARRIER,
        PURGED_IDS_LOGGED + 5,
    )
    assert warning["message_ids"] == [f"never-{n:02d}" for n in range(PURGED_IDS_LOGGED)]
    with capture_logs() as logs:
        await sweeper.sweep()  # the recent one is still held; nothing more to say
    assert not [e for e in logs if e["event"] == "receipts.orphans_purged"]


async def test_a_sweep_receives_inbound_messages_whose_parts_stopped_coming(
    store: SqliteStore,
) -> None:
    from carriers.smpp.text import decode_text
    from store import Status
    from store.commands import RecordInbound
    from tests.store.store_kit import ACCOUNT

    started = await store.write(
        RecordInbound(
            sid="SM" + "1" * 32, account_sid=ACCOUNT, carrier=CARRIER, from_addr="+447911123456",
            to_addr="12345", data_coding=0, payload=b"half", concat=(1, 2, 1), encoding="gsm7",
            decode=decode_text, now=T0,
        )
    )  # fmt: skip
    sweeper = Sweeper(
        store, {CARRIER: CarrierPolicy()}, reassembly_timeout=60, clock=lambda: T0 + seconds(61)
    )
    with capture_logs() as logs:
        await sweeper.sweep()
    [warning] = [e for e in logs if e["event"] == "inbound.incomplete"]
    assert warning["sids"] == [started.message_sid]
    msg = await store.get_message(ACCOUNT, started.message_sid)
    assert (msg.status, msg.body) == (Status.RECEIVED, "half")
