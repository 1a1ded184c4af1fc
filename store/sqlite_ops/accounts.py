"""Accounts: the owners of messages and the holders of the credentials the API checks."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from store.errors import AlreadyExists
from store.models import Account
from store.sqlite_ops import rows

ACTIVE = "active"


def create_account(
    conn: sqlite3.Connection, sid: str, friendly_name: str, auth_token: str, now: datetime
) -> Account:
    at = rows.to_us(now)
    try:
        row = conn.execute(
            """INSERT INTO accounts (sid, friendly_name, auth_token, status, date_created,
                   date_updated)
               VALUES (?, ?, ?, ?, ?, ?) RETURNING *""",
            (sid, friendly_name, auth_token, ACTIVE, at, at),
        ).fetchone()
    except sqlite3.IntegrityError as exc:
        raise AlreadyExists(f"Account {sid} already exists.") from exc
    return rows.account(row)


def get_account(conn: sqlite3.Connection, sid: str) -> Account | None:
    row = conn.execute("SELECT * FROM accounts WHERE sid = ?", (sid,)).fetchone()
    return None if row is None else rows.account(row)


def list_accounts(conn: sqlite3.Connection) -> list[Account]:
    return [
        rows.account(r) for r in conn.execute("SELECT * FROM accounts ORDER BY date_created, sid")
    ]


def create_accounts(conn: sqlite3.Connection, commands, ctx) -> list[object]:
    """Batch handler for `CreateAccount` (rare: one at a time in practice)."""
    results: list[object] = []
    for c in commands:
        try:
            results.append(create_account(conn, c.sid, c.friendly_name, c.auth_token, c.now))
        except AlreadyExists as exc:
            results.append(exc)
    return results
