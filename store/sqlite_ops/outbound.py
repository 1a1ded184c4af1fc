"""The outbound lifecycle up to the carrier's answer, as batch handlers: accept, claim, submit
outcomes, requeue, lease recovery.

Each handler takes every waiting command of its kind and returns one result per command, in
order: a value, or an exception instance for a command that failed alone (the rest of the batch
still commits). The rules come from `store.lifecycle`; this module loads rows and writes changes.

Leases: `Claim` moves messages to `sending` and stamps them with the claiming process's owner id
and an expiry. A message in `sending` is in flight — maybe on the wire, maybe answered in a
response we have not recorded yet. If its owner dies nobody will record that answer, so
`RecoverLeases` (at start, and periodically while running) puts it back in line. That is the one
place duplicates come from: sending is at-least-once, duplicates limited to what was in flight.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from msgspec.structs import replace

from store import lifecycle
from store.commands import (
    Accept,
    Cancel,
    Claim,
    ExpireValidity,
    FailGoneCarriers,
    RecordSubmitAccepted,
    RecordSubmitFailed,
    RecoverLeases,
    ReleaseScheduled,
    Requeue,
)
from store.errors import (
    AlreadyExists,
    NotCancelable,
    QueueFull,
    StoreError,
    UnknownAccount,
    UnknownMessage,
)
from store.models import OUTBOUND_API, NewMessage
from store.sqlite_ops import rows
from store.sqlite_ops.receipts import PartsBook, apply_held_receipts
from store.sqlite_ops.working_set import (
    MESSAGE_COLUMNS,
    CallbackLease,
    Said,
    WorkingSet,
    dumps,
    fetch_all,
)
from store.states import CallbackState, IllegalTransition, PartState, Status

# The delivery engine's hot query. The literal 'queued' (not a parameter) matches the partial
# index `messages_due`, whose order (carrier, next_attempt_at, rowid) is the ORDER BY: no sort, and
# only `limit` rows are read however long the backlog is. INDEXED BY makes that a guarantee: if a
# schema change ever made the index unusable, the query would fail loudly instead of scanning.
VALIDITY_EXPIRED = lifecycle.ValidityExpired()

CLAIM_DUE_SQL = f"""
    SELECT * FROM messages INDEXED BY messages_due
    WHERE carrier = ? AND status = '{Status.QUEUED}' AND next_attempt_at <= ?
    ORDER BY next_attempt_at, rowid
    LIMIT ?
