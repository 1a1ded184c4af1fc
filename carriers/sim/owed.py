"""What the simulator still owes its ESMEs — receipts and MO messages not yet acknowledged —
kept in a small SQLite file so that they survive a restart.

Why: a real SMSC keeps undelivered deliver_sm until a receiver binds again, however long the
ESME was gone. The built-in simulator runs inside the daemon, so a daemon that crashes used to
take every pending receipt with it, and the messages it had sent stayed `sent` for ever. With a
file, the simulator of the restarted daemon loads what it owed and delivers it once the gateway
binds, as a carrier would.

The file is the simulator's, not the gateway's store: `synchronous = OFF`, because what must
survive is a crash of the process (the OS still has the pages), not a power cut; and it is
written on the event loop, which a few small statements per receipt do not slow noticeably.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from carriers.smpp.codec import decode, encode_with_sequence
from carriers.smpp.pdus import DeliverSm


@dataclass(frozen=True, slots=True)
class Owed:
    key: int
    system_id: str
    pdu: DeliverSm
    due: float  # wall-clock seconds (time.time()): monotonic clocks do not survive a restart


class OwedDeliveries:
    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = OFF")
        self._conn.execute(
            """CREATE TABLE IF NOT EXISTS owed (
                key INTEGER PRIMARY KEY AUTOINCREMENT,
                system_id TEXT NOT NULL,
                pdu BLOB NOT NULL,
                due REAL NOT NULL
            )"""
        )

    def add(self, system_id: str, pdu: DeliverSm, delay: float) -> int:
        cursor = self._conn.execute(
            "INSERT INTO owed (system_id, pdu, due) VALUES (?, ?, ?)",
            (system_id, encode_with_sequence(pdu, 1), time.time() + delay),
        )
        return cursor.lastrowid

    def done(self, key: int) -> None:
        self._conn.execute("DELETE FROM owed WHERE key = ?", (key,))

    def load(self) -> list[Owed]:
        rows = self._conn.execute("SELECT key, system_id, pdu, due FROM owed ORDER BY key")
        return [Owed(key, system_id, decode(pdu), due) for key, system_id, pdu, due in rows]

    def close(self) -> None:
        self._conn.close()
