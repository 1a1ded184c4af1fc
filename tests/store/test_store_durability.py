"""Accepted means durable: a message whose Accept write returned survives SIGKILL of the process."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from store import Status
from store.sqlite import SqliteStore
from tests.store.store_kit import ACCOUNT, T0, sid

CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from store.commands import Accept, CreateAccount
    from store.sqlite import SqliteStore
    from tests.store.store_kit import ACCOUNT, T0, new_message

    async def main(path, mode):
        store = SqliteStore(path)
        await store.open()
        await store.write(CreateAccount(ACCOUNT, "Main", "token", T0))
        if mode == "one":
            await store.write(Accept(new_message(1), T0))
            print(new_message(1).sid, flush=True)  # durable: confirmed
            os.kill(os.getpid(), signal.SIGKILL)  # no close(), no atexit, no flush

        async def caller(worker):
            for i in range(10_000):
                message = new_message(worker * 100_000 + i)
                await store.write(Accept(message, T0))
                print(message.sid, flush=True)  # durable: confirmed

        await asyncio.gather(*(caller(w) for w in range(8)))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)

ROOT = Path(__file__).resolve().parents[2]


def child(db: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


async def test_message_accepted_then_process_killed_is_still_there(db_path: Path) -> None:
    proc = child(db_path, "one")
    out, _ = await asyncio.to_thread(proc.communicate, timeout=20)
    assert proc.returncode == -signal.SIGKILL
    assert out.split() == [sid(1)]
    async with SqliteStore(db_path) as store:
        msg = await store.get_message(ACCOUNT, sid(1))
        assert msg is not None and msg.status is Status.QUEUED
        assert msg.date_created == T0


async def test_every_accept_confirmed_before_a_kill_mid_stream_survives(db_path: Path) -> None:
    proc = child(db_path, "stream")
    assert proc.stdout is not None
    confirmed: list[str] = []

    def read_until_killed() -> None:
        for line in proc.stdout:
            confirmed.append(line.strip())
            if len(confirmed) == 300:
                proc.send_signal(signal.SIGKILL)  # while 8 callers keep writing
        proc.wait(timeout=20)

    await asyncio.to_thread(read_until_killed)
    assert proc.returncode == -signal.SIGKILL
    assert len(confirmed) >= 300
    async with SqliteStore(db_path) as store:
        for message_sid in confirmed:
            assert await store.get_message(ACCOUNT, message_sid) is not None, message_sid
