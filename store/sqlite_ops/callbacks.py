"""The status-callback outbox: rows written with each reported transition, drained by the webhook
sender.

Callbacks for one message are delivered in order — a customer must not see `delivered` and then
`sent` — so only the oldest pending callback of each message is ever due; the next one becomes due
when it is acknowledged or given up.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from store.errors import CallbackNotPending, UnknownCallback
from store.models import Callback
from store.sqlite_ops import rows

DUE_CALLBACKS_SQL = """
    SELECT c.*, m.account_sid, m.from_addr, m.to_addr
    FROM callbacks AS c JOIN messages AS m ON m.sid = c.message_sid
    WHERE c.state = 'pending' AND c.next_attempt_at <= ?
      AND c.id = (SELECT MIN(p.id) FROM callbacks AS p
                  WHERE p.message_sid = c.message_sid AND p.state = 'pending')
    ORDER BY c.next_attempt_at, c.id
    LIMIT ?
"""


def due_callbacks(conn: sqlite3.Connection, now: datetime, limit: int) -> list[Callback]:
    return [rows.callback(r) for r in conn.execute(DUE_CALLBACKS_SQL, (rows.to_us(now), limit))]


def callback_delivered(conn: sqlite3.Connection, callback_id: int, now: datetime) -> None:
    _finish(conn, callback_id, "state = 'done'", (), now)


def callback_retry(
    conn: sqlite3.Connection,
    callback_id: int,
    *,
    error: str,
    next_attempt_at: datetime,
    now: datetime,
) -> None:
    _finish(
        conn,
        callback_id,
        "last_error = ?, next_attempt_at = ?",
        (error, rows.to_us(next_attempt_at)),
        now,
    )


def callback_give_up(
    conn: sqlite3.Connection, callback_id: int, *, error: str, now: datetime
) -> None:
    _finish(conn, callback_id, "state = 'failed', last_error = ?", (error,), now)


def _finish(
    conn: sqlite3.Connection,
    callback_id: int,
    assignments: str,
    params: tuple[object, ...],
    now: datetime,
) -> None:
    """Count an attempt on a pending callback and apply `assignments` (a fixed SQL fragment)."""
    updated = conn.execute(
        f"""UPDATE callbacks SET {assignments}, attempts = attempts + 1, updated_at = ?
            WHERE id = ? AND state = 'pending' RETURNING id""",
        (*params, rows.to_us(now), callback_id),
    ).fetchone()
    if updated is not None:
        return
    row = conn.execute("SELECT state FROM callbacks WHERE id = ?", (callback_id,)).fetchone()
    if row is None:
        raise UnknownCallback(f"Status callback {callback_id} does not exist.")
    raise CallbackNotPending(f"Status callback {callback_id} is already {row['state']}.")
