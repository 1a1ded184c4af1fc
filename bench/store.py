"""Store benchmark: durable accepts/s with 1 and 64 concurrent callers, and full lifecycles/s.

Every figure is for committed, fsynced writes (WAL, synchronous=FULL) on a real file, so the
1-caller figure is about one fsync per accept and the 64-caller figure shows what group commit
buys. The lifecycle phase runs accept → claim_due → record_submit_accepted → record_receipt per
message (4 writes) from 64 concurrent workers, as the delivery engine does under load.

    .venv/bin/python bench/store.py [--seconds 3] [--callers 64] [--dir /var/tmp] [--callbacks]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

# Run as `python bench/store.py`, this file's directory comes first on sys.path and this module
# would shadow the `store` package; put the project root there instead.
ROOT = Path(__file__).resolve().parents[1]
if Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

from store import NewMessage  # noqa: E402
from store.commands import (  # noqa: E402
    Accept,
    Claim,
    CreateAccount,
    RecordReceipt,
    RecordSubmitAccepted,
)
from store.sqlite import SqliteStore  # noqa: E402

ACCOUNT = "AC" + "b" * 32
CARRIER = "bench"
HOOK = "https://hooks.example.com/status"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

_sids = itertools.count()


def new_message(callback: bool) -> NewMessage:
    n = next(_sids)
    return NewMessage(
        sid=f"SM{n:032x}",
        account_sid=ACCOUNT,
        from_addr="+15017122661",
        to_addr=f"+1555{n % 10_000_000:07d}",
        body="Your verification code is 123456.",
        num_segments=1,
        encoding="gsm7",
        carrier=CARRIER,
        status_callback=HOOK if callback else None,
    )


async def run_for(
    seconds: float, callers: int, one: Callable[[], Awaitable[int]]
) -> tuple[int, float]:
    """Run `one` in a loop from `callers` tasks for `seconds`; return (units done, elapsed)."""
    deadline = time.perf_counter() + seconds
    done = 0

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            units = await one()  # not `done += await one()`: that reads `done` before awaiting
            done += units

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return done, time.perf_counter() - start


async def accepts(store: SqliteStore, seconds: float, callers: int, callback: bool) -> None:
    async def one() -> int:
        await store.write(Accept(new_message(callback), NOW))
        return 1

    before = store.stats
    done, elapsed = await run_for(seconds, callers, one)
    commits = store.stats.commits - before.commits
    print(
        f"accept, {callers:>2} caller(s): {done / elapsed:9,.0f} accepts/s   ({done:,} in "
        f"{elapsed:.1f} s, {commits:,} commits, {done / max(commits, 1):.1f} per commit)"
    )


async def lifecycles(store: SqliteStore, seconds: float, callers: int, callback: bool) -> None:
    ids = itertools.count()

    async def one() -> int:
        await store.write(Accept(new_message(callback), NOW))
        claimed = await store.write(Claim(CARRIER, 1, store.owner, 60, NOW))
        for msg in claimed:
            carrier_id = f"c{next(ids)}"
            await store.write(RecordSubmitAccepted(msg.sid, 0, CARRIER, carrier_id, NOW))
            await store.write(
                RecordReceipt(
                    CARRIER, carrier_id, "DELIVRD", "000", "2405011200", None, True, True, NOW
                )
            )
        return len(claimed)

    before = store.stats
    done, elapsed = await run_for(seconds, callers, one)
    ops = store.stats.ops - before.ops
    commits = store.stats.commits - before.commits
    print(
        f"lifecycle, {callers} workers: {done / elapsed:9,.0f} messages/s, "
        f"{ops / elapsed:,.0f} ops/s"
        f"   ({done:,} delivered, {ops:,} writes, {commits:,} commits)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per phase (default 3)")
    parser.add_argument("--callers", type=int, default=64, help="concurrency (default 64)")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the database")
    parser.add_argument("--callbacks", action="store_true", help="every message has a callback")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="smsgw-bench-", dir=args.dir) as tmp:
        path = Path(tmp) / "bench.db"
        print(f"database: {path} (WAL, synchronous=FULL)")
        async with SqliteStore(path) as store:
            await store.write(CreateAccount(ACCOUNT, "Bench", "token", NOW))
            await accepts(store, args.seconds, 1, args.callbacks)
            await accepts(store, args.seconds, args.callers, args.callbacks)
            await lifecycles(store, args.seconds, args.callers, args.callbacks)
            print(f"writer: {store.stats}")


if __name__ == "__main__":
    asyncio.run(main())
