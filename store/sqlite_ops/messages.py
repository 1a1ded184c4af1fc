"""The outbound lifecycle up to the carrier's answer: accept, claim, submit outcome, requeue, and
lease recovery.

Leases: `claim_due` moves messages to `sending` and stamps them with the claiming process's owner id
and an expiry. A message in `sending` is in flight — maybe on the wire, maybe answered in a
response we have not recorded yet. If the daemon dies, nobody will ever record that answer, so at
start `recover_leases` puts such messages back in the queue. That is the one place duplicates come
from: the carrier may already have the message. Sending is at-least-once, and the duplicates are
limited to what was in flight.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from store.errors import AlreadyExists, UnknownAccount, UnknownMessage
from store.models import OUTBOUND_API, Message, NewMessage
from store.sqlite_ops import rows
from store.sqlite_ops.receipts import apply_orphans, settle
from store.sqlite_ops.transitions import (
    LEASE_CLEARED,
    CarrierSaid,
    load_message,
    record_event,
    transition,
)
from store.states import Status, check_transition

# The delivery engine's hot query. The literal 'queued' (not a parameter) matches the partial
# index `messages_due`, whose order (carrier, next_attempt_at, rowid) is the ORDER BY: no sort, and
# only `limit` rows are read however long the backlog is. INDEXED BY makes that a guarantee: if a
# schema change ever made the index unusable, the query would fail loudly instead of scanning.
CLAIM_DUE_SQL = f"""
    SELECT * FROM messages INDEXED BY messages_due
    WHERE carrier = ? AND status = '{Status.QUEUED}' AND next_attempt_at <= ?
    ORDER BY next_attempt_at, rowid
    LIMIT ?
"""

RECOVERABLE_SQL = f"""
    SELECT * FROM messages
    WHERE status = '{Status.SENDING}'
      AND (lease_expires_at IS NULL OR lease_expires_at <= ? OR lease_owner IS NOT ?)
    ORDER BY rowid
