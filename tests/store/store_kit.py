"""Shared values and helpers for the store tests (a uniquely named module, importable by name)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from store import Message, NewMessage
from store.sqlite import SqliteStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ACCOUNT = "AC" + "a" * 32
OTHER_ACCOUNT = "AC" + "b" * 32
CARRIER = "acme"
OWNER = "test-owner"
HOOK = "https://hooks.example.com/status"


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


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


async def claimed(
    store: SqliteStore,
    n: int,
    *,
    segments: int = 1,
    callback: str | None = None,
    now: datetime = T0,
) -> Message:
    """Accept message `n` and claim it, so it is in `sending`."""
    await store.accept(new_message(n, segments=segments, callback=callback), now)
    [msg] = await store.claim_due(CARRIER, limit=1, owner=OWNER, lease_seconds=60, now=now)
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
    msg = None
    for part in range(segments):
        msg = await store.record_submit_accepted(sid(n), part, CARRIER, f"{n}-{part}", now)
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
):
    """Record a receipt with SMPP-looking raw values; returns the store's awaitable."""
    return store.record_receipt(
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
