"""The SQLite schema as an ordered list of migrations, applied when the store opens.

Why migrations from day one: a gateway's database outlives its binary. A newer daemon must open the
file an older one wrote (apply the migrations it lacks, each in its own transaction, recorded in
`schema_version`), and an older daemon must refuse a file from a newer one rather than write rows
that the newer schema would misread.

Conventions: times are INTEGER microseconds since the Unix epoch, UTC (they sort, compare and index
as numbers); statuses are the `store.states.Status` strings; a migration is never edited once
released — add a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from store.errors import SchemaTooNew


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


_UNSENT = "('scheduled', 'queued', 'sending')"  # not yet on a carrier (the queue cap counts them)
_AUTO_KEY = "COALESCE(NULLIF(ltrim(lower(trim(carrier_message_id, ' ')), '0'), ''), '0')"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial schema: accounts, messages, parts, events, orphan receipts, callback outbox",
        (
            """CREATE TABLE accounts (
                sid TEXT PRIMARY KEY,
                friendly_name TEXT NOT NULL,
                auth_token TEXT NOT NULL,
                status TEXT NOT NULL,
                date_created INTEGER NOT NULL,
                date_updated INTEGER NOT NULL
            )""",
            """CREATE TABLE messages (
                sid TEXT PRIMARY KEY,
                account_sid TEXT NOT NULL REFERENCES accounts(sid),
                direction TEXT NOT NULL,
                from_addr TEXT NOT NULL,
                to_addr TEXT NOT NULL,
                body TEXT NOT NULL,
                status TEXT NOT NULL,
                num_segments INTEGER NOT NULL CHECK (num_segments >= 1),
                encoding TEXT NOT NULL,
                carrier TEXT NOT NULL,
                status_callback TEXT,
                error_code INTEGER,
                error_message TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at INTEGER,
                lease_owner TEXT,
                lease_expires_at INTEGER,
                date_created INTEGER NOT NULL,
                date_updated INTEGER NOT NULL,
                date_sent INTEGER
            )""",
            # The delivery engine's question: "due queued messages of carrier C, oldest due first".
            # Partial on status so the index holds only the queue, not the (much larger) history;
            # rowid breaks ties in acceptance order without a sort.
            """CREATE INDEX messages_due ON messages (carrier, next_attempt_at)
                WHERE status = 'queued'""",
            # The API's list: an account's messages newest first, keyset-paged by (date, sid).
            "CREATE INDEX messages_account ON messages (account_sid, date_created, sid)",
            # count_by_status and lease recovery (status = 'sending').
            "CREATE INDEX messages_status ON messages (status)",
            """CREATE TABLE message_parts (
                message_sid TEXT NOT NULL REFERENCES messages(sid) ON DELETE CASCADE,
                part_index INTEGER NOT NULL,
                carrier TEXT NOT NULL,
                carrier_message_id TEXT NOT NULL,
                status TEXT NOT NULL,
                error_code INTEGER,
                raw_stat TEXT,
                raw_err TEXT,
                done_date TEXT
            )""",
            # One row per carrier message id: a resent segment gets a new id and a new row, so a
            # receipt for either copy still finds its message.
            """CREATE UNIQUE INDEX message_parts_carrier_id
                ON message_parts (carrier, carrier_message_id)""",
            "CREATE INDEX message_parts_message ON message_parts (message_sid, part_index)",
            """CREATE TABLE message_events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                message_sid TEXT NOT NULL REFERENCES messages(sid) ON DELETE CASCADE,
                at INTEGER NOT NULL,
                from_status TEXT,
                to_status TEXT,
                reason TEXT NOT NULL,
                carrier TEXT,
                smpp_status INTEGER,
                receipt_stat TEXT,
                receipt_err TEXT,
                attempt INTEGER
            )""",
            "CREATE INDEX message_events_message ON message_events (message_sid, id)",
            # Receipts that overtook their submit_sm_resp. `delivered`, `final` and `error_code`
            # are kept so the receipt can be applied later exactly as if it had just arrived.
            """CREATE TABLE orphan_receipts (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                carrier TEXT NOT NULL,
                carrier_message_id TEXT NOT NULL,
                stat TEXT,
                err TEXT,
                done_date TEXT,
                delivered INTEGER NOT NULL,
                final INTEGER NOT NULL,
                error_code INTEGER,
                received_at INTEGER NOT NULL
            )""",
            """CREATE INDEX orphan_receipts_carrier_id
                ON orphan_receipts (carrier, carrier_message_id)""",
            "CREATE INDEX orphan_receipts_received ON orphan_receipts (received_at)",
            """CREATE TABLE callbacks (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                message_sid TEXT NOT NULL REFERENCES messages(sid) ON DELETE CASCADE,
                url TEXT NOT NULL,
                status TEXT NOT NULL,
                error_code INTEGER,
                raw_done_date TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at INTEGER NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
                last_error TEXT,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            )""",
            "CREATE INDEX callbacks_due ON callbacks (next_attempt_at) WHERE state = 'pending'",
            # Per-message order: "oldest pending callback of this message", "last status reported".
            "CREATE INDEX callbacks_message ON callbacks (message_sid, id)",
        ),
    ),
    Migration(
        2,
        "routes kept at accept, last reported status, receipt windows, callback and lease sweeps",
        (
            # The route decided at accept, as JSON: [[source addr, ton, npi], [destination addr,
            # ton, npi], [part, ...]]; NULL for messages stored before routes were kept.
            "ALTER TABLE messages ADD COLUMN route TEXT",
            # The status of the newest callback written for the message (what the customer was
            # last told), kept on the row so a transition need not look it up.
            "ALTER TABLE messages ADD COLUMN reported_status TEXT",
            """UPDATE messages SET reported_status = (
                SELECT c.status FROM callbacks AS c WHERE c.message_sid = messages.sid
                ORDER BY c.id DESC LIMIT 1)""",
            # The periodic lease sweep: in-flight messages by lease expiry.
            """CREATE INDEX messages_leases ON messages (lease_expires_at)
                WHERE status = 'sending'""",
            # When a part was accepted: a receipt matches it only within the receipt window.
            "ALTER TABLE message_parts ADD COLUMN submitted_at INTEGER",
            """UPDATE message_parts SET submitted_at = (
                SELECT COALESCE(m.date_sent, m.date_updated) FROM messages AS m
                WHERE m.sid = message_parts.message_sid)""",
            """CREATE INDEX message_parts_waiting ON message_parts (carrier, submitted_at)
                WHERE status = 'sent'""",
            # A callback being delivered is leased to its sender: `next_attempt_at` is then the
            # lease's end, so "due" is one index range whether it was leased, retried or new.
            "ALTER TABLE callbacks ADD COLUMN lease_owner TEXT",
        ),
    ),
    Migration(
        3,
        "carrier message ids awaiting a receipt kept under the auto key (receipt_id_format)",
        (
            # Receipts are now matched by a key (carriers/smpp/message_ids.py; default `auto`:
            # case and leading zeros do not count). Parts sent before, and receipts held, get
            # the same key so they still match. OR IGNORE: two ids that only differed by case
            # or zeros keep the first.
            f"""UPDATE OR IGNORE message_parts SET carrier_message_id = {_AUTO_KEY}
                WHERE status = 'sent'""",
            f"UPDATE orphan_receipts SET carrier_message_id = {_AUTO_KEY}",
        ),
    ),
    Migration(
        4,
        "inbound (MO) parts kept until their message is whole",
        (
            # One row per part of a concatenated inbound message while it is `receiving` (and
            # a while after, so a part the SMSC delivers twice is known). Octets, not text: the
            # parts are joined before decoding (carriers/smpp/inbound.py).
            """CREATE TABLE inbound_parts (
                message_sid TEXT NOT NULL REFERENCES messages(sid) ON DELETE CASCADE,
                concat_key TEXT NOT NULL,
                seqnum INTEGER NOT NULL,
                data_coding INTEGER NOT NULL,
                payload BLOB NOT NULL,
                received_at INTEGER NOT NULL,
                PRIMARY KEY (message_sid, seqnum)
            )""",
            "CREATE INDEX inbound_parts_key ON inbound_parts (concat_key, received_at)",
            "CREATE INDEX inbound_parts_received ON inbound_parts (received_at)",
            # The reassembly sweep: inbound messages still waiting for parts, oldest first.
            """CREATE INDEX messages_receiving ON messages (date_created)
                WHERE status = 'receiving'""",
        ),
    ),
    Migration(
        5,
        "carrier message ids as the SMSC wrote them, and when each part was last queried",
        (
            # query_sm must name a message exactly as its submit_sm_resp did; the matching key
            # (carrier_message_id) may differ in case, zeros or base. NULL for older parts
            # (their key is asked instead).
            "ALTER TABLE message_parts ADD COLUMN raw_message_id TEXT",
            # When query_sm last asked about the part and got no final answer (NULL: never).
            "ALTER TABLE message_parts ADD COLUMN queried_at INTEGER",
        ),
    ),
    Migration(
        6,
        "validity periods (a message not submitted in time fails) and scheduled messages",
        (
            # The end of the message's ValidityPeriod (µs); NULL: none (stored before v6).
            "ALTER TABLE messages ADD COLUMN validity_until INTEGER",
            # The validity sweep: queued messages by the end of their validity.
            """CREATE INDEX messages_validity ON messages (validity_until)
                WHERE status = 'queued'""",
            # Scheduled messages by their SendAt (kept in next_attempt_at): the scheduler finds
            # the due ones, and the next one, without reading the others.
            """CREATE INDEX messages_scheduled ON messages (next_attempt_at)
                WHERE status = 'scheduled'""",
        ),
    ),
    Migration(
        7,
        "dead-letter queue, superseded (skipped) callbacks, the bind in the history, "
        "unsent messages counted per account",
        (
            # The operator's view of what failed for want of a send (retries exhausted, no
            # answer, validity run out, carrier gone) and of status callbacks that never got
            # through. The message stays `failed` for the API; a replay is recorded here
            # (replayed_at, replayed_to) and in the message's history.
            """CREATE TABLE dead_letters (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL CHECK (kind IN ('message', 'callback')),
                message_sid TEXT NOT NULL REFERENCES messages(sid) ON DELETE CASCADE,
                callback_id INTEGER,
                account_sid TEXT NOT NULL,
                carrier TEXT NOT NULL,
                reason TEXT NOT NULL,
                error_code INTEGER,
                error_message TEXT,
                attempts INTEGER NOT NULL,
                entered_at INTEGER NOT NULL,
                replayed_at INTEGER,
                replayed_to TEXT
            )""",
            # `smsgw dlq list`: what is still dead, oldest first.
            "CREATE INDEX dead_letters_open ON dead_letters (entered_at) WHERE replayed_at IS NULL",
            "CREATE INDEX dead_letters_message ON dead_letters (message_sid)",
            # A CHECK cannot be altered in SQLite: the outbox is rebuilt to allow `skipped`.
            """CREATE TABLE callbacks_v7 (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                message_sid TEXT NOT NULL REFERENCES messages(sid) ON DELETE CASCADE,
                url TEXT NOT NULL,
                status TEXT NOT NULL,
                error_code INTEGER,
                raw_done_date TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at INTEGER NOT NULL,
                state TEXT NOT NULL
                    CHECK (state IN ('pending', 'done', 'failed', 'skipped')),
                last_error TEXT,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                lease_owner TEXT
            )""",
            """INSERT INTO callbacks_v7 (id, message_sid, url, status, error_code, raw_done_date,
                   attempts, next_attempt_at, state, last_error, created_at, updated_at,
                   lease_owner)
               SELECT id, message_sid, url, status, error_code, raw_done_date, attempts,
                   next_attempt_at, state, last_error, created_at, updated_at, lease_owner
               FROM callbacks""",
            "DROP TABLE callbacks",
            "ALTER TABLE callbacks_v7 RENAME TO callbacks",
            "CREATE INDEX callbacks_due ON callbacks (next_attempt_at) WHERE state = 'pending'",
            "CREATE INDEX callbacks_message ON callbacks (message_sid, id)",
            # Which bind of the carrier sent the submit or brought the receipt.
            "ALTER TABLE message_events ADD COLUMN bind TEXT",
            # Unsent (scheduled, queued or sending) messages per account, kept in the same
            # transactions that change them (one upsert per batch, `WorkingSet`), so the
            # per-account queue cap reads one row instead of counting. (Triggers did the same
            # and cost 7-10 % of the writer's throughput: a sub-program per row.)
            """CREATE TABLE account_backlog (
                account_sid TEXT PRIMARY KEY,
                unsent INTEGER NOT NULL
            ) WITHOUT ROWID""",
            f"""INSERT INTO account_backlog (account_sid, unsent)
                SELECT account_sid, COUNT(*) FROM messages WHERE status IN {_UNSENT}
                GROUP BY account_sid""",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def current_version(conn: sqlite3.Connection) -> int:
    """The schema version of the open database; 0 for a new, empty file."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return row[0] or 0


def migrate(
    conn: sqlite3.Connection,
    now_us: int,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> int:
    """Bring the database up to the newest migration and return its version.

    `conn` must be in autocommit mode (`isolation_level=None`): each migration runs in its own
    `BEGIN IMMEDIATE` transaction so that a crash mid-upgrade leaves the file at a known version.
    """
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(migrations) + 1)):
        raise ValueError(f"migrations must be numbered 1..n without gaps, got {versions}")
    known = versions[-1] if versions else 0
    conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_version (
            version INTEGER PRIMARY KEY,
            description TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        )"""
    )
    while True:
        # Read the version inside the write transaction: two processes opening a new file at once
        # must not both apply migration 1.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = current_version(conn)
            if version > known:
                raise SchemaTooNew(
                    f"The database is at schema version {version}, but this smsgw knows versions "
                    f"up to {known}. Upgrade smsgw (or restore a backup made by this version)."
                )
            if version == known:
                conn.execute("COMMIT")
                return version
            migration = migrations[version]
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.description, now_us),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
