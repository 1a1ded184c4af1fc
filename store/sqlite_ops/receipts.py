"""Delivery receipts as batch handlers: correlating them with submitted parts, holding those that
overtake their submit response, and closing receipt windows.

A message of N segments is N submits, N carrier message ids and N receipts; the lifecycle settles
it when every part has a final receipt. A receipt matches only a part submitted within the
carrier's receipt window: carriers reissue ids (counters wrap, a restarted SMSC starts over), and an
old receipt must never settle a new message. Receipts can overtake the submit_sm_resp that tells us
their id (the carrier answers on another bind, or our write of the response is still queued); those
are held in `orphan_receipts` for `ORPHAN_HOLD_SECONDS` and applied when the part is recorded.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import msgspec

from store import lifecycle
from store.commands import (
    CloseReceiptWindows,
    NoteQueried,
    PurgeOrphanReceipts,
    RecordReceipt,
    RecordSubmitAccepted,
)
from store.lifecycle import ORPHAN_HOLD_SECONDS, PartView
from store.models import PurgedReceipt, ReceiptOutcome
from store.sqlite_ops import rows
from store.sqlite_ops.working_set import Said, WorkingSet, dumps, fetch_all, fetch_dicts
from store.states import PART_DONE, PartState

_PART_COLUMNS = (
    "message_sid",
    "part_index",
    "carrier",
    "carrier_message_id",
    "status",
    "error_code",
    "raw_stat",
    "raw_err",
    "submitted_at",
)
_ORPHAN_COLUMNS = (
    "id",
    "carrier",
    "carrier_message_id",
    "stat",
    "err",
    "done_date",
    "delivered",
    "final",
    "error_code",
    "received_at",
)


@dataclass(slots=True)
class _Part:
    sid: str
    index: int
    carrier: str
    cmid: str
    status: str
    error_code: int | None = None
    stat: str | None = None
    err: str | None = None
    submitted_at: int | None = None
    done_date: str | None = None
    dirty: bool = False


class PartsBook:
    """Every submitted part of the messages one batch touches, kept current in memory."""

    def __init__(self) -> None:
        self._by_sid: dict[str, list[_Part]] = {}
        self._by_id: dict[tuple[str, str], _Part] = {}

    @classmethod
    def load(cls, conn: sqlite3.Connection, sids: Iterable[str]) -> PartsBook:
        book = cls()
        wanted = list(dict.fromkeys(sids))
        if wanted:
            for row in fetch_all(
                conn,
                f"""SELECT {", ".join(_PART_COLUMNS)} FROM message_parts
                    WHERE message_sid IN (SELECT value FROM json_each(?)) ORDER BY rowid""",
                (dumps(wanted),),
                _PART_COLUMNS,
            ):
                book._keep(_Part(*row))
        return book

    def _keep(self, part: _Part) -> None:
        self._by_sid.setdefault(part.sid, []).append(part)
        self._by_id[(part.carrier, part.cmid)] = part

    def add(self, sid: str, index: int, carrier: str, cmid: str, submitted_at: int) -> None:
        self._keep(_Part(sid, index, carrier, cmid, str(PartState.SENT), submitted_at=submitted_at))

    def forget(self, sid: str, carrier: str, cmid: str) -> None:
        part = self._by_id.pop((carrier, cmid), None)
        if part is not None and sid in self._by_sid:
            self._by_sid[sid] = [p for p in self._by_sid[sid] if p is not part]

    def find(self, carrier: str, cmid: str, not_before: int) -> _Part | None:
        """The part this id names, if it was submitted at `not_before` or later and still waits
        (or waited) for a receipt within its window."""
        part = self._by_id.get((carrier, cmid))
        if part is None or part.status == PartState.NO_RECEIPT:
            return None
        if part.submitted_at is not None and part.submitted_at < not_before:
            return None
        return part

    def resubmitted(self, carrier: str, cmid: str, at: int) -> None:
        part = self._by_id.get((carrier, cmid))
        if part is not None:
            part.submitted_at = at

    def has_resent_parts(self, sid: str) -> bool:
        """Whether some part of `sid` was submitted more than once (an earlier copy may hold its
        receipt); or it was resubmitted under the same id."""
        parts = self._by_sid.get(sid, ())
        return len(parts) > len({p.index for p in parts}) or any(
            p.status in PART_DONE for p in parts
        )

    def accepted_count(self, sid: str) -> int:
        return len({p.index for p in self._by_sid.get(sid, ())})

    def views(self, sid: str) -> list[PartView]:
        """Each part index aggregated over every copy sent: done if any copy has a final
        receipt, delivered if any copy was delivered, the error of the newest undelivered one."""
        merged: dict[int, PartView] = {}
        for p in self._by_sid.get(sid, ()):
            done = p.status in PART_DONE
            delivered = p.status == PartState.DELIVERED
            seen = merged.get(p.index)
            if seen is None:
                merged[p.index] = PartView(p.index, done, delivered, p.error_code, p.stat, p.err)
            else:
                failed = p.status == PartState.UNDELIVERED
                merged[p.index] = PartView(
                    p.index,
                    seen.done or done,
                    seen.delivered or delivered,
                    p.error_code if failed else seen.error_code,
                    p.stat if failed else seen.stat,
                    p.err if failed else seen.err,
                )
        return [merged[i] for i in sorted(merged)]

    def settle(self, part: _Part, delivered: bool, command: RecordReceipt | _Held) -> None:
        part.status = str(PartState.DELIVERED if delivered else PartState.UNDELIVERED)
        part.error_code = command.error_code
        part.stat = command.stat
        part.err = command.err
        part.done_date = command.done_date
        part.dirty = True

    def flush(self, conn: sqlite3.Connection) -> None:
        dirty = [p for p in self._by_id.values() if p.dirty]
        if not dirty:
            return
        conn.execute(
            """UPDATE message_parts SET status = j.value ->> 2, error_code = j.value ->> 3,
                   raw_stat = j.value ->> 4, raw_err = j.value ->> 5, done_date = j.value ->> 6
               FROM json_each(?) AS j
               WHERE carrier = j.value ->> 0 AND carrier_message_id = j.value ->> 1""",
            (
                dumps(
                    [
                        [p.carrier, p.cmid, p.status, p.error_code, p.stat, p.err, p.done_date]
                        for p in dirty
                    ]
                ),
            ),
        )
        for p in dirty:
            p.dirty = False


class _Held(msgspec.Struct, frozen=True):
    """A receipt that was held as an orphan, as it is applied later."""

    stat: str | None
    err: str | None
    done_date: str | None
    error_code: int | None
    delivered: bool
    final: bool
    bind: str | None = None  # not kept with a held receipt


def record_receipt(
    conn: sqlite3.Connection, commands: Sequence[RecordReceipt], ctx
) -> list[object]:
    oldest = min(rows.to_us(c.now) - round(c.window_seconds * 1e6) for c in commands)
    sids = [
        sid
        for (sid,) in fetch_all(
            conn,
            """SELECT message_sid FROM message_parts
               WHERE (carrier, carrier_message_id) IN
                     (SELECT value ->> 0, value ->> 1 FROM json_each(?))
                 AND submitted_at >= ?""",
            (dumps([[c.carrier, c.carrier_message_id] for c in commands]), oldest),
            ("message_sid",),
        )
    ]
    book = PartsBook.load(conn, sids)
    ws: WorkingSet = ctx.working_set(conn, 0)
    ws.load(sids)
    held: list[list[object]] = []
    results: list[object] = []
    for c in commands:
        ws.now = rows.to_us(c.now)
        part = book.find(c.carrier, c.carrier_message_id, ws.now - round(c.window_seconds * 1e6))
        if part is None:
            held.append(
                [
                    c.carrier,
                    c.carrier_message_id,
                    c.stat,
                    c.err,
                    c.done_date,
                    c.delivered,
                    c.final,
                    c.error_code,
                    ws.now,
                ]
            )
            results.append(ReceiptOutcome(message_sid=None, new_status=None, matched=False))
            continue
        change = _apply(ws, book, part, c, held=False)
        results.append(ReceiptOutcome(part.sid, change.status, matched=True))
    if held:
        conn.execute(
            """INSERT INTO orphan_receipts (carrier, carrier_message_id, stat, err, done_date,
                   delivered, final, error_code, received_at)
               SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4,
                      value ->> 5, value ->> 6, value ->> 7, value ->> 8
               FROM json_each(?)""",
            (dumps(held),),
        )
    book.flush(conn)
    ws.flush()
    return results


def _apply(
    ws: WorkingSet, book: PartsBook, part: _Part, receipt: RecordReceipt | _Held, *, held: bool
) -> lifecycle.Change:
    settles_part = receipt.final and part.status not in PART_DONE
    if settles_part:
        book.settle(part, receipt.delivered, receipt)
    happening = lifecycle.ReceiptArrived(
        part.index, receipt.final, settles_part, book.views(part.sid), held
    )
    change = lifecycle.decide(ws.view(part.sid), happening, now=ws.now)
    said = Said(
        carrier=part.carrier,
        receipt_stat=receipt.stat,
        receipt_err=receipt.err,
        raw_done_date=receipt.done_date,
        bind=receipt.bind,
    )
    ws.apply(part.sid, change, said)
    return change


def apply_held_receipts(
    conn: sqlite3.Connection,
    ws: WorkingSet,
    book: PartsBook,
    accepted: Sequence[RecordSubmitAccepted],
) -> None:
    """Apply (then forget) receipts that arrived for these ids before their parts were recorded."""
    hold = round(ORPHAN_HOLD_SECONDS * 1e6)
    oldest = min(rows.to_us(c.now) for c in accepted) - hold
    orphans = fetch_dicts(
        conn,
        f"""SELECT {", ".join(_ORPHAN_COLUMNS)} FROM orphan_receipts
           WHERE (carrier, carrier_message_id) IN
                 (SELECT value ->> 0, value ->> 1 FROM json_each(?))
             AND received_at >= ?
           ORDER BY id""",
        (dumps([[c.carrier, c.carrier_message_id] for c in accepted]), oldest),
        _ORPHAN_COLUMNS,
    )
    if not orphans:
        return
    # Each held receipt is measured against its own submit: older than the hold, it is for an
    # earlier holder of the id and must not settle this part (it is purged later).
    submitted = {(c.carrier, c.carrier_message_id): rows.to_us(c.now) for c in accepted}
    orphans = [
        row
        for row in orphans
        if row["received_at"] >= submitted[(row["carrier"], row["carrier_message_id"])] - hold
    ]
    if not orphans:
        return
    for row in orphans:
        part = book.find(row["carrier"], row["carrier_message_id"], 0)
        if part is None:  # pragma: no cover - the part was added to the book just before
            continue
        receipt = _Held(
            row["stat"],
            row["err"],
            row["done_date"],
            row["error_code"],
            bool(row["delivered"]),
            bool(row["final"]),
        )
        _apply(ws, book, part, receipt, held=True)
    conn.execute(
        "DELETE FROM orphan_receipts WHERE id IN (SELECT value FROM json_each(?))",
        (dumps([row["id"] for row in orphans]),),
    )
    book.flush(conn)


def close_receipt_windows(
    conn: sqlite3.Connection, commands: Sequence[CloseReceiptWindows], ctx
) -> list[object]:
    results: list[object] = []
    for c in commands:
        at = rows.to_us(c.now)
        cutoff = at - round(c.window_seconds * 1e6)
        expired = conn.execute(
            f"""UPDATE message_parts SET status = '{PartState.NO_RECEIPT}'
                WHERE rowid IN (
                    SELECT rowid FROM message_parts INDEXED BY message_parts_waiting
                    WHERE carrier = ? AND status = '{PartState.SENT}' AND submitted_at < ?
                    LIMIT ?)
                RETURNING message_sid""",
            (c.carrier, cutoff, c.limit),
        ).fetchall()
        sids = list(dict.fromkeys(sid for (sid,) in expired))
        ws: WorkingSet = ctx.working_set(conn, at)
        ws.load(sids)
        happening = lifecycle.ReceiptWindowPassed(c.window_seconds / 3600)
        for sid in sids:
            ws.apply(
                sid, lifecycle.decide(ws.view(sid), happening, now=at), Said(carrier=c.carrier)
            )
        ws.flush()
        results.append(len(sids))
    return results


def note_queried(conn: sqlite3.Connection, commands: Sequence[NoteQueried], ctx) -> list[object]:
    results: list[object] = []
    for c in commands:
        noted = conn.execute(
            """UPDATE message_parts SET queried_at = ?
               WHERE carrier = ? AND carrier_message_id IN (SELECT value FROM json_each(?))""",
            (rows.to_us(c.now), c.carrier, dumps(list(c.carrier_message_ids))),
        ).rowcount
        results.append(noted)
    return results


def purge_orphan_receipts(
    conn: sqlite3.Connection, commands: Sequence[PurgeOrphanReceipts], ctx
) -> list[object]:
    results: list[object] = []
    for c in commands:
        # Housekeeping, rarely more than a few rows: fetchall's step per row is no concern here.
        purged = conn.execute(
            "DELETE FROM orphan_receipts WHERE received_at < ?"
            " RETURNING id, carrier, carrier_message_id, stat, received_at",
            (rows.to_us(c.before),),
        ).fetchall()
        results.append(
            [
                PurgedReceipt(carrier, message_id, stat, rows.from_us(received_at))
                for _id, carrier, message_id, stat, received_at in sorted(purged, key=_first)
            ]
        )
    return results


def _first(row: sqlite3.Row) -> object:
    return row[0]
