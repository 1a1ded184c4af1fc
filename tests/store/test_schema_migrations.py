from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store import Status
from store.commands import (
    Accept,
    CallbackDelivered,
    Claim,
    CreateAccount,
    RecordSubmitAccepted,
    RecoverLeases,
)
from store.errors import SchemaTooNew
from store.schema import LATEST_VERSION, MIGRATIONS, Migration, current_version, migrate
from store.sqlite import SqliteStore
from tests.store.store_kit import (
    ACCOUNT,
    CARRIER,
    OWNER,
    T0,
    claim_callbacks,
    new_message,
    raw,
    receipt,
    seconds,
    sid,
    us,
)

EXTRA = Migration(
    LATEST_VERSION + 1,
    "test-only: a column a future smsgw might add",
    ("ALTER TABLE messages ADD COLUMN future_column INTEGER",),
)


def plain(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


async def test_open_creates_the_directory_file_and_latest_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "smsgw.db"
    async with SqliteStore(path):
        pass
    with plain(path) as conn:
        assert current_version(conn) == LATEST_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "schema_version",
        "accounts",
        "messages",
        "message_parts",
        "message_events",
        "orphan_receipts",
        "callbacks",
    } <= tables


async def test_reopening_keeps_data_and_applies_nothing_twice(db_path: Path) -> None:
    async with SqliteStore(db_path) as store:
        await store.write(CreateAccount(ACCOUNT, "Main", "token", T0))
        await store.write(Accept(new_message(1), T0))
    async with SqliteStore(db_path) as store:
        assert (await store.get_message(ACCOUNT, sid(1))) is not None
    with plain(db_path) as conn:
        applied = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
    assert applied == [m.version for m in MIGRATIONS]


async def test_a_newer_smsgw_upgrades_an_existing_file_in_place(db_path: Path) -> None:
    async with SqliteStore(db_path) as store:
        await store.write(CreateAccount(ACCOUNT, "Main", "token", T0))
        await store.write(Accept(new_message(1), T0))
    with plain(db_path) as conn:
        assert migrate(conn, 0, (*MIGRATIONS, EXTRA)) == EXTRA.version
        columns = {r[1] for r in conn.execute("PRAGMA table_info(messages)")}
        assert "future_column" in columns
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 1
        # and running it again is a no-op
        assert migrate(conn, 0, (*MIGRATIONS, EXTRA)) == EXTRA.version


async def test_an_older_smsgw_refuses_a_file_from_a_newer_one(db_path: Path) -> None:
    async with SqliteStore(db_path):
        pass
    with plain(db_path) as conn:
        migrate(conn, 0, (*MIGRATIONS, EXTRA))
    with pytest.raises(SchemaTooNew, match=f"version {EXTRA.version}.*Upgrade smsgw"):
        await SqliteStore(db_path).open()


def test_a_failing_migration_leaves_the_file_at_the_previous_version(tmp_path: Path) -> None:
    broken = Migration(LATEST_VERSION + 1, "broken", ("CREATE TABLE x (a)", "NOT SQL"))
    with plain(tmp_path / "m.db") as conn:
        with pytest.raises(sqlite3.OperationalError):
            migrate(conn, 0, (*MIGRATIONS, broken))
        assert current_version(conn) == LATEST_VERSION
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'x'").fetchone() is None


def test_migrations_must_be_numbered_without_gaps(tmp_path: Path) -> None:
    gap = Migration(LATEST_VERSION + 2, "gap", ())
    with plain(tmp_path / "m.db") as conn, pytest.raises(ValueError, match="without gaps"):
        migrate(conn, 0, (*MIGRATIONS, gap))


# -- version 1 → 2 on a file holding data ----------------------------------------------------

HOOK_URL = "https://hooks.example.com/status"


def write_v1_file(path: Path) -> None:
    """A file as smsgw with schema 1 left it: one message sent (its `sending` callback delivered,
    `sent` pending), one in flight under a dead daemon's lease, one delivered without a URL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = us(T0)
    with raw(path) as conn:
        assert migrate(conn, 0, MIGRATIONS[:1]) == 1
        conn.execute(
            "INSERT INTO accounts VALUES (?, 'Main', 'token', 'active', ?, ?)", (ACCOUNT, t0, t0)
        )
        for n, status, callback, attempts, lease, sent_at, updated in (
            (1, "sent", HOOK_URL, 1, None, t0, t0),
            (2, "sending", HOOK_URL, 1, ("old-daemon", t0 + 300_000_000), None, t0),
            (3, "delivered", None, 1, None, None, t0 + 5_000_000),
        ):
            owner, expires = lease or (None, None)
            conn.execute(
                """INSERT INTO messages (sid, account_sid, direction, from_addr, to_addr, body,
                       status, num_segments, encoding, carrier, status_callback, attempts,
                       next_attempt_at, lease_owner, lease_expires_at, date_created,
                       date_updated, date_sent)
                   VALUES (?, ?, 'outbound-api', '+15017122661', '+15558670001', 'hi', ?, 1,
                           'gsm7', 'acme', ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    sid(n),
                    ACCOUNT,
                    status,
                    callback,
                    attempts,
                    t0,
                    owner,
                    expires,
                    t0,
                    updated,
                    sent_at,
                ),
            )
        for n, status in ((1, "sent"), (3, "delivered")):
            conn.execute(
                """INSERT INTO message_parts (message_sid, part_index, carrier,
                       carrier_message_id, status) VALUES (?, 0, 'acme', ?, ?)""",
                (sid(n), f"{n}-0", status),
            )
        for n, status, state in (
            (1, "sending", "done"),
            (1, "sent", "pending"),
            (2, "sending", "done"),
        ):
            conn.execute(
                """INSERT INTO callbacks (message_sid, url, status, attempts, next_attempt_at,
                       state, created_at, updated_at) VALUES (?, ?, ?, 0, ?, ?, ?, ?)""",
                (sid(n), HOOK_URL, status, t0, state, t0, t0),
            )


