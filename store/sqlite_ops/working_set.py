"""Load message rows for a batch, apply lifecycle decisions to them in memory, write them back
with one statement per table.

Why this shape: the writer thread competes with the event loop for the GIL, and every SQLite call
releases the GIL and must win it back — under load that wait, not SQLite, is the cost (measured:
`executemany` of 50 rows fell from 75k to 3k rows/s beside a busy thread). So a batch of N
messages is loaded with one SELECT, decided in Python (`store.lifecycle`, pure), and written with
one UPDATE, one INSERT of history and one INSERT of callbacks, each fed the whole batch as one
JSON parameter (`json_each`).

The same GIL wait makes every *result row* costly: sqlite3 releases the GIL for each step, so a
SELECT of 100 rows is 100 waits (measured beside a busy thread: 120 ms for 100 rows, 12 ms for
the same rows as one JSON value; 1.6 ms with the daemon's 0.5 ms switch interval). So reads of
many rows go through `fetch_all`, which has SQLite aggregate them into one JSON array, one step.

Happenings in one batch may touch the same message twice (two receipts of a multi-part message, a
claim and its submit response): decisions are applied in order to the in-memory row, so the second
sees the first, and the row is written once with its final values. The UPDATE is guarded by the
status the row was loaded with; a row that moved underneath fails the batch loudly (it cannot
happen with one writer, and must not happen silently with several).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from store.errors import StoreError
from store.lifecycle import Change, MessageView
from store.models import Callback, Message
from store.sqlite_ops import rows
from store.sqlite_ops.rows import dumps  # the batches' JSON text (its docstring: why msgspec)
from store.states import UNSENT, CallbackState, Status

# Columns a decision may set besides status/date_updated (a closed list: they are spliced into SQL).
SETTABLE = (
    "error_code",
    "error_message",
    "attempts",
    "next_attempt_at",
    "lease_owner",
    "lease_expires_at",
    "date_sent",
)
_WRITTEN = ("status", "date_updated", "reported_status", *SETTABLE)

_UPDATE_SQL = (
    "UPDATE messages SET "
    + ", ".join(f"{column} = j.value ->> {i + 2}" for i, column in enumerate(_WRITTEN))
    + " FROM json_each(?) AS j"
    + " WHERE messages.sid = j.value ->> 0 AND messages.status = j.value ->> 1"
)

_EVENT_COLUMNS = (
    "message_sid",
    "at",
    "from_status",
    "to_status",
    "reason",
    "carrier",
    "smpp_status",
    "receipt_stat",
    "receipt_err",
    "attempt",
    "bind",
)
_INSERT_EVENTS_SQL = (
    f"INSERT INTO message_events ({', '.join(_EVENT_COLUMNS)}) SELECT "
    + ", ".join(f"value ->> {i}" for i in range(len(_EVENT_COLUMNS)))
    + " FROM json_each(?)"
)

_CALLBACK_COLUMNS = (
    "message_sid",
    "url",
    "status",
    "error_code",
    "raw_done_date",
    "next_attempt_at",
    "lease_owner",
    "created_at",
)
_INSERT_CALLBACKS_SQL = (
    f"INSERT INTO callbacks ({', '.join(_CALLBACK_COLUMNS)}, attempts, state, updated_at) SELECT "
    + ", ".join(f"value ->> {i}" for i in range(len(_CALLBACK_COLUMNS)))
    + f", 0, '{CallbackState.PENDING}', value ->> 7 FROM json_each(?)"
)

# For each new callback, the message's previous callback still pending (it must go out first),
# and whether that one is waiting for a retry: then the new one supersedes it (below).
_PREVIOUS_PENDING_SQL = f"""
    SELECT c.id AS id, p.id AS previous, p.attempts > 0 AND p.lease_owner IS NULL AS waiting
    FROM callbacks AS c LEFT JOIN callbacks AS p ON p.id = (
        SELECT MAX(q.id) FROM callbacks AS q
        WHERE q.message_sid = c.message_sid AND q.id < c.id AND q.state = '{CallbackState.PENDING}')
    WHERE c.id BETWEEN ? AND ?
"""

# Callbacks don't block each other: one that failed and waits for its retry when a newer status of
# its message is written is `skipped` (the application needs the newest state; the order it sees
# still only moves forward). One in flight (leased) is left to finish. Params: now, [[id, newer
# status], ...]. (`->>` binds as loosely as `||` in SQLite: hence the parentheses.)
_SUPERSEDE_SQL = f"""
    UPDATE callbacks SET state = '{CallbackState.SKIPPED}', updated_at = ?,
        last_error = COALESCE(last_error, '') || '; superseded by the newer status '
            || (j.value ->> 1)
    FROM json_each(?) AS j
    WHERE callbacks.id = j.value ->> 0 AND callbacks.state = '{CallbackState.PENDING}'
"""

# The per-account count of unsent messages (the queue cap's), moved by a batch's deltas.
_BACKLOG_SQL = """
    INSERT INTO account_backlog (account_sid, unsent)
    SELECT value ->> 0, MAX(0, value ->> 1) FROM json_each(?) WHERE true
    ON CONFLICT (account_sid) DO UPDATE
    SET unsent = MAX(0, account_backlog.unsent + (SELECT value ->> 1 FROM json_each(?)
                                                   WHERE value ->> 0 = excluded.account_sid))
