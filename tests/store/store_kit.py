"""Shared values and helpers for the store tests (a uniquely named module, importable by name)."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from msgspec.structs import replace

from store import Callback, Message, NewMessage, ReceiptOutcome
from store.commands import (
    Accept,
    Claim,
    ClaimCallbacks,
    RecordReceipt,
    RecordSubmitAccepted,
)
from store.sqlite import SqliteStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ACCOUNT = "AC" + "a" * 32
OTHER_ACCOUNT = "AC" + "b" * 32
CARRIER = "acme"
OWNER = "test-owner"
HOOK = "https://hooks.example.com/status"
TIMEOUT = 10


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def us(dt: datetime) -> int:
    """A time as the database stores it (µs since the epoch)."""
    return round(dt.timestamp() * 1_000_000)


def sid(n: int) -> str:
    return f"SM{n:032x}"


def new_message(
    n: int,
    *,
    segments: int = 1,
    callback: str | None = None,
    carrier: str = CARRIER,
    account: str = ACCOUNT,
) -> NewMessage:
    return NewMessage(
        sid=sid(n),
        account_sid=account,
        from_addr="+15017122661",
        to_addr=f"+1555867{n:04d}",
        body=f"message {n}",
        num_segments=segments,
        encoding="gsm7",
        carrier=carrier,
        status_callback=callback,
    )


def claim(
    store: SqliteStore,
    now: datetime = T0,
    *,
    limit: int = 10,
    carrier: str = CARRIER,
    owner: str = OWNER,
    lease_seconds: float = 30,
) -> Awaitable[list[Message]]:
    return store.write(Claim(carrier, limit, owner, lease_seconds, now))


def claim_callbacks(
    store: SqliteStore,
    now: datetime = T0,
    limit: int = 100,
    *,
    owner: str = OWNER,
    lease_seconds: float = 60,
) -> Awaitable[list[Callback]]:
    return store.write(ClaimCallbacks(owner, limit, lease_seconds, now))


async def claimed(
    store: SqliteStore,
    n: int,
    *,
    segments: int = 1,
    callback: str | None = None,
    now: datetime = T0,
) -> Message:
    """Accept message `n` and claim it, so it is in `sending`."""
    await store.write(Accept(new_message(n, segments=segments, callback=callback), now))
    [msg] = await claim(store, now, limit=1, lease_seconds=60)
    assert msg.sid == sid(n)
    return msg


async def sent(
    store: SqliteStore,
    n: int,
    *,
    segments: int = 1,
    callback: str | None = None,
    now: datetime = T0,
) -> Message:
    """Accept, claim and record every part accepted (carrier ids `n-0`, `n-1`, ...)."""
    await claimed(store, n, segments=segments, callback=callback, now=now)
    for part in range(segments):
        await store.write(RecordSubmitAccepted(sid(n), part, CARRIER, f"{n}-{part}", now))
    msg = await store.find_message(sid(n))
    assert msg is not None
    return msg


def receipt(
    store: SqliteStore,
    carrier_message_id: str,
    *,
    delivered: bool = True,
    final: bool = True,
    error_code: int | None = None,
    now: datetime = T0,
    done_date: str | None = "2405011201",
    window_seconds: float | None = None,
) -> Awaitable[ReceiptOutcome]:
    """Record a receipt with SMPP-looking raw values; returns the store's awaitable."""
    command = RecordReceipt(
        CARRIER,
        carrier_message_id,
        stat=("DELIVRD" if delivered else "UNDELIV") if final else "ENROUTE",
        err="000" if delivered else "001",
        done_date=done_date,
        error_code=error_code,
        delivered=delivered,
        final=final,
        now=now,
    )
    if window_seconds is not None:
        command = replace(command, window_seconds=window_seconds)
    return store.write(command)


class _StoppedProcess:
    """The writer process, stopped (SIGSTOP) until `set()` continues it (SIGCONT) — after
    sending what the parent still holds for the end of the loop turn, so the child finds every
    write called meanwhile in its socket at once."""

    def __init__(self, writer, pid: int) -> None:
        self.writer = writer
        self.pid = pid
        os.kill(pid, signal.SIGSTOP)
        deadline = time.monotonic() + TIMEOUT
        while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
            assert time.monotonic() < deadline, "the writer process did not stop"
            time.sleep(0.001)

    def set(self) -> None:
        self.writer._flush()
        os.kill(self.pid, signal.SIGCONT)


def hold_writer(store: SqliteStore) -> threading.Event | _StoppedProcess:
    """Occupy the store's writer until the returned event is set, so that writes called
    meanwhile pile up and are applied together, as one batch in one transaction. A writer
    process is stopped outright (its writes wait in the socket, and it takes them all at once)."""
    if store.writer_pid is not None:
        return _StoppedProcess(store._writer, store.writer_pid)
    entered, release = threading.Event(), threading.Event()

    def op(conn: sqlite3.Connection) -> None:
        entered.set()
        assert release.wait(TIMEOUT)

    store._writer.submit_op(op)
    assert entered.wait(TIMEOUT)
    return release


def holding_commits(store: SqliteStore) -> int:
    """Commits `hold_writer` itself costs: the holding op's own batch on a thread writer."""
    return 0 if store.writer_pid is not None else 1


def thread_writer_only(store: SqliteStore) -> None:
    """Skip a test that reaches into the write connection, which only a thread writer shares."""
    if store.writer_pid is not None:
        pytest.skip("reaches into the write connection: the thread writer only")


def trace(store: SqliteStore) -> list[str]:
    """Every SQL statement the store's writer runs from the next commit on, whitespace folded."""
    thread_writer_only(store)
    statements: list[str] = []
    lock = threading.Lock()

    def seen(sql: str) -> None:
        with lock:
            statements.append(" ".join(sql.split()))

    store._writer.submit_op(lambda conn: conn.set_trace_callback(seen))
    return statements


def count(statements: list[str], prefix: str) -> int:
    return sum(1 for s in statements if s.startswith(prefix))


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection to the store's file, for looking at what tests cannot read otherwise."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn
