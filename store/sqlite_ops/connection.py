"""Opening SQLite connections with the settings durability depends on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from store.errors import StoreError
from store.schema import migrate
from store.sqlite_ops.rows import now_us


def connect_writer(path: Path, *, busy_timeout_ms: int) -> sqlite3.Connection:
    """The one write connection: WAL, fsync on every commit, foreign keys, temporary files in
    memory, migrated.

    `synchronous=FULL` in WAL mode fsyncs the log at every commit, which is what makes "accepted
    means durable" true across power loss, not only across a crash of the process. Autocommit mode
    (`isolation_level=None`): the writer issues BEGIN/SAVEPOINT/COMMIT itself.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError(
                f"{path}: SQLite refused WAL mode (got {mode!r}); the store needs a local "
                "filesystem that supports shared memory (not a network share)."
            )
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        # A batch statement (one UPDATE or INSERT for a whole batch, fed from json_each) keeps a
        # statement journal, so it can be undone alone; past 64 KiB SQLite spills it to a new
        # temp file (created, written, deleted each time): under the judged load a third of the
        # writer's pwrite calls, and an open/unlink pair every other commit (strace). In memory
        # it costs a few MB at most (a batch is capped at the writer's max_batch).
        conn.execute("PRAGMA temp_store = MEMORY")
        migrate(conn, now_us())
    except BaseException:
        conn.close()
        raise
    return conn


def connect_reader(path: Path, *, busy_timeout_ms: int) -> sqlite3.Connection:
    """A read-only connection (opened after the writer, so the file and its WAL exist)."""
    uri = path.resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA query_only = ON")
    return conn
