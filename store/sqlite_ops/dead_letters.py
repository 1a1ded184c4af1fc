"""The dead-letter queue: what entered it (written by `WorkingSet` with the failing change, and by
`callbacks.callback_give_up`), what an operator lists, replays and purges.

A replay is a write like any other — through the store's one writer, so it is ordered against the
delivery engine's claims and the API's cancels — and it is recorded twice: on the entry
(`replayed_at`, `replayed_to`) and in the message's history, so `smsgw messages show` tells the
whole story. Entries are kept after a replay (the operator's audit trail) until purged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec

from store import lifecycle
from store.commands import PurgeDeadLetters, ReplayDeadLetter
from store.errors import AlreadyReplayed, StoreError, UnknownDeadLetter
from store.models import DeadLetter, DeadLetterFilter
from store.sqlite_ops import rows
from store.sqlite_ops.callbacks import newer_status
from store.sqlite_ops.outbound import BatchContext, Results
from store.sqlite_ops.working_set import Said, dumps
from store.states import CallbackState

_PENDING = f"'{CallbackState.PENDING}'"


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
    entry = get_dead_letter(conn, c.entry_id)
    if entry is None:
        raise UnknownDeadLetter(f"Dead letter {c.entry_id} does not exist (purged?).")
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
        _restart_validity(conn, row_now, at)
        if c.route is not None:
            conn.execute(
                "UPDATE messages SET carrier = ?, route = ?, num_segments = ? WHERE sid = ?",
                (c.to_carrier, rows.route_json(c.route), len(c.route.parts), sid),
            )
    ws.flush()
    conn.execute(
        "UPDATE dead_letters SET replayed_at = ?, replayed_to = ? WHERE id = ?",
        (at, replayed_to, entry.id),
    )
    return msgspec.structs.replace(entry, replayed_at=rows.from_us(at), replayed_to=replayed_to)


def _restart_validity(conn: sqlite3.Connection, row: dict, at: int) -> None:
    """A replayed message gets as long again as its ValidityPeriod first gave it (else the one
    that expired would expire again at once)."""
    until = row["validity_until"]
    if until is None:
        return
    span = max(until - row["date_created"], 0)
    conn.execute("UPDATE messages SET validity_until = ? WHERE sid = ?", (at + span, row["sid"]))


def _replay_callback(conn: sqlite3.Connection, ws, entry: DeadLetter, at: int) -> None:
    newer = newer_status(conn, entry.callback_id)
    if newer is not None:
        raise StoreError(
            f"Dead letter {entry.id}: message {entry.message_sid} reported a newer status "
            f"({newer}) since; replaying the old callback would tell the application a stale "
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
