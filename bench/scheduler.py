"""The scheduler's cost per due message, and what a large schedule costs while nothing is due.

Stores --count scheduled messages (SendAt one hour ahead) through the real store (its writer
process), then measures, with the clock driven by the commands:

* `next_scheduled_at` — the scheduler's one read between releases (µs per call, mean of 200);
* a release pass with nothing due (µs): what the scheduler pays each time it wakes early;
* releasing them all as the scheduler does (`ReleaseScheduled` in batches of 1,000): messages/s,
  wall µs and writer-process CPU µs per due message.

    .venv/bin/python bench/scheduler.py [--count 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _harness as h

from gateway.engine.scheduler import RELEASE_BATCH
from store.commands import Accept, CreateAccount, ReleaseScheduled
from store.models import NewMessage
from store.sqlite import SqliteStore

ACCOUNT = "AC" + "5" * 32


async def run(count: int, directory: Path) -> dict:
    t0 = datetime.now(UTC).replace(microsecond=0)
    send_at = t0 + timedelta(hours=1)
    async with SqliteStore(directory / "smsgw.db", writer="process") as store:
        await store.write(CreateAccount(ACCOUNT, "bench", "token", t0))
        began = time.perf_counter()
        for start in range(0, count, 2000):
            await asyncio.gather(
                *(
                    store.write(
                        Accept(
                            NewMessage(
                                sid=f"SM{n:032x}",
                                account_sid=ACCOUNT,
                                from_addr="+15005550006",
                                to_addr="+447900000099",
                                body="scheduled",
                                num_segments=1,
                                encoding="gsm7",
                                carrier="sim",
                                send_at=send_at + timedelta(microseconds=n),
                            ),
                            t0,
                        )
                    )
                    for n in range(start, min(start + 2000, count))
                )
            )
        stored_s = time.perf_counter() - began

        reads = 200
        began = time.perf_counter()
        for _ in range(reads):
            assert await store.next_scheduled_at() == send_at
        next_us = (time.perf_counter() - began) / reads * 1e6

        began = time.perf_counter()
        for _ in range(reads):
            assert await store.write(ReleaseScheduled(t0, RELEASE_BATCH)) == []
        idle_us = (time.perf_counter() - began) / reads * 1e6

        writer = store.writer_pid
        cpu0 = h.cpu_seconds(writer) if writer else 0.0
        due = send_at + timedelta(hours=1)
        released = 0
        began = time.perf_counter()
        while batch := await store.write(ReleaseScheduled(due, RELEASE_BATCH)):
            released += len(batch)
        release_s = time.perf_counter() - began
        cpu = (h.cpu_seconds(writer) - cpu0) if writer else float("nan")
        assert released == count, (released, count)
        assert await store.next_scheduled_at() is None
    return {
        "scheduled": count,
        "stored_per_s": round(count / stored_s),
        "next_scheduled_at_us": round(next_us, 1),
        "release_pass_nothing_due_us": round(idle_us, 1),
        "released_per_s": round(count / release_s),
        "release_wall_us_per_message": round(release_s / count * 1e6, 2),
        "release_writer_cpu_us_per_message": round(cpu / count * 1e6, 2),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="smsgw-scheduler-") as directory:
        result = asyncio.run(run(args.count, Path(directory)))
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
