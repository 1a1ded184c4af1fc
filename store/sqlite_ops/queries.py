"""Reads that answer the API, the admin CLI, metrics and the delivery engine's scheduler."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from store.models import Message, MessageEvent
from store.sqlite_ops import rows
from store.states import Status


def get_message(conn: sqlite3.Connection, account_sid: str, sid: str) -> Message | None:
    row = conn.execute(
        "SELECT * FROM messages WHERE sid = ? AND account_sid = ?", (sid, account_sid)
    ).fetchone()
    return None if row is None else rows.message(row)


def message_events(conn: sqlite3.Connection, sid: str) -> list[MessageEvent]:
    cursor = conn.execute("SELECT * FROM message_events WHERE message_sid = ? ORDER BY id", (sid,))
    return [rows.event(r) for r in cursor]


def count_by_status(conn: sqlite3.Connection) -> dict[str, int]:
    """Every status, zero included, so a metrics exporter sees a stable set of series."""
    counts = dict.fromkeys((str(s) for s in Status), 0)
    for status, count in conn.execute("SELECT status, COUNT(*) FROM messages GROUP BY status"):
        counts[status] = count
    return counts


# Both read the queue through `messages_due` (forced: left alone, SQLite may prefer the status index
# and walk every carrier's queue).


def pending_work(conn: sqlite3.Connection, carrier: str) -> int:
    return conn.execute(
        f"""SELECT COUNT(*) FROM messages INDEXED BY messages_due
            WHERE carrier = ? AND status = '{Status.QUEUED}'""",
        (carrier,),
    ).fetchone()[0]


def next_due_at(conn: sqlite3.Connection, carrier: str) -> datetime | None:
    row = conn.execute(
        f"""SELECT MIN(next_attempt_at) FROM messages INDEXED BY messages_due
            WHERE carrier = ? AND status = '{Status.QUEUED}'""",
        (carrier,),
    ).fetchone()
    return rows.opt_from_us(row[0])
