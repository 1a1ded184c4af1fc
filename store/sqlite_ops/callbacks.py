"""The status-callback outbox: rows written with each reported transition, delivered by the webhook
sender under a lease.

Callbacks for one message are delivered in order — a customer must not see `delivered` and then
`sent` — so only the oldest pending callback of each message is ever due; the next one becomes due
when it is acknowledged or given up. A callback being delivered is leased to its sender
(`lease_owner`, with `next_attempt_at` as the lease's end): two nodes never send the same one, and
one whose sender died is due again when the lease runs out.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from store.commands import (
    CallbackDelivered,
    CallbackGiveUp,
    CallbackRetry,
    CallbacksDelivered,
    CallbackSuperseded,
    ClaimCallbacks,
    ReleaseCallbacks,
)
from store.errors import CallbackNotPending, UnknownCallback
from store.sqlite_ops import rows
from store.sqlite_ops.working_set import dumps, fetch_all, fetch_dicts
from store.states import CallbackState

_PENDING = f"'{CallbackState.PENDING}'"

DUE_CALLBACKS_SQL = f"""
    SELECT c.id FROM callbacks AS c INDEXED BY callbacks_due
    WHERE c.state = {_PENDING} AND c.next_attempt_at <= ?
      AND c.id = (SELECT MIN(p.id) FROM callbacks AS p
                  WHERE p.message_sid = c.message_sid AND p.state = {_PENDING})
    ORDER BY c.next_attempt_at, c.id
    LIMIT ?
"""

_LEASE_SQL = f"""
    UPDATE callbacks SET lease_owner = j.value ->> 1, next_attempt_at = j.value ->> 2
    FROM json_each(?) AS j WHERE callbacks.id = j.value ->> 0 AND state = {_PENDING}
"""

_CALLBACK_FIELDS = (
    "id",
    "message_sid",
    "account_sid",
    "url",
    "status",
    "error_code",
    "raw_done_date",
    "attempts",
    "from_addr",
    "to_addr",
)
_LEASED_SQL = """
    SELECT c.id AS id, c.message_sid AS message_sid, m.account_sid AS account_sid, c.url AS url,
           c.status AS status, c.error_code AS error_code, c.raw_done_date AS raw_done_date,
           c.attempts AS attempts, m.from_addr AS from_addr, m.to_addr AS to_addr
    FROM callbacks AS c JOIN messages AS m ON m.sid = c.message_sid
    WHERE c.id IN (SELECT value FROM json_each(?)) ORDER BY c.id
"""


def claim_callbacks(
    conn: sqlite3.Connection, commands: Sequence[ClaimCallbacks], ctx
) -> list[object]:
    results: list[object] = []
    for c in commands:
        if c.limit < 0 or c.lease_seconds <= 0:
            results.append(
                ValueError(
                    f"claiming callbacks needs limit >= 0 and lease_seconds > 0, got {c.limit} "
                    f"and {c.lease_seconds}"
                )
            )
            continue
        at = rows.to_us(c.now)
        ids = [cid for (cid,) in fetch_all(conn, DUE_CALLBACKS_SQL, (at, c.limit), ("id",))]
        if not ids:
            results.append([])
            continue
        until = at + round(c.lease_seconds * 1e6)
        conn.execute(_LEASE_SQL, (dumps([[cid, c.owner, until] for cid in ids]),))
        leased = fetch_dicts(conn, _LEASED_SQL, (dumps(ids),), _CALLBACK_FIELDS)
        results.append([rows.callback(r) for r in leased])
    return results


def release_callbacks(
    conn: sqlite3.Connection, commands: Sequence[ReleaseCallbacks], ctx
) -> list[object]:
    conn.execute(
        f"""UPDATE callbacks SET lease_owner = NULL, next_attempt_at = j.value ->> 1
            FROM json_each(?) AS j
            WHERE callbacks.id = j.value ->> 0 AND state = {_PENDING}""",
        (dumps([[cid, rows.to_us(c.now)] for c in commands for cid in c.callback_ids]),),
    )
    return [None] * len(commands)


_DELIVERED_SQL = f"""
    UPDATE callbacks SET state = '{CallbackState.DONE}', lease_owner = NULL,
        attempts = attempts + 1, updated_at = j.value ->> 1
    FROM json_each(?) AS j
    WHERE callbacks.id = j.value ->> 0 AND state = {_PENDING}