"""

_ACCEPT_COLUMNS = (
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
    "route",
    "next_attempt_at",
    "date_created",
    "date_updated",
    "validity_until",
)
_ACCEPT_SQL = (
    f"INSERT INTO messages ({', '.join(_ACCEPT_COLUMNS)}, attempts) SELECT "
    + ", ".join(f"value ->> {i}" for i in range(len(_ACCEPT_COLUMNS)))
    + ", 0 FROM json_each(?)"
)


@dataclass(slots=True)
class BatchContext:
    """What every handler shares with the store: who new callbacks are leased to, and the list
    they are handed out through after the commit (see `WorkingSet`)."""

    created_callbacks: list
    callback_lease: CallbackLease | None = None

    def working_set(self, conn: sqlite3.Connection, now: int) -> WorkingSet:
        return WorkingSet(
            conn,
            now,
            callback_lease=self.callback_lease,
            created_callbacks=self.created_callbacks,
        )


Results = list[object]


def accept(conn: sqlite3.Connection, commands: Sequence[Accept], ctx: BatchContext) -> Results:
    """Insert the batch with one statement and no look-ups first: an unknown account (the foreign
    key) or a sid already stored (the primary key) makes the INSERT raise, and then the writer runs
    every command alone (`store.writer`), where the one at fault gets its own error. SIDs carry 80
    random bits, so that is a bug or a replay, never the common case; two reads per batch were."""
    creations = {
        False: lifecycle.creation_change(),
        True: lifecycle.creation_change(scheduled=True),
    }
    results: Results = [None] * len(commands)
    batch: list[list[object]] = []
    ws = ctx.working_set(conn, 0)
    unsent = _unsent_counts(conn, commands)
    for i, command in enumerate(commands):
        msg = command.message
        if msg.num_segments < 1:
            results[i] = ValueError(
                f"Message {msg.sid} has num_segments={msg.num_segments}; it must be >= 1."
            )
            continue
        if msg.account_sid in unsent:
            queued = unsent[msg.account_sid]
            if command.max_unsent is not None and queued >= command.max_unsent:
                results[i] = QueueFull(msg.account_sid, queued, command.max_unsent)
                continue
            unsent[msg.account_sid] = queued + 1
        at = rows.to_us(command.now)
        creation = creations[msg.send_at is not None]
        due = at if msg.send_at is None else rows.to_us(msg.send_at)
        batch.append(
            [
                msg.sid,
                msg.account_sid,
                OUTBOUND_API,
                msg.from_addr,
                msg.to_addr,
                msg.body,
                str(creation.status),
                msg.num_segments,
                msg.encoding,
                msg.carrier,
                msg.status_callback,
                rows.route_json(msg.route),
                due,
                at,
                at,
                None if msg.validity_until is None else rows.to_us(msg.validity_until),
            ]
        )
        ws.now = at
        ws.created(msg.sid, creation, msg.account_sid)
        # None: the caller has the message as stored (`NewMessage.stored`); sending it back
        # across the writer's channel cost ~5 % of the writer's CPU for nothing
    if not batch:
        return results
    try:
        conn.execute(_ACCEPT_SQL, (dumps(batch),))
    except sqlite3.IntegrityError as exc:
        if len(commands) > 1:
            raise  # the writer runs each command alone to find the one at fault
        return [_refused(commands[0].message, exc)]
    ws.flush()
    return results


def _unsent_counts(conn: sqlite3.Connection, commands: Sequence[Accept]) -> dict[str, int]:
    """Unsent messages of each account in the batch that has a queue cap (one read of
    `account_backlog`, which `WorkingSet` keeps; nothing at all when no command is capped)."""
    capped = list({c.message.account_sid for c in commands if c.max_unsent is not None})
    if not capped:
        return {}
    counts = dict.fromkeys(capped, 0)
    counts.update(
        fetch_all(
            conn,
            "SELECT account_sid, unsent FROM account_backlog"
            " WHERE account_sid IN (SELECT value FROM json_each(?))",
            (dumps(capped),),
            ("account_sid", "unsent"),
        )
    )
    return counts


def _refused(msg: NewMessage, exc: sqlite3.IntegrityError) -> StoreError:
    if "FOREIGN KEY" in str(exc):
        return UnknownAccount(
            f"Account {msg.account_sid} does not exist; message {msg.sid} refused."
        )
    if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
        return AlreadyExists(f"Message {msg.sid} already exists.")
    raise exc


def claim(conn: sqlite3.Connection, commands: Sequence[Claim], ctx: BatchContext) -> Results:
    results: Results = []
    for command in commands:
        if command.limit < 0 or command.lease_seconds <= 0:
            results.append(
                ValueError(
                    f"claim needs limit >= 0 and lease_seconds > 0, got {command.limit} and "
                    f"{command.lease_seconds}"
                )
            )
            continue
        at = rows.to_us(command.now)
        ws = ctx.working_set(conn, at)
        happening = lifecycle.Claimed(command.owner, at + round(command.lease_seconds * 1e6))
        said = Said(carrier=command.carrier)
        claimed = []
        due = fetch_all(conn, CLAIM_DUE_SQL, (command.carrier, at, command.limit), MESSAGE_COLUMNS)
        for values in due:
            row = ws.add(values)
            sid = row["sid"]
            if row["validity_until"] is not None and row["validity_until"] <= at:
                # Too late to send: it fails here instead of going out past its validity.
                ws.apply(sid, lifecycle.decide(ws.view(sid), VALIDITY_EXPIRED, now=at), said)
                continue
            ws.apply(sid, lifecycle.decide(ws.view(sid), happening, now=at), said)
            claimed.append(sid)
        ws.flush()  # before the next claim's SELECT, which must not see these as queued
        accepted = _accepted_parts(conn, [s for s in claimed if ws.rows[s]["num_segments"] > 1])
        results.append(
            [
                replace(ws.message(sid), accepted_parts=accepted[sid])
                if sid in accepted
                else ws.message(sid)
                for sid in claimed
            ]
        )
    return results


def _accepted_parts(conn: sqlite3.Connection, sids: list[str]) -> dict[str, tuple[int, ...]]:
    """The parts of these (multi-part) messages a carrier already accepted, by message."""
    if not sids:
        return {}
    found: dict[str, set[int]] = {}
    # Only its present carrier's: a message replayed to another carrier sends every part there.
    for sid, index in fetch_all(
        conn,
        "SELECT p.message_sid, p.part_index FROM message_parts AS p"
        " JOIN messages AS m ON m.sid = p.message_sid AND m.carrier = p.carrier"
        " WHERE p.message_sid IN (SELECT value FROM json_each(?))",
        (dumps(sids),),
        ("message_sid", "part_index"),
    ):
        found.setdefault(sid, set()).add(index)
    return {sid: tuple(sorted(indices)) for sid, indices in found.items()}


_SCHEDULED_DUE_SQL = f"""
    SELECT * FROM messages INDEXED BY messages_scheduled
    WHERE status = '{Status.SCHEDULED}' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?