async def test_schema_1_file_with_data_is_migrated_to_the_latest(db_path: Path) -> None:
    write_v1_file(db_path)
    async with SqliteStore(db_path, owner=OWNER):
        pass
    with raw(db_path) as conn:
        assert current_version(conn) == LATEST_VERSION == 7
        messages = {
            r["sid"]: (r["route"], r["reported_status"])
            for r in conn.execute("SELECT sid, route, reported_status FROM messages")
        }
        parts = dict(conn.execute("SELECT carrier_message_id, submitted_at FROM message_parts"))
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        callback_columns = {r[1] for r in conn.execute("PRAGMA table_info(callbacks)")}
        raw_ids = conn.execute("SELECT raw_message_id, queried_at FROM message_parts").fetchall()
        callbacks_kept = conn.execute("SELECT COUNT(*) FROM callbacks").fetchone()[0]
        backlog = dict(conn.execute("SELECT account_sid, unsent FROM account_backlog"))
        statuses = [r[0] for r in conn.execute("SELECT status FROM messages")]
        event_columns = {r[1] for r in conn.execute("PRAGMA table_info(message_events)")}
    # v7 rebuilt the outbox (to allow `skipped`) without losing a row, counted the unsent
    # messages per account for the queue cap, and added the bind to the history
    assert callbacks_kept == 3
    unsent = sum(s in ("scheduled", "queued", "sending") for s in statuses)
    assert backlog == ({ACCOUNT: unsent} if unsent else {})
    assert "bind" in event_columns and "dead_letters_open" in indexes
    # the newest callback's status, whatever its state; NULL where none was ever written
    assert messages == {sid(1): (None, "sent"), sid(2): (None, "sending"), sid(3): (None, None)}
    # when the part was accepted: the message's date_sent, else its last update
    assert parts == {"1-0": us(T0), "3-0": us(T0) + 5_000_000}
    assert {"messages_leases", "message_parts_waiting", "messages_receiving"} <= indexes
    assert {"inbound_parts_key", "inbound_parts_received"} <= indexes
    assert "lease_owner" in callback_columns
    # parts from before v5: no raw id kept (query_sm asks with the key), never queried
    assert {tuple(r) for r in raw_ids} == {(None, None)}


async def test_a_migrated_file_carries_on_where_schema_1_left_off(db_path: Path) -> None:
    write_v1_file(db_path)
    async with SqliteStore(db_path, owner=OWNER) as store:
        msg = await store.get_message(ACCOUNT, sid(1))
        assert msg is not None and msg.route is None and msg.status is Status.SENT
        # the receipt window counts from the migrated submit time (date_sent)
        later = T0 + seconds(3600)
        assert (await receipt(store, "1-0", now=later, window_seconds=1800)).matched is False
        outcome = await receipt(store, "1-0", now=later)
        assert (outcome.message_sid, outcome.new_status) == (sid(1), Status.DELIVERED)
        # the dead daemon's message goes back in line and is sent again; `sending` was already
        # reported under schema 1 (reported_status), so it is not reported twice
        assert await store.write(RecoverLeases(OWNER, later, others_are_dead=True)) == 1
        [again] = await store.write(Claim(CARRIER, 1, OWNER, 30, later))
        assert (again.sid, again.attempts) == (sid(2), 2)
        await store.write(RecordSubmitAccepted(sid(2), 0, CARRIER, "2-0", later))
        told = []
        while batch := await claim_callbacks(store, later):
            for callback in batch:
                told.append((callback.message_sid, callback.status))
                await store.write(CallbackDelivered(callback.id, later))
        assert [s for m, s in told if m == sid(1)] == [Status.SENT, Status.DELIVERED]
        assert [s for m, s in told if m == sid(2)] == [Status.SENT]


# -- version 2 → 3: carrier message ids under the auto key --------------------------------------


async def test_ids_awaiting_a_receipt_are_keyed_as_receipts_will_be(db_path: Path) -> None:
    """Parts still `sent` and held receipts take the `auto` key (case and leading zeros do not
    count), so a receipt that comes after the upgrade still finds its message."""
    write_v1_file(db_path)
    with raw(db_path) as conn:
        assert migrate(conn, 0, MIGRATIONS[:2]) == 2
        conn.execute("UPDATE message_parts SET carrier_message_id = '000A1B' WHERE status = 'sent'")
        conn.execute("UPDATE message_parts SET carrier_message_id = '00C' WHERE status != 'sent'")
        conn.execute(
            """INSERT INTO orphan_receipts (carrier, carrier_message_id, stat, delivered, final,
                   received_at) VALUES ('acme', '0FF', 'DELIVRD', 1, 1, 0)"""
        )
    async with SqliteStore(db_path, owner=OWNER) as store:
        with raw(db_path) as conn:
            assert current_version(conn) == LATEST_VERSION
            parts = dict(conn.execute("SELECT status, carrier_message_id FROM message_parts"))
            held = [r[0] for r in conn.execute("SELECT carrier_message_id FROM orphan_receipts")]
        assert parts == {"sent": "a1b", "delivered": "00C"}  # a settled part is left as it was
        assert held == ["ff"]
        outcome = await receipt(store, "a1b", now=T0 + seconds(60))
        assert (outcome.message_sid, outcome.new_status) == (sid(1), Status.DELIVERED)