"""


def accept(conn: sqlite3.Connection, msg: NewMessage, now: datetime) -> Message:
    at = rows.to_us(now)
    if msg.num_segments < 1:
        raise ValueError(f"Message {msg.sid} has num_segments={msg.num_segments}; it must be >= 1.")
    check_transition(None, Status.QUEUED, sid=msg.sid)
    if conn.execute("SELECT 1 FROM accounts WHERE sid = ?", (msg.account_sid,)).fetchone() is None:
        raise UnknownAccount(
            f"Account {msg.account_sid} does not exist; message {msg.sid} refused."
        )
    try:
        row = conn.execute(
            """INSERT INTO messages (sid, account_sid, direction, from_addr, to_addr, body, status,
                   num_segments, encoding, carrier, status_callback, attempts, next_attempt_at,
                   date_created, date_updated)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) RETURNING *""",
            (
                msg.sid,
                msg.account_sid,
                OUTBOUND_API,
                msg.from_addr,
                msg.to_addr,
                msg.body,
                str(Status.QUEUED),
                msg.num_segments,
                msg.encoding,
                msg.carrier,
                msg.status_callback,
                at,
                at,
                at,
            ),
        ).fetchone()
    except sqlite3.IntegrityError as exc:
        raise AlreadyExists(f"Message {msg.sid} already exists.") from exc
    record_event(
        conn,
        msg.sid,
        now=at,
        from_status=None,
        to_status=Status.QUEUED,
        reason="accepted",
        said=CarrierSaid(carrier=msg.carrier),
        attempt=0,
    )
    return rows.message(row)


def claim_due(
    conn: sqlite3.Connection,
    carrier: str,
    *,
    limit: int,
    owner: str,
    lease_seconds: float,
    now: datetime,
) -> list[Message]:
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if lease_seconds <= 0:
        raise ValueError(f"lease_seconds must be positive, got {lease_seconds}")
    at = rows.to_us(now)
    expires = at + round(lease_seconds * 1_000_000)
    due = conn.execute(CLAIM_DUE_SQL, (carrier, at, limit)).fetchall()
    said = CarrierSaid(carrier=carrier)
    return [
        rows.message(
            transition(
                conn,
                row,
                Status.SENDING,
                now=at,
                reason="claimed",
                said=said,
                changes={
                    "attempts": row["attempts"] + 1,
                    "lease_owner": owner,
                    "lease_expires_at": expires,
                },
            )
        )
        for row in due
    ]


def record_submit_accepted(
    conn: sqlite3.Connection,
    sid: str,
    part_index: int,
    carrier: str,
    carrier_message_id: str,
    now: datetime,
) -> Message | None:
    at = rows.to_us(now)
    row = load_message(conn, sid)
    if row is None:
        return None
    count = row["num_segments"]
    if not 0 <= part_index < count:
        raise ValueError(
            f"Message {sid} has {count} part(s); part_index {part_index} is out of range."
        )
    said = CarrierSaid(carrier=carrier)
    status = Status(row["status"])
    existing = conn.execute(
        "SELECT rowid, message_sid FROM message_parts WHERE carrier = ? AND carrier_message_id = ?",
        (carrier, carrier_message_id),
    ).fetchone()
    if existing is not None and existing["message_sid"] == sid:
        record_event(
            conn,
            sid,
            now=at,
            from_status=status,
            to_status=None,
            reason="duplicate_submit_resp",
            said=said,
        )
        return rows.message(row)
    if existing is not None:
        # The carrier reused an id (some SMSCs wrap a counter); the newest submit owns it now.
        conn.execute("DELETE FROM message_parts WHERE rowid = ?", (existing["rowid"],))
    conn.execute(
        """INSERT INTO message_parts (message_sid, part_index, carrier, carrier_message_id, status)
           VALUES (?, ?, ?, ?, ?)""",
        (sid, part_index, carrier, carrier_message_id, str(Status.SENT)),
    )
    accepted = conn.execute(
        "SELECT COUNT(DISTINCT part_index) FROM message_parts WHERE message_sid = ?", (sid,)
    ).fetchone()[0]
    if status is Status.SENDING and accepted == count:
        row = transition(
            conn,
            row,
            Status.SENT,
            now=at,
            reason="submit_accepted",
            said=said,
            changes={"date_sent": at, **LEASE_CLEARED},
        )
    else:
        # A part of several, or a response for a message no longer in flight (its lease was
        # recovered): keep the id so the receipt still matches, change no status.
        reason = (
            f"part_{part_index + 1}_accepted" if status is Status.SENDING else "late_submit_resp"
        )
        record_event(
            conn, sid, now=at, from_status=status, to_status=None, reason=reason, said=said
        )
    became_sent = row["status"] == Status.SENT and status is not Status.SENT
    # Receipts can only be waiting for this message if some were held for this id (orphans) or
    # an earlier part of a multi-part message got its receipt while later parts were in flight;
    # otherwise the row in hand is current and settling would only re-read it.
    if apply_orphans(conn, carrier, carrier_message_id, at) or (became_sent and count > 1):
        settle(conn, load_message(conn, sid), at, said, "receipt")
        row = load_message(conn, sid)
    return rows.message(row)


def record_submit_failed(
    conn: sqlite3.Connection,
    sid: str,
    *,
    carrier: str,
    smpp_status: int | None,
    error_code: int | None,
    error_message: str | None,
    permanent: bool,
    retry_at: datetime | None,
    now: datetime,
) -> Message:
    at = rows.to_us(now)
    row = _require(conn, sid)
    said = CarrierSaid(carrier=carrier, smpp_status=smpp_status)
    if permanent:
        new = transition(
            conn,
            row,
            Status.FAILED,
            now=at,
            reason="submit_failed",
            said=said,
            changes={
                "error_code": error_code,
                "error_message": error_message,
                "next_attempt_at": None,
                **LEASE_CLEARED,
            },
        )
    else:
        if retry_at is None:
            raise ValueError(f"Message {sid}: a temporary submit failure needs retry_at.")
        new = transition(
            conn,
            row,
            Status.QUEUED,
            now=at,
            reason="retry",
            said=said,
            changes={"next_attempt_at": rows.to_us(retry_at), **LEASE_CLEARED},
        )
    return rows.message(new)


def requeue(
    conn: sqlite3.Connection, sid: str, *, reason: str, now: datetime, count_attempt: bool
) -> Message:
    """Put a claimed message back in line; it keeps its place (next_attempt_at is unchanged)."""
    row = _require(conn, sid)
    changes: dict[str, object] = dict(LEASE_CLEARED)
    if not count_attempt:
        changes["attempts"] = max(row["attempts"] - 1, 0)
    new = transition(conn, row, Status.QUEUED, now=rows.to_us(now), reason=reason, changes=changes)
    return rows.message(new)


def recover_leases(conn: sqlite3.Connection, *, owner: str, now: datetime) -> int:
    at = rows.to_us(now)
    stranded = conn.execute(RECOVERABLE_SQL, (at, owner)).fetchall()
    for row in stranded:
        why = (
            f"owner {row['lease_owner']} is gone"
            if row["lease_owner"] != owner
            else "lease ran out"
        )
        transition(
            conn,
            row,
            Status.QUEUED,
            now=at,
            changes=LEASE_CLEARED,
            reason=f"lease_expired: {why}; possible duplicate, the carrier may already have it",
        )
    return len(stranded)


def _require(conn: sqlite3.Connection, sid: str) -> sqlite3.Row:
    row = load_message(conn, sid)
    if row is None:
        raise UnknownMessage(f"Message {sid} does not exist.")
    return row