"""
SEND_TIME_CAME = lifecycle.SendTimeCame()
CANCEL_REQUESTED = lifecycle.CancelRequested()


def release_scheduled(
    conn: sqlite3.Connection, commands: Sequence[ReleaseScheduled], ctx: BatchContext
) -> Results:
    return [
        _happen_to_each(conn, ctx, _SCHEDULED_DUE_SQL, c.now, c.limit, SEND_TIME_CAME)
        for c in commands
    ]


def _happen_to_each(
    conn: sqlite3.Connection,
    ctx: BatchContext,
    select_sql: str,
    now: datetime,
    limit: int,
    happening: lifecycle.Happening,
) -> list[str]:
    """Apply `happening` to every message `select_sql` (params: now, limit) finds; their sids."""
    at = rows.to_us(now)
    ws = ctx.working_set(conn, at)
    sids = []
    for values in fetch_all(conn, select_sql, (at, limit), MESSAGE_COLUMNS):
        sid = ws.add(values)["sid"]
        ws.apply(sid, lifecycle.decide(ws.view(sid), happening, now=at))
        sids.append(sid)
    ws.flush()
    return sids


def cancel(conn: sqlite3.Connection, commands: Sequence[Cancel], ctx: BatchContext) -> Results:
    """In call order, so of two cancels of one message the second finds it canceled."""
    results: Results = []
    for command in commands:
        ws = ctx.working_set(conn, rows.to_us(command.now))
        ws.load([command.sid])
        row = ws.rows.get(command.sid)
        if row is None or row["account_sid"] != command.account_sid:
            results.append(UnknownMessage(f"Message {command.sid} was not found."))
            continue
        try:
            change = lifecycle.decide(ws.view(command.sid), CANCEL_REQUESTED, now=ws.now)
        except IllegalTransition:
            results.append(
                NotCancelable(
                    f"Message {command.sid} is {row['status']}; only a scheduled or queued "
                    "message (not yet on a carrier) can be canceled."
                )
            )
            continue
        ws.apply(command.sid, change)
        ws.flush()
        results.append(ws.message(command.sid))
    return results


_EXPIRED_SQL = f"""
    SELECT * FROM messages INDEXED BY messages_validity
    WHERE status = '{Status.QUEUED}' AND validity_until <= ? ORDER BY validity_until LIMIT ?
"""


def expire_validity(
    conn: sqlite3.Connection, commands: Sequence[ExpireValidity], ctx: BatchContext
) -> Results:
    """Queued messages whose validity ran out fail (30036) — found by their own index, so a
    carrier that is down (nothing is claimed) does not keep them queued past it."""
    return [
        _happen_to_each(conn, ctx, _EXPIRED_SQL, c.now, c.limit, VALIDITY_EXPIRED) for c in commands
    ]


# The carriers that have queued messages, by a loose scan of the queue's index: one probe per
# carrier (the next name after the last), however long each carrier's queue is.
_QUEUED_CARRIERS_SQL = f"""
    WITH RECURSIVE c(name) AS (
        SELECT MIN(carrier) FROM messages INDEXED BY messages_due WHERE status = '{Status.QUEUED}'
        UNION ALL
        SELECT (SELECT MIN(carrier) FROM messages INDEXED BY messages_due
                WHERE status = '{Status.QUEUED}' AND carrier > c.name)
        FROM c WHERE c.name IS NOT NULL
    )
    SELECT name FROM c WHERE name IS NOT NULL
"""
_QUEUED_OF_CARRIER_SQL = f"""
    SELECT * FROM messages INDEXED BY messages_due
    WHERE carrier = ? AND status = '{Status.QUEUED}' ORDER BY next_attempt_at LIMIT ?
