"""Delivery receipts: correlating them with submitted parts and settling the message's outcome.

A message of N segments is N submits, N carrier message ids and N receipts. The message is settled
only when every part has a final receipt: `delivered` if every part was delivered, otherwise
`undelivered` with the error of the first part that was not. Receipts can overtake the
submit_sm_resp that tells us their id (the carrier answers on another bind, or our write of the
response is still queued); such receipts are held in `orphan_receipts` and applied when the part is
recorded.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from store.models import ReceiptOutcome
from store.sqlite_ops import rows
from store.sqlite_ops.transitions import CarrierSaid, load_message, record_event, transition
from store.states import FINAL, Status

_PART_DONE = (Status.DELIVERED, Status.UNDELIVERED)


@dataclass(frozen=True, slots=True)
class Receipt:
    carrier: str
    carrier_message_id: str
    stat: str | None
    err: str | None
    done_date: str | None
    error_code: int | None
    delivered: bool
    final: bool

    @property
    def said(self) -> CarrierSaid:
        return CarrierSaid(
            carrier=self.carrier,
            receipt_stat=self.stat,
            receipt_err=self.err,
            raw_done_date=self.done_date,
        )


def record_receipt(
    conn: sqlite3.Connection,
    carrier: str,
    carrier_message_id: str,
    *,
    stat: str | None,
    err: str | None,
    done_date: str | None,
    error_code: int | None,
    delivered: bool,
    final: bool,
    now: datetime,
) -> ReceiptOutcome:
    at = rows.to_us(now)
    receipt = Receipt(
        carrier, carrier_message_id, stat, err, done_date, error_code, delivered, final
    )
    part = _find_part(conn, carrier, carrier_message_id)
    if part is None:
        conn.execute(
            """INSERT INTO orphan_receipts (carrier, carrier_message_id, stat, err, done_date,
                   delivered, final, error_code, received_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (carrier, carrier_message_id, stat, err, done_date, delivered, final, error_code, at),
        )
        return ReceiptOutcome(message_sid=None, new_status=None, matched=False)
    return _apply(conn, part, receipt, at, held=False)


def apply_orphans(conn: sqlite3.Connection, carrier: str, carrier_message_id: str, at: int) -> int:
    """Apply (then forget) receipts that arrived for this id before its part was recorded;
    return how many there were."""
    held = conn.execute(
        """SELECT * FROM orphan_receipts WHERE carrier = ? AND carrier_message_id = ?
           ORDER BY id""",
        (carrier, carrier_message_id),
    ).fetchall()
    for orphan in held:
        part = _find_part(conn, carrier, carrier_message_id)
        if part is None:  # pragma: no cover - the caller has just inserted it
            return 0
        receipt = Receipt(
            carrier,
            carrier_message_id,
            orphan["stat"],
            orphan["err"],
            orphan["done_date"],
            orphan["error_code"],
            bool(orphan["delivered"]),
            bool(orphan["final"]),
        )
        _apply(conn, part, receipt, at, held=True)
        conn.execute("DELETE FROM orphan_receipts WHERE id = ?", (orphan["id"],))
    return len(held)


def purge_orphan_receipts(conn: sqlite3.Connection, before: datetime) -> int:
    """Forget orphans received before `before`: their submit response is never coming."""
    cursor = conn.execute(
        "DELETE FROM orphan_receipts WHERE received_at < ?", (rows.to_us(before),)
    )
    return cursor.rowcount


def settle(
    conn: sqlite3.Connection, msg: sqlite3.Row, at: int, said: CarrierSaid, reason: str
) -> Status | None:
    """If the `sent` message has a final receipt for every part, move it to its outcome."""
    if msg["status"] != Status.SENT:
        return None
    parts = conn.execute(
        f"""SELECT part_index,
                   MAX(status = '{Status.DELIVERED}') AS delivered,
                   MAX(status IN ('{Status.DELIVERED}', '{Status.UNDELIVERED}')) AS done
            FROM message_parts WHERE message_sid = ? GROUP BY part_index ORDER BY part_index""",
        (msg["sid"],),
    ).fetchall()
    count = msg["num_segments"]
    if len(parts) < count or not all(p["done"] for p in parts):
        return None
    failed = next((p["part_index"] for p in parts if not p["delivered"]), None)
    if failed is None:
        transition(conn, msg, Status.DELIVERED, now=at, reason=reason, said=said)
        return Status.DELIVERED
    part = conn.execute(
        f"""SELECT error_code, raw_stat, raw_err FROM message_parts
            WHERE message_sid = ? AND part_index = ? AND status = '{Status.UNDELIVERED}'
            ORDER BY rowid DESC LIMIT 1""",
        (msg["sid"], failed),
    ).fetchone()
    which = "the message" if count == 1 else f"part {failed + 1} of {count}"
    message = (
        f"The carrier reported {which} undelivered "
        f"(receipt stat={part['raw_stat']}, err={part['raw_err']})."
    )
    transition(
        conn,
        msg,
        Status.UNDELIVERED,
        now=at,
        reason=reason,
        changes={"error_code": part["error_code"], "error_message": message},
        said=said,
    )
    return Status.UNDELIVERED


def _find_part(
    conn: sqlite3.Connection, carrier: str, carrier_message_id: str
) -> sqlite3.Row | None:
    return conn.execute(
        """SELECT rowid AS part_rowid, * FROM message_parts
           WHERE carrier = ? AND carrier_message_id = ?""",
        (carrier, carrier_message_id),
    ).fetchone()


def _apply(
    conn: sqlite3.Connection, part: sqlite3.Row, receipt: Receipt, at: int, *, held: bool
) -> ReceiptOutcome:
    sid = part["message_sid"]
    said = receipt.said
    settles_part = receipt.final and part["status"] not in _PART_DONE
    if settles_part:
        # First final receipt for this part wins; duplicates and late contradictions are history.
        conn.execute(
            """UPDATE message_parts SET status = ?, error_code = ?, raw_stat = ?, raw_err = ?,
                   done_date = ?
               WHERE rowid = ?""",
            (
                str(Status.DELIVERED if receipt.delivered else Status.UNDELIVERED),
                receipt.error_code,
                receipt.stat,
                receipt.err,
                receipt.done_date,
                part["part_rowid"],
            ),
        )
    msg = load_message(conn, sid)
    status = Status(msg["status"])
    base = "held_receipt" if held else "receipt"
    if status in FINAL:
        record_event(
            conn, sid, now=at, from_status=status, to_status=None, reason=f"late_{base}", said=said
        )
        return ReceiptOutcome(message_sid=sid, new_status=None, matched=True)
    new = settle(conn, msg, at, said, base) if settles_part else None
    if new is None:
        if not receipt.final:
            reason = f"intermediate_{base}"
        elif not settles_part:
            reason = f"duplicate_{base}"
        else:
            reason = f"{base}_part_{part['part_index'] + 1}"
        record_event(
            conn, sid, now=at, from_status=status, to_status=None, reason=reason, said=said
        )
    return ReceiptOutcome(message_sid=sid, new_status=new, matched=True)