"""

_DEAD_LETTER_COLUMNS = (
    "kind",
    "message_sid",
    "callback_id",
    "account_sid",
    "carrier",
    "reason",
    "error_code",
    "error_message",
    "attempts",
    "entered_at",
)
INSERT_DEAD_LETTERS_SQL = (
    f"INSERT INTO dead_letters ({', '.join(_DEAD_LETTER_COLUMNS)}) SELECT "
    + ", ".join(f"value ->> {i}" for i in range(len(_DEAD_LETTER_COLUMNS)))
    + " FROM json_each(?)"
)

MESSAGE_COLUMNS = (
    "sid",
    "account_sid",
    "direction",
    "from_addr",
    "to_addr",
    "body",
    "status",
    "num_segments",
    "encoding",
    "carrier",
    "status_callback",
    "error_code",
    "error_message",
    "attempts",
    "next_attempt_at",
    "lease_owner",
    "lease_expires_at",
    "date_created",
    "date_updated",
    "date_sent",
    "route",
    "reported_status",
    "validity_until",
)

_LOAD_SQL = "SELECT * FROM messages WHERE sid IN (SELECT value FROM json_each(?))"


def fetch_all(
    conn: sqlite3.Connection, select_sql: str, params: Sequence[object], columns: Sequence[str]
) -> list[list[Any]]:
    """Every row of `select_sql` (which must yield `columns`), as lists, in one SQLite step.

    Why not `fetchall()`: see the module docstring (one GIL wait per row). Values come back as
    JSON does: integers, text and null, which is all the schema stores.
    """
    sql = _wrapped(select_sql, tuple(columns))
    return rows.loads(conn.execute(sql, params).fetchone()[0])


def fetch_dicts(
    conn: sqlite3.Connection, select_sql: str, params: Sequence[object], columns: Sequence[str]
) -> list[dict[str, Any]]:
    return [
        dict(zip(columns, row, strict=True)) for row in fetch_all(conn, select_sql, params, columns)
    ]


_WRAPPED_CACHE: dict[tuple[str, tuple[str, ...]], str] = {}


def _wrapped(select_sql: str, columns: tuple[str, ...]) -> str:
    sql = _WRAPPED_CACHE.get((select_sql, columns))
    if sql is None:
        sql = f"SELECT json_group_array(json_array({', '.join(columns)})) FROM ({select_sql})"
        _WRAPPED_CACHE[(select_sql, columns)] = sql
    return sql


class Said(msgspec.Struct, frozen=True):
    """What the carrier said, for the history (raw values, not mapped to Twilio codes)."""

    carrier: str | None = None
    smpp_status: int | None = None
    receipt_stat: str | None = None
    receipt_err: str | None = None
    raw_done_date: str | None = None
    bind: str | None = None


NOTHING_SAID = Said()
_NOTHING_SAID_AT_CREATION = (None, None, None, None, 0, None)  # carrier … attempt, bind


class CallbackLease(msgspec.Struct, frozen=True):
    """Who new callbacks are leased to as they are written (the sender in this process is handed
    them straight after the commit), and for how long; None: written unleased, due at once."""

    owner: str
    seconds: float


class WorkingSet:
    """The rows one batch handler works on, and the history and callbacks it owes."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        now: int,
        *,
        callback_lease: CallbackLease | None = None,
        created_callbacks: list[Callback] | None = None,
    ) -> None:
        self.conn = conn
        self.now = now
        self._lease = callback_lease
        self._created = created_callbacks if created_callbacks is not None else []
        self.rows: dict[str, dict[str, object]] = {}
        self._loaded_status: dict[str, str] = {}
        self._dirty: set[str] = set()
        self._events: list[list[object]] = []
        self._callbacks: list[list[object]] = []
        self._dead_letters: list[list[object]] = []
        self._backlog: dict[str, int] = {}  # account → change in its unsent messages

    # -- loading ---------------------------------------------------------------------------

    def load(self, sids: Iterable[str]) -> None:
        """Load the rows of `sids` not loaded yet (unknown sids are simply absent)."""
        missing = [sid for sid in dict.fromkeys(sids) if sid not in self.rows]
        if missing:
            for values in fetch_all(self.conn, _LOAD_SQL, (dumps(missing),), MESSAGE_COLUMNS):
                self.add(values)

    def add(self, values: Sequence[Any]) -> dict[str, Any]:
        """Take a row (values in `MESSAGE_COLUMNS` order) the handler loaded itself."""
        values = dict(zip(MESSAGE_COLUMNS, values, strict=True))
        sid = values["sid"]
        self.rows[sid] = values
        self._loaded_status[sid] = values["status"]
        return values

    def view(self, sid: str) -> MessageView:
        row = self.rows[sid]
        reported = row["reported_status"]
        return MessageView(
            sid=sid,
            status=Status(row["status"]),
            attempts=row["attempts"],
            num_segments=row["num_segments"],
            has_callback=bool(row["status_callback"]),
            reported=None if reported is None else Status(reported),
            error_code=row["error_code"],
        )

    def message(self, sid: str) -> Message:
        return rows.message(self.rows[sid])

    # -- applying decisions ----------------------------------------------------------------

    def apply(self, sid: str, change: Change, said: Said = NOTHING_SAID) -> None:
        """Apply `change` to the in-memory row; owe its history event and callback."""
        row = self.rows[sid]
        before = row["status"]
        if change.status is not None:
            if (before in UNSENT) is not (change.status in UNSENT):
                account = row["account_sid"]
                self._backlog[account] = self._backlog.get(account, 0) + (
                    1 if change.status in UNSENT else -1
                )
            row["status"] = str(change.status)
            row["date_updated"] = self.now
            row.update(change.columns)
            self._dirty.add(sid)
        self._events.append(
            [
                sid,
                self.now,
                before,
                None if change.status is None else str(change.status),
                change.reason,
                said.carrier,
                said.smpp_status,
                said.receipt_stat,
                said.receipt_err,
                row["attempts"] if change.status is not None else None,
                said.bind,
            ]
        )
        if change.dead_letter is not None:
            self._dead_letters.append(
                [
                    "message",
                    sid,
                    None,
                    row["account_sid"],
                    row["carrier"],
                    change.dead_letter,
                    row["error_code"],
                    row["error_message"],
                    row["attempts"],
                    self.now,
                ]
            )
        if change.callback is not None:
            row["reported_status"] = str(change.callback)
            self._dirty.add(sid)
            lease = self._lease
            self._callbacks.append(
                [
                    sid,
                    row["status_callback"],
                    str(change.callback),
                    row["error_code"],
                    said.raw_done_date,
                    self.now if lease is None else self.now + round(lease.seconds * 1_000_000),
                    None if lease is None else lease.owner,
                    self.now,
                ]
            )

    def created(self, sid: str, change: Change, account_sid: str) -> None:
        """Record the creation event of a row inserted by the handler itself (accept)."""
        if change.status in UNSENT:
            self._backlog[account_sid] = self._backlog.get(account_sid, 0) + 1
        self._events.append(
            [sid, self.now, None, str(change.status), change.reason, *_NOTHING_SAID_AT_CREATION]
        )

    # -- writing ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every changed row, the history and the callbacks; safe to call repeatedly."""
        conn = self.conn
        if self._dirty:
            batch = [
                [sid, self._loaded_status[sid], *(self.rows[sid][c] for c in _WRITTEN)]
                for sid in self._dirty
            ]
            updated = conn.execute(_UPDATE_SQL, (dumps(batch),)).rowcount
            if updated != len(batch):
                raise StoreError(
                    f"{len(batch) - updated} of {len(batch)} messages changed status while a "
                    "batch was applied to them; the batch was rolled back."
                )
            for sid in self._dirty:
                self._loaded_status[sid] = self.rows[sid]["status"]
            self._dirty.clear()
        if self._events:
            conn.execute(_INSERT_EVENTS_SQL, (dumps(self._events),))
            self._events.clear()
        if self._dead_letters:
            conn.execute(INSERT_DEAD_LETTERS_SQL, (dumps(self._dead_letters),))
            self._dead_letters.clear()
        moved = [[account, delta] for account, delta in self._backlog.items() if delta]
        if moved:
            deltas = dumps(moved)
            conn.execute(_BACKLOG_SQL, (deltas, deltas))
        self._backlog.clear()
        if self._callbacks:
            self._write_callbacks()

    def _write_callbacks(self) -> None:
        written = self._callbacks
        self._callbacks = []
        # One writer, one multi-row INSERT into an AUTOINCREMENT table: the rows get consecutive
        # ids in the order written, the last one being `lastrowid`.
        last = self.conn.execute(_INSERT_CALLBACKS_SQL, (dumps(written),)).lastrowid
        if last is None:  # pragma: no cover - an INSERT of one row or more has a rowid
            return
        first = last - len(written) + 1
        before: dict[int, int | None] = {}
        superseded: list[list[object]] = []
        for cid, previous, waiting in fetch_all(
            self.conn, _PREVIOUS_PENDING_SQL, (first, last), ("id", "previous", "waiting")
        ):
            if waiting:  # it waits for its retry: this newer status goes instead, at once
                superseded.append([previous, written[cid - first][2]])
                previous = None
            before[cid] = previous
        if superseded:
            self.conn.execute(_SUPERSEDE_SQL, (self.now, dumps(superseded)))
        if self._lease is None:
            return
        for cid, values in enumerate(written, start=first):
            sid, url, status, error_code, raw_done_date = values[:5]
            row = self.rows[sid]
            self._created.append(
                Callback(
                    id=cid,
                    message_sid=sid,
                    account_sid=row["account_sid"],
                    url=url,
                    status=Status(status),
                    error_code=error_code,
                    raw_done_date=raw_done_date,
                    attempts=0,
                    from_addr=row["from_addr"],
                    to_addr=row["to_addr"],
                    after=before.get(cid),
                )
            )