"""


class _NotAllPending(Exception):
    """Some callback of the batch was not pending: run each command alone to tell which."""


def callback_delivered(
    conn: sqlite3.Connection, commands: Sequence[CallbackDelivered], ctx
) -> list[object]:
    """One UPDATE for the batch. In the common case every callback named was pending and the
    count of rows changed says so; otherwise (one settled twice, a lease that ran out and was
    claimed again) the writer runs each command alone, and the one not pending gets its error."""
    wanted = list(dict.fromkeys(c.callback_id for c in commands))
    if len(wanted) != len(commands) and len(commands) > 1:
        raise _NotAllPending(f"callbacks named twice in one batch: {len(commands) - len(wanted)}")
    at = {c.callback_id: rows.to_us(c.now) for c in commands}
    changed = conn.execute(_DELIVERED_SQL, (dumps([[cid, at[cid]] for cid in wanted]),)).rowcount
    if changed == len(wanted):
        return [None] * len(commands)
    if len(commands) > 1:
        raise _NotAllPending(f"{len(wanted) - changed} of {len(wanted)} callbacks not pending")
    return [_not_pending(conn, commands[0].callback_id)]


def callbacks_delivered(
    conn: sqlite3.Connection, commands: Sequence[CallbacksDelivered], ctx
) -> list[object]:
    """One UPDATE per command (normally one per batch); the ids it could not settle (not pending)
    are its result. When some were not pending, the UPDATE is undone and done again for the
    pending ones only, so which ones it settled is known exactly (a rare path)."""
    results: list[object] = []
    for c in commands:
        wanted = list(dict.fromkeys(c.callback_ids))
        at = rows.to_us(c.now)
        conn.execute("SAVEPOINT delivered")
        changed = conn.execute(_DELIVERED_SQL, (dumps([[cid, at] for cid in wanted]),)).rowcount
        if changed != len(wanted):
            conn.execute("ROLLBACK TO delivered")
            pending = {
                row[0]
                for row in fetch_all(
                    conn,
                    "SELECT id FROM callbacks WHERE id IN (SELECT value FROM json_each(?))"
                    f" AND state = {_PENDING}",
                    (dumps(wanted),),
                    ("id",),
                )
            }
            conn.execute(_DELIVERED_SQL, (dumps([[cid, at] for cid in wanted if cid in pending]),))
            results.append(tuple(cid for cid in wanted if cid not in pending))
        else:
            results.append(())
        conn.execute("RELEASE delivered")
    return results


def callback_retry(
    conn: sqlite3.Connection, commands: Sequence[CallbackRetry], ctx
) -> list[object]:
    """A retry, unless a newer status of the message is pending: then this one is superseded
    (the application needs the newest state; see `callback_superseded`)."""
    results: list[object] = []
    for c in commands:
        at, retry_at = rows.to_us(c.now), rows.to_us(c.next_attempt_at)
        if _supersede(conn, c.callback_id, c.error, at):
            results.append(None)
            continue
        updated = conn.execute(
            f"""UPDATE callbacks SET last_error = ?, next_attempt_at = ?, lease_owner = NULL,
                    attempts = attempts + 1, updated_at = ?
                WHERE id = ? AND state = {_PENDING} RETURNING message_sid""",
            (c.error, retry_at, at, c.callback_id),
        ).fetchone()
        if updated is None:
            results.append(_not_pending(conn, c.callback_id))
            continue
        # The message's later callbacks wait behind this one: release any lease on them so they
        # are claimed (in order) once this one is done.
        conn.execute(
            f"""UPDATE callbacks SET lease_owner = NULL, next_attempt_at = ?
                WHERE message_sid = ? AND state = {_PENDING} AND id > ?""",
            (retry_at, updated[0], c.callback_id),
        )
        results.append(None)
    return results


def callback_give_up(
    conn: sqlite3.Connection, commands: Sequence[CallbackGiveUp], ctx
) -> list[object]:
    """`failed`, and into the dead-letter queue (an operator can replay it) — unless a newer
    status of its message exists: then it is only stale, and skipped."""
    results: list[object] = []
    for c in commands:
        at = rows.to_us(c.now)
        if _supersede(conn, c.callback_id, c.error, at):
            results.append(None)
            continue
        updated = conn.execute(
            f"""UPDATE callbacks SET state = '{CallbackState.FAILED}', last_error = ?,
                    lease_owner = NULL, attempts = attempts + 1, updated_at = ?
                WHERE id = ? AND state = {_PENDING} RETURNING id""",
            (c.error, at, c.callback_id),
        ).fetchone()
        if updated is None:
            results.append(_not_pending(conn, c.callback_id))
            continue
        conn.execute(GIVE_UP_SQL, (c.error, at, c.callback_id))
        results.append(None)
    return results


def callback_superseded(
    conn: sqlite3.Connection, commands: Sequence[CallbackSuperseded], ctx
) -> list[object]:
    """The sender saw this callback fail with a newer one of its message waiting: `skipped`
    (never sent again, so the order the application sees still only moves forward), and the
    newer one is due now. If no newer one is pending after all, it is an ordinary retry at
    once — a status is never skipped for nothing. (A retry does exactly that; due now.)"""
    return callback_retry(
        conn, [CallbackRetry(c.callback_id, c.error, c.now, c.now) for c in commands], ctx
    )


GIVE_UP_SQL = """
    INSERT INTO dead_letters (kind, message_sid, callback_id, account_sid, carrier, reason,
                              error_code, error_message, attempts, entered_at)
    SELECT 'callback', c.message_sid, c.id, m.account_sid, m.carrier, 'callback_failed',
           NULL, 'StatusCallback ' || c.url || ' (' || c.status || '): ' || ?, c.attempts, ?
    FROM callbacks AS c JOIN messages AS m ON m.sid = c.message_sid WHERE c.id = ?
