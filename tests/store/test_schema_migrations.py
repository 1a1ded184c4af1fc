from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store.errors import SchemaTooNew
from store.schema import LATEST_VERSION, MIGRATIONS, Migration, current_version, migrate
from store.sqlite import SqliteStore
from tests.store.store_kit import ACCOUNT, T0, new_message, sid

EXTRA = Migration(
    LATEST_VERSION + 1,
    "test-only: a column a future smsgw might add",
    ("ALTER TABLE messages ADD COLUMN validity_until INTEGER",),
)


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


async def test_open_creates_the_directory_file_and_latest_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "smsgw.db"
    async with SqliteStore(path):
        pass
    with raw(path) as conn:
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
        await store.create_account(ACCOUNT, "Main", "token", T0)
        await store.accept(new_message(1), T0)
    async with SqliteStore(db_path) as store:
        assert (await store.get_message(ACCOUNT, sid(1))) is not None
    with raw(db_path) as conn:
        applied = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
    assert applied == [m.version for m in MIGRATIONS]


async def test_a_newer_smsgw_upgrades_an_existing_file_in_place(db_path: Path) -> None:
    async with SqliteStore(db_path) as store:
        await store.create_account(ACCOUNT, "Main", "token", T0)
        await store.accept(new_message(1), T0)
    with raw(db_path) as conn:
        assert migrate(conn, 0, (*MIGRATIONS, EXTRA)) == EXTRA.version
        columns = {r[1] for r in conn.execute("PRAGMA table_info(messages)")}
        assert "validity_until" in columns
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 1
        # and running it again is a no-op
        assert migrate(conn, 0, (*MIGRATIONS, EXTRA)) == EXTRA.version


async def test_an_older_smsgw_refuses_a_file_from_a_newer_one(db_path: Path) -> None:
    async with SqliteStore(db_path):
        pass
    with raw(db_path) as conn:
        migrate(conn, 0, (*MIGRATIONS, EXTRA))
    with pytest.raises(SchemaTooNew, match=f"version {EXTRA.version}.*Upgrade smsgw"):
        await SqliteStore(db_path).open()


def test_a_failing_migration_leaves_the_file_at_the_previous_version(tmp_path: Path) -> None:
    broken = Migration(LATEST_VERSION + 1, "broken", ("CREATE TABLE x (a)", "NOT SQL"))
    with raw(tmp_path / "m.db") as conn:
        with pytest.raises(sqlite3.OperationalError):
            migrate(conn, 0, (*MIGRATIONS, broken))
        assert current_version(conn) == LATEST_VERSION
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'x'").fetchone() is None


def test_migrations_must_be_numbered_without_gaps(tmp_path: Path) -> None:
    gap = Migration(LATEST_VERSION + 2, "gap", ())
    with raw(tmp_path / "m.db") as conn, pytest.raises(ValueError, match="without gaps"):
        migrate(conn, 0, (*MIGRATIONS, gap))
