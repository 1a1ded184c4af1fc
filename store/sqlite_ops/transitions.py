"""The one function that changes a message's status, and the history/outbox rows that go with it.

A status change, its event and its status callback are written by the same op, hence in the same
transaction: the outbox can never report a transition that was rolled back, nor miss one that
committed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from store.errors import StoreError
from store.states import Status, check_transition, is_reported

# Columns a transition may set besides status/date_updated. A closed list, because the names are
# spliced into SQL.
_SETTABLE = frozenset(
    {
        "error_code",
        "error_message",
        "attempts",
        "next_attempt_at",
        "lease_owner",
        "lease_expires_at",
        "date_sent",
    }
)

LEASE_CLEARED: Mapping[str, object] = {"lease_owner": None, "lease_expires_at": None}


@dataclass(frozen=True, slots=True)
class CarrierSaid:
    """What the carrier said, for the event history (raw values, not mapped to Twilio codes)."""

    carrier: str | None = None
    smpp_status: int | None = None
    receipt_stat: str | None = None
    receipt_err: str | None = None
    raw_done_date: str | None = None


NOTHING_SAID = CarrierSaid()


def load_message(conn: sqlite3.Connection, sid: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM messages WHERE sid = ?", (sid,)).fetchone()


def transition(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    to: Status,
    *,
    now: int,
    reason: str,
    changes: Mapping[str, object] | None = None,
    said: CarrierSaid = NOTHING_SAID,
) -> sqlite3.Row:
    """Move the message in `row` to `to`, record the event, queue the callback; return the new row.

    Raises `IllegalTransition` (before writing anything) when the state machine forbids it.
    """
    sid = row["sid"]
    current = Status(row["status"])
    check_transition(current, to, sid=sid)
    changes = dict(changes or {})
    unknown = changes.keys() - _SETTABLE
    if unknown:
        raise ValueError(f"transition cannot set columns {sorted(unknown)}")
    assignments = "".join(f", {column} = ?" for column in changes)
    new = conn.execute(
        f"UPDATE messages SET status = ?, date_updated = ?{assignments} "
        "WHERE sid = ? AND status = ? RETURNING *",
        (str(to), now, *changes.values(), sid, str(current)),
    ).fetchone()
    # The writer thread is the only writer and `row` was read in this transaction, so the guard
    # on the old status cannot miss; if it ever does, failing loudly beats a silent double move.
    if new is None:
        raise StoreError(f"Message {sid} left status {current!s} while a transition was applied.")
    record_event(
        conn,
        sid,
        now=now,
        from_status=current,
        to_status=to,
        reason=reason,
        said=said,
        attempt=new["attempts"],
    )
    url = new["status_callback"]
    if url and is_reported(current, to, last_reported=_last_reported(conn, sid)):
        conn.execute(
            """INSERT INTO callbacks (message_sid, url, status, error_code, raw_done_date,
                   attempts, next_attempt_at, state, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, 0, ?, 'pending', ?, ?)""",
            (sid, url, str(to), new["error_code"], said.raw_done_date, now, now, now),
        )
    return new


def record_event(
    conn: sqlite3.Connection,
    sid: str,
    *,
    now: int,
    from_status: Status | None,
    to_status: Status | None,
    reason: str,
    said: CarrierSaid = NOTHING_SAID,
    attempt: int | None = None,
) -> None:
    """Append to the message's history. `to_status=None`: an event that changed no status."""
    conn.execute(
        """INSERT INTO message_events (message_sid, at, from_status, to_status, reason, carrier,
               smpp_status, receipt_stat, receipt_err, attempt)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            sid,
            now,
            None if from_status is None else str(from_status),
            None if to_status is None else str(to_status),
            reason,
            said.carrier,
            said.smpp_status,
            said.receipt_stat,
            said.receipt_err,
            attempt,
        ),
    )


def _last_reported(conn: sqlite3.Connection, sid: str) -> Status | None:
    row = conn.execute(
        "SELECT status FROM callbacks WHERE message_sid = ? ORDER BY id DESC LIMIT 1", (sid,)
    ).fetchone()
    return None if row is None else Status(row[0])