"""


def fail_gone_carriers(
    conn: sqlite3.Connection, commands: Sequence[FailGoneCarriers], ctx: BatchContext
) -> Results:
    """Queued messages routed to a carrier the configuration no longer names fail into the
    dead-letter queue (an operator replays them to another carrier). Cheap enough to sweep
    often: the carriers with a queue are found one index probe each."""
    results: Results = []
    for c in commands:
        at = rows.to_us(c.now)
        ws = ctx.working_set(conn, at)
        sids: list[str] = []
        queued = [name for (name,) in conn.execute(_QUEUED_CARRIERS_SQL)]
        for carrier in (name for name in queued if name not in c.configured):
            gone = lifecycle.CarrierGone(carrier)
            left = c.limit - len(sids)
            if left <= 0:
                break
            for values in fetch_all(conn, _QUEUED_OF_CARRIER_SQL, (carrier, left), MESSAGE_COLUMNS):
                sid = ws.add(values)["sid"]
                ws.apply(sid, lifecycle.decide(ws.view(sid), gone, now=at), Said(carrier))
                sids.append(sid)
        ws.flush()
        results.append(sids)
    return results


def record_submit_accepted(
    conn: sqlite3.Connection, commands: Sequence[RecordSubmitAccepted], ctx: BatchContext
) -> Results:
    ws = ctx.working_set(conn, 0)
    ws.load(c.sid for c in commands)
    book = PartsBook.load(conn, [c.sid for c in commands if c.sid in ws.rows])
    existing = {
        (carrier, cmid): (rowid, sid)
        for rowid, carrier, cmid, sid in fetch_all(
            conn,
            """SELECT rowid AS part_rowid, carrier, carrier_message_id, message_sid
               FROM message_parts
               WHERE (carrier, carrier_message_id) IN
                     (SELECT value ->> 0, value ->> 1 FROM json_each(?))""",
            (dumps([[c.carrier, c.carrier_message_id] for c in commands]),),
            ("part_rowid", "carrier", "carrier_message_id", "message_sid"),
        )
    }
    results: Results = []
    accepted: list[RecordSubmitAccepted] = []
    refreshed: list[list[object]] = []
    for command in commands:
        if command.sid not in ws.rows:
            results.append(None)
            continue
        ws.now = rows.to_us(command.now)
        view = ws.view(command.sid)
        if not 0 <= command.part_index < view.num_segments:
            results.append(
                ValueError(
                    f"Message {command.sid} has {view.num_segments} part(s); part_index "
                    f"{command.part_index} is out of range."
                )
            )
            continue
        said = Said(carrier=command.carrier, bind=command.bind)
        key = (command.carrier, command.carrier_message_id)
        holder = existing.get(key)
        mine = holder is not None and holder[1] == command.sid
        if mine and view.status is Status.SENDING:
            # A resend answered with the id its earlier copy had (an SMSC that recognises the
            # duplicate): an acceptance all the same. The part keeps its row (and any receipt);
            # its receipt window starts again.
            book.resubmitted(command.carrier, command.carrier_message_id, ws.now)
            refreshed.append([command.carrier, command.carrier_message_id, ws.now])
        elif not mine:
            if holder is not None:
                # The carrier reused an id (some SMSCs wrap a counter, a restarted one starts
                # over): the newest submit owns it now.
                conn.execute("DELETE FROM message_parts WHERE rowid = ?", (holder[0],))
                book.forget(holder[1], command.carrier, command.carrier_message_id)
            existing[key] = (None, command.sid)
            book.add(
                command.sid, command.part_index, command.carrier, command.carrier_message_id, ws.now
            )
            accepted.append(command)
        duplicate = mine and view.status is not Status.SENDING
        happening = lifecycle.SubmitAccepted(
            command.part_index, book.accepted_count(command.sid), duplicate
        )
        ws.apply(command.sid, lifecycle.decide(view, happening, now=ws.now), said)
        # A resent segment may already have its receipt from an earlier copy: a message whose
        # parts' receipts decide it (all delivered, or one failed) settles as it becomes sent.
        now_view = ws.view(command.sid)
        if view.status is Status.SENDING and book.has_resent_parts(command.sid):
            settled = lifecycle.settlement(now_view, book.views(command.sid), "receipt")
            if settled is not None:
                ws.apply(command.sid, settled, said)
        results.append(command)
    if accepted:
        conn.execute(
            """INSERT INTO message_parts (message_sid, part_index, carrier, carrier_message_id,
                   status, submitted_at, raw_message_id)
               SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
                   value ->> 6
               FROM json_each(?)""",
            (
                dumps(
                    [
                        [
                            c.sid,
                            c.part_index,
                            c.carrier,
                            c.carrier_message_id,
                            str(PartState.SENT),
                            rows.to_us(c.now),
                            c.raw_message_id,
                        ]
                        for c in accepted
                    ]
                ),
            ),
        )
        apply_held_receipts(conn, ws, book, accepted)
    if refreshed:
        conn.execute(
            """UPDATE message_parts SET submitted_at = j.value ->> 2 FROM json_each(?) AS j
               WHERE carrier = j.value ->> 0 AND carrier_message_id = j.value ->> 1""",
            (dumps(refreshed),),
        )
    ws.flush()
    return [
        r if not isinstance(r, RecordSubmitAccepted) else Status(ws.rows[r.sid]["status"])
        for r in results
    ]


def record_submit_failed(
    conn: sqlite3.Connection, commands: Sequence[RecordSubmitFailed], ctx: BatchContext
) -> Results:
    ws = ctx.working_set(conn, 0)
    ws.load(c.sid for c in commands)
    results: Results = []
    for c in commands:
        if c.sid not in ws.rows:
            results.append(UnknownMessage(f"Message {c.sid} does not exist."))
            continue
        ws.now = rows.to_us(c.now)
        happening = lifecycle.SubmitFailed(
            retry_at=None if c.retry_at is None else rows.to_us(c.retry_at),
            counts_attempt=c.counts_attempt,
            error_code=c.error_code,
            error_message=c.error_message,
            reason=c.reason,
            dead_letter=c.dead_letter,
        )
        try:
            change = lifecycle.decide(ws.view(c.sid), happening, now=ws.now)
        except Exception as exc:
            results.append(exc)
            continue
        ws.apply(c.sid, change, Said(carrier=c.carrier, smpp_status=c.smpp_status, bind=c.bind))
        results.append(c.sid)
    ws.flush()
    return [ws.message(r) if isinstance(r, str) else r for r in results]


def requeue(conn: sqlite3.Connection, commands: Sequence[Requeue], ctx: BatchContext) -> Results:
    ws = ctx.working_set(conn, 0)
    ws.load(c.sid for c in commands)
    results: Results = []
    for c in commands:
        if c.sid not in ws.rows:
            results.append(UnknownMessage(f"Message {c.sid} does not exist."))
            continue
        ws.now = rows.to_us(c.now)
        try:
            change = lifecycle.decide(ws.view(c.sid), lifecycle.Requeued(c.reason), now=ws.now)
        except Exception as exc:
            results.append(exc)
            continue
        ws.apply(c.sid, change)
        results.append(c.sid)
    ws.flush()
    return [ws.message(r) if isinstance(r, str) else r for r in results]


def recover_leases(
    conn: sqlite3.Connection, commands: Sequence[RecoverLeases], ctx: BatchContext
) -> Results:
    results: Results = []
    for c in commands:
        at = rows.to_us(c.now)
        ws = ctx.working_set(conn, at)
        stranded = fetch_all(
            conn,
            f"""SELECT * FROM messages WHERE status = '{Status.SENDING}'
                AND (lease_expires_at IS NULL OR lease_expires_at <= ?
                     OR (? AND lease_owner IS NOT ?))
                ORDER BY rowid""",
            (at, c.others_are_dead, c.owner),
            MESSAGE_COLUMNS,
        )
        for values in stranded:
            row = ws.add(values)
            sid, owner = row["sid"], row["lease_owner"]
            gone = c.others_are_dead and owner != c.owner
            why = f"owner {owner} is gone" if gone else "lease ran out"
            ws.apply(sid, lifecycle.decide(ws.view(sid), lifecycle.LeaseExpired(why), now=at))
        ws.flush()
        # Status callbacks leased to a sender that is gone (or whose lease ran out) are due now.
        conn.execute(
            f"""UPDATE callbacks SET lease_owner = NULL, next_attempt_at = ?
                WHERE state = '{CallbackState.PENDING}' AND lease_owner IS NOT NULL
                  AND (next_attempt_at <= ? OR (? AND lease_owner IS NOT ?))""",
            (at, at, c.others_are_dead, c.owner),
        )
        results.append(len(stranded))
    return results