"""
"""A status callback given up enters the dead-letter queue: params (last error, now µs, id)."""

# A newer callback of the same message, in any state: pending (it waits behind this one) or
# already settled (a newer status went out, or was given up or skipped in its turn). Either way
# the older one is stale: posting it now would tell the application an older status after a newer.
_NEWER_SQL = """
    SELECT n.status FROM callbacks AS c JOIN callbacks AS n
        ON n.message_sid = c.message_sid AND n.id > c.id
    WHERE c.id = ? ORDER BY n.id LIMIT 1
"""


def newer_status(conn: sqlite3.Connection, callback_id: int) -> str | None:
    """The status of the first callback written after `callback_id` for its message, if any."""
    row = conn.execute(_NEWER_SQL, (callback_id,)).fetchone()
    return None if row is None else row[0]


def _supersede(conn: sqlite3.Connection, callback_id: int, error: str, at: int) -> bool:
    """Skip pending `callback_id` if its message has a newer callback (see `_NEWER_SQL`); the
    pending ones after it are due at once, unleased (a sender already holding one in memory
    takes the claim of an id it holds as the same one). Whether it was skipped.

    Why "newer in any state", not only pending: the sender's settles are written without
    waiting, so a newer callback may be delivered, and its settle committed, before the older
    one's failure is (measured under CI load: the older was then retried after the newer)."""
    newer = newer_status(conn, callback_id)
    if newer is None:
        return False
    skipped = conn.execute(
        f"""UPDATE callbacks SET state = '{CallbackState.SKIPPED}', lease_owner = NULL,
                attempts = attempts + 1, updated_at = ?,
                last_error = ? || '; superseded by the newer status ' || ?
            WHERE id = ? AND state = {_PENDING}""",
        (at, error, newer, callback_id),
    ).rowcount
    if not skipped:
        return False  # not pending: the caller's own UPDATE finds that and says so
    conn.execute(
        f"""UPDATE callbacks SET next_attempt_at = ?, lease_owner = NULL
            WHERE message_sid = (SELECT message_sid FROM callbacks WHERE id = ?)
              AND state = {_PENDING} AND id > ?""",
        (at, callback_id, callback_id),
    )
    return True


def _not_pending(conn: sqlite3.Connection, callback_id: int) -> Exception:
    row = conn.execute("SELECT state FROM callbacks WHERE id = ?", (callback_id,)).fetchone()
    if row is None:
        return UnknownCallback(f"Status callback {callback_id} does not exist.")
    return CallbackNotPending(f"Status callback {callback_id} is already {row['state']}.")
