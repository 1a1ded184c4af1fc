"""Reads that answer the API, the admin CLI, metrics and the delivery engine's scheduler."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from store.models import CallbackRecord, Message, MessageEvent, PartToQuery
from store.sqlite_ops import rows
from store.states import PartState, Status


def find_message(conn: sqlite3.Connection, sid: str) -> Message | None:
    """The message whatever its account (the operator's view, never the API's)."""
    row = conn.execute("SELECT * FROM messages WHERE sid = ?", (sid,)).fetchone()
    return None if row is None else rows.message(row)


def get_message(conn: sqlite3.Connection, account_sid: str, sid: str) -> Message | None:
    """The message if `account_sid` owns it (the API's view)."""
    message = find_message(conn, sid)
    return message if message is not None and message.account_sid == account_sid else None


def message_callbacks(conn: sqlite3.Connection, sid: str) -> list[CallbackRecord]:
    cursor = conn.execute(
        """SELECT id, status, state, attempts, last_error, created_at, updated_at
           FROM callbacks WHERE message_sid = ? ORDER BY id""",
        (sid,),
    )
    return [
        CallbackRecord(
            id=r["id"],
            status=Status(r["status"]),
            state=r["state"],
            attempts=r["attempts"],
            last_error=r["last_error"],
            created_at=rows.from_us(r["created_at"]),
            updated_at=rows.from_us(r["updated_at"]),
        )
        for r in cursor
    ]


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


def next_scheduled_at(conn: sqlite3.Connection) -> datetime | None:
    row = conn.execute(
        f"""SELECT MIN(next_attempt_at) FROM messages INDEXED BY messages_scheduled
            WHERE status = '{Status.SCHEDULED}'"""
    ).fetchone()
    return rows.opt_from_us(row[0])


def parts_to_query(
    conn: sqlite3.Connection,
    carrier: str,
    submitted_before: datetime,
    not_before: datetime,
    queried_before: datetime,
    limit: int,
) -> list[PartToQuery]:
    """Parts of `carrier` still waiting for a receipt, submitted between `not_before` (the
    receipt window's start) and `submitted_before`, never queried or last queried before
    `queried_before`; oldest submit first."""
    cursor = conn.execute(
        f"""SELECT p.message_sid, p.part_index, p.carrier_message_id,
                   COALESCE(p.raw_message_id, p.carrier_message_id), m.route, m.from_addr,
                   p.submitted_at
            FROM message_parts AS p INDEXED BY message_parts_waiting
            JOIN messages AS m ON m.sid = p.message_sid
            WHERE p.carrier = ? AND p.status = '{PartState.SENT}'
              AND p.submitted_at >= ? AND p.submitted_at < ?
              AND (p.queried_at IS NULL OR p.queried_at < ?)
            ORDER BY p.submitted_at LIMIT ?""",
        (
            carrier,
            rows.to_us(not_before),
            rows.to_us(submitted_before),
            rows.to_us(queried_before),
            limit,
        ),
    )
    found = []
    for sid, index, key, query_id, route, from_addr, submitted_at in cursor:
        stored = rows.route_from_json(route)
        found.append(
            PartToQuery(
                sid,
                index,
                key,
                query_id,
                None if stored is None else stored.source,
                from_addr,
                rows.from_us(submitted_at),
            )
        )
    return found
