"""The dead-letter queue: what entered it (written by `WorkingSet` with the failing change, and by
`callback_give_up`), what an operator lists, replays and purges.

A replay is a write like any other — through the store's one writer, so it is ordered against the
delivery engine's claims and the API's cancels — and it is recorded twice: on the entry
(`replayed_at`, `replayed_to`) and in the message's history, so `smsgw messages show` tells the
whole story. Entries are kept after a replay (the operator's audit trail) until purged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from store import lifecycle
from store.commands import PurgeDeadLetters, ReplayDeadLetter
from store.errors import AlreadyReplayed, StoreError, UnknownDeadLetter
from store.models import CallbackRecord, DeadLetter, DeadLetterFilter, Message
from store.sqlite_ops import rows
from store.sqlite_ops.outbound import BatchContext, Results
from store.sqlite_ops.working_set import Said, dumps
from store.states import CallbackState, Status

_PENDING = f"'{CallbackState.PENDING}'"

GIVE_UP_SQL = """
    INSERT INTO dead_letters (kind, message_sid, callback_id, account_sid, carrier, reason,
                              error_code, error_message, attempts, entered_at)
    SELECT 'callback', c.message_sid, c.id, m.account_sid, m.carrier, 'callback_failed',
           NULL, 'StatusCallback ' || c.url || ' (' || c.status || '): ' || ?, c.attempts, ?
    FROM callbacks AS c JOIN messages AS m ON m.sid = c.message_sid WHERE c.id = ?
"""
"""A status callback given up enters the queue: params (last error, now µs, callback id)."""


def replay_dead_letter(
    conn: sqlite3.Connection, commands: Sequence[ReplayDeadLetter], ctx: BatchContext
) -> Results:
    """One at a time, in call order: two replays of one entry, the second is refused."""
    results: Results = []
    for c in commands:
        try:
            results.append(_replay(conn, c, ctx))
        except StoreError as exc:  # IllegalTransition included: nothing of it was written
            results.append(exc)
    return results


def _replay(conn: sqlite3.Connection, c: ReplayDeadLetter, ctx: BatchContext) -> DeadLetter:
    row = conn.execute("SELECT * FROM dead_letters WHERE id = ?", (c.entry_id,)).fetchone()
    if row is None:
        raise UnknownDeadLetter(f"Dead letter {c.entry_id} does not exist (purged?).")
    entry = rows.dead_letter(row)
    if entry.replayed_at is not None:
        raise AlreadyReplayed(
            f"Dead letter {entry.id} was replayed at {entry.replayed_at.isoformat()}"
            + (f" to {entry.replayed_to}" if entry.replayed_to else "")
            + "; replaying it again would send it twice."
        )
    if c.to_carrier is not None and c.route is None:
        raise StoreError("A replay to another carrier needs the route planned for that carrier.")
    at = rows.to_us(c.now)
    ws = ctx.working_set(conn, at)
    ws.load([entry.message_sid])
    sid = entry.message_sid
    if entry.kind == "callback":
        _replay_callback(conn, ws, entry, at)
        replayed_to = None
    else:
        change = lifecycle.decide(ws.view(sid), lifecycle.Replayed(c.to_carrier), now=at)
        row_now = ws.rows[sid]
        replayed_to = c.to_carrier or row_now["carrier"]
        ws.apply(sid, change, Said(carrier=replayed_to))
        ws.flush()
        _restart_validity(conn, row_now, at)
        if c.to_carrier is not None and c.route is not None:
            conn.execute(
                "UPDATE messages SET carrier = ?, route = ?, num_segments = ? WHERE sid = ?",
                (c.to_carrier, rows.route_json(c.route), len(c.route.parts), sid),
            )
    ws.flush()
    conn.execute(
        "UPDATE dead_letters SET replayed_at = ?, replayed_to = ? WHERE id = ?",
        (at, replayed_to, entry.id),
    )
    return rows.dead_letter(
        conn.execute("SELECT * FROM dead_letters WHERE id = ?", (entry.id,)).fetchone()
    )


def _restart_validity(conn: sqlite3.Connection, row: dict, at: int) -> None:
    """A replayed message gets as long again as its ValidityPeriod first gave it (else the one
    that expired would expire again at once)."""
    until = row["validity_until"]
    if until is None:
        return
    span = max(until - row["date_created"], 0)
    conn.execute("UPDATE messages SET validity_until = ? WHERE sid = ?", (at + span, row["sid"]))


def _replay_callback(conn: sqlite3.Connection, ws, entry: DeadLetter, at: int) -> None:
    newer = conn.execute(
        "SELECT status FROM callbacks WHERE message_sid = ? AND id > ? ORDER BY id DESC LIMIT 1",
        (entry.message_sid, entry.callback_id),
    ).fetchone()
    if newer is not None:
        raise StoreError(
            f"Dead letter {entry.id}: message {entry.message_sid} reported a newer status "
            f"({newer[0]}) since; replaying the old callback would tell the application a stale "
            "status. Purge the entry instead."
        )
    changed = conn.execute(
        f"""UPDATE callbacks SET state = {_PENDING}, attempts = 0, next_attempt_at = ?,
                lease_owner = NULL, last_error = NULL, updated_at = ?
            WHERE id = ? AND state = '{CallbackState.FAILED}'""",
        (at, at, entry.callback_id),
    ).rowcount
    if not changed:
        raise StoreError(f"Dead letter {entry.id}: its status callback is no longer failed.")
    ws.apply(
        entry.message_sid,
        lifecycle.Change(f"status_callback_replayed: callback {entry.callback_id}"),
    )


def purge_dead_letters(
    conn: sqlite3.Connection, commands: Sequence[PurgeDeadLetters], ctx: BatchContext
) -> Results:
    results: Results = []
    for c in commands:
        results.append(
            conn.execute(
                "DELETE FROM dead_letters WHERE id IN (SELECT value FROM json_each(?))",
                (dumps(list(c.entry_ids)),),
            ).rowcount
        )
    return results


# -- reads ---------------------------------------------------------------------------------


def list_dead_letters(conn: sqlite3.Connection, which: DeadLetterFilter) -> list[DeadLetter]:
    """Entries matching `which`, oldest first (by id: the order they entered)."""
    where = ["id > ?"]
    params: list[object] = [which.after_id]
    if not which.include_replayed:
        where.append("replayed_at IS NULL")
    for column, value in (
        ("carrier", which.carrier),
        ("account_sid", which.account_sid),
        ("error_code", which.error_code),
        ("kind", which.kind),
        ("message_sid", which.message_sid),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if which.since is not None:
        where.append("entered_at >= ?")
        params.append(rows.to_us(which.since))
    params.append(which.limit)
    cursor = conn.execute(
        f"SELECT * FROM dead_letters WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", params
    )
    return [rows.dead_letter(r) for r in cursor]


def get_dead_letter(conn: sqlite3.Connection, entry_id: int) -> DeadLetter | None:
    row = conn.execute("SELECT * FROM dead_letters WHERE id = ?", (entry_id,)).fetchone()
    return None if row is None else rows.dead_letter(row)


def find_message(conn: sqlite3.Connection, sid: str) -> Message | None:
    """The message whatever its account (the operator's view, never the API's)."""
    row = conn.execute("SELECT * FROM messages WHERE sid = ?", (sid,)).fetchone()
    return None if row is None else rows.message(row)


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
