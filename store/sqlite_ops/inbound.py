"""Inbound (MO) messages as batch handlers: store a PDU, reassemble parts, give up waiting.

Why rows before the message is whole: the SMSC is acknowledged only once a PDU is durable, so each
part must be stored as it comes; a crash between parts then loses nothing, and the parts that
arrived later still find their message. The message row exists from the first part on, in
`receiving` (as Twilio shows a multi-part inbound message), with the number of parts it expects.

Inbound PDUs are a trickle beside outbound traffic, so these handlers favour plainness over
batching: a few statements per PDU. The rules come from `store.lifecycle`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from store import lifecycle
from store.commands import CompleteStaleInbound, RecordInbound
from store.errors import UnknownAccount
from store.lifecycle import Change
from store.models import INBOUND, InboundOutcome
from store.sqlite_ops import rows
from store.sqlite_ops.working_set import MESSAGE_COLUMNS, WorkingSet, fetch_all
from store.states import Status

_INSERT_MESSAGE_SQL = """
    INSERT INTO messages (sid, account_sid, direction, from_addr, to_addr, body, status,
                          num_segments, encoding, carrier, attempts, date_created, date_updated)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
"""

# The receiving message a part belongs to: same key, and a part of it seen within the window.
_FIND_RECEIVING_SQL = f"""
    SELECT m.sid FROM inbound_parts AS p JOIN messages AS m ON m.sid = p.message_sid
    WHERE p.concat_key = ? AND p.received_at >= ? AND m.status = '{Status.RECEIVING}'
    ORDER BY p.received_at DESC LIMIT 1
"""

_INSERT_PART_SQL = """
    INSERT OR IGNORE INTO inbound_parts
        (message_sid, concat_key, seqnum, data_coding, payload, received_at)
    VALUES (?, ?, ?, ?, ?, ?)
"""

Decode = Callable[[int, bytes], str]


def concat_key(c: RecordInbound) -> str:
    """Which parts make one message: carrier, sender, number, reference and part count."""
    ref, total, _ = c.concat or (0, 1, 1)
    return "\x1f".join((c.carrier, c.from_addr, c.to_addr, str(ref), str(total)))


def record_inbound(
    conn: sqlite3.Connection, commands: Sequence[RecordInbound], ctx
) -> list[object]:
    results: list[object] = []
    for command in commands:
        try:
            results.append(_record_one(conn, command, ctx))
        except sqlite3.IntegrityError as exc:
            if "FOREIGN KEY" not in str(exc):
                raise
            results.append(
                UnknownAccount(
                    f"Account {command.account_sid} does not exist; inbound message from "
                    f"{command.from_addr} to {command.to_addr} not stored."
                )
            )
    return results


def _record_one(conn: sqlite3.Connection, c: RecordInbound, ctx) -> InboundOutcome:
    at = rows.to_us(c.now)
    ws = ctx.working_set(conn, at)
    if c.concat is None:
        body = c.decode(c.data_coding, c.payload)
        whole = lifecycle.inbound_creation(whole=True)
        _insert_message(conn, ws, c, body, segments=1, change=whole)
        ws.flush()
        return InboundOutcome(c.sid, Status.RECEIVED)
    _ref, total, seqnum = c.concat
    key = concat_key(c)
    since = at - round(c.reassembly_seconds * 1_000_000)
    found = conn.execute(_FIND_RECEIVING_SQL, (key, since)).fetchone()
    if found is None:
        sid = c.sid
        _insert_message(
            conn, ws, c, "", segments=total, change=lifecycle.inbound_creation(whole=False)
        )
    else:
        sid = found[0]
    stored = conn.execute(
        _INSERT_PART_SQL, (sid, key, seqnum, c.data_coding, c.payload, at)
    ).rowcount
    have = conn.execute(
        "SELECT COUNT(*) FROM inbound_parts WHERE message_sid = ?", (sid,)
    ).fetchone()[0]
    if have < total:
        ws.flush()
        return InboundOutcome(sid, Status.RECEIVING, duplicate=not stored)
    ws.load([sid])
    _complete(conn, ws, sid, c.decode)
    ws.flush()
    return InboundOutcome(sid, Status.RECEIVED, duplicate=not stored)


def _insert_message(
    conn: sqlite3.Connection,
    ws: WorkingSet,
    c: RecordInbound,
    body: str,
    *,
    segments: int,
    change: Change,
) -> None:
    conn.execute(
        _INSERT_MESSAGE_SQL,
        (c.sid, c.account_sid, INBOUND, c.from_addr, c.to_addr, body, str(change.status),
         segments, c.encoding, c.carrier, ws.now, ws.now),
    )  # fmt: skip
    ws.created(c.sid, change, c.account_sid)


def _complete(conn: sqlite3.Connection, ws: WorkingSet, sid: str, decode: Decode) -> None:
    """Join the parts stored for `sid` in order, decode them, and mark the message received."""
    parts = conn.execute(
        "SELECT seqnum, data_coding, payload FROM inbound_parts WHERE message_sid = ?"
        " ORDER BY seqnum",
        (sid,),
    ).fetchall()
    view = ws.view(sid)
    have = {seqnum for seqnum, _, _ in parts}
    missing = [n for n in range(1, view.num_segments + 1) if n not in have]
    data_coding = parts[0][1] if parts else 0
    body = decode(data_coding, b"".join(bytes(payload) for _, _, payload in parts))
    conn.execute("UPDATE messages SET body = ? WHERE sid = ?", (body, sid))
    ws.apply(sid, lifecycle.inbound_completed(view, missing))


def complete_stale_inbound(
    conn: sqlite3.Connection, commands: Sequence[CompleteStaleInbound], ctx
) -> list[object]:
    results: list[object] = []
    for c in commands:
        ws = ctx.working_set(conn, rows.to_us(c.now))
        # Stale: no part came since `before` (the newest part's time, not the first's).
        stale = fetch_all(
            conn,
            f"""SELECT m.* FROM messages AS m INDEXED BY messages_receiving
                WHERE m.status = '{Status.RECEIVING}' AND m.date_created < ?
                  AND NOT EXISTS (SELECT 1 FROM inbound_parts AS p
                                  WHERE p.message_sid = m.sid AND p.received_at >= ?)
                ORDER BY m.date_created LIMIT ?""",
            (rows.to_us(c.before), rows.to_us(c.before), c.limit),
            MESSAGE_COLUMNS,
        )
        sids = [ws.add(values)["sid"] for values in stale]
        for sid in sids:
            _complete(conn, ws, sid, c.decode)
        ws.flush()
        # Parts of messages received long ago are no longer needed to spot a duplicate part.
        conn.execute(
            f"""DELETE FROM inbound_parts WHERE received_at < ? AND message_sid IN
                (SELECT sid FROM messages WHERE status = '{Status.RECEIVED}')""",
            (rows.to_us(c.before),),
        )
        results.append(sids)
    return results
