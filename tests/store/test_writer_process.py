"""The writer process's own life: what happens when it dies, when its parent dies, when it is told
to stop, and when it cannot open the database. (The store's behaviour through it is the rest of
tests/store, which runs every store test with each writer.)"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from store import StoreUnavailable
from store.commands import Accept, CreateAccount
from store.errors import SchemaTooNew
from store.sqlite import SqliteStore
from store.states import Status
from tests.store.store_kit import ACCOUNT, OWNER, T0, TIMEOUT, hold_writer, new_message

ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_dead(pid: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.01)


def stored_sids(db_path: Path) -> set[str]:
    with sqlite3.connect(db_path) as conn:
        return {row[0] for row in conn.execute("SELECT sid FROM messages")}


async def until(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


@pytest.fixture
async def process_store(db_path: Path):
    async with SqliteStore(db_path, owner=OWNER, writer="process") as s:
        await s.write(CreateAccount(ACCOUNT, "Main", "token-main", T0))
        yield s


async def test_sqlite_runs_in_another_process(process_store: SqliteStore) -> None:
    pid = process_store.writer_pid
    assert pid is not None and pid != os.getpid() and alive(pid)
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:4] == [
        b"-P",
        b"-m",
        b"store.writer_process",
    ]


async def test_a_killed_writer_fails_only_unanswered_writes_and_is_replaced(
    process_store: SqliteStore, db_path: Path
) -> None:
    await process_store.write(Accept(new_message(1), T0))
    old = process_store.writer_pid
    assert old is not None
    release = hold_writer(process_store)  # stopped: the next writes wait in the socket
    waiting = [process_store.write(Accept(new_message(n), T0)) for n in range(2, 5)]
    await asyncio.sleep(0.05)  # they are sent
    os.kill(old, signal.SIGKILL)
    release.set()
    for future in waiting:
        with pytest.raises(StoreUnavailable, match="writer process"):
            await asyncio.wait_for(future, TIMEOUT)
    assert isinstance(process_store.write_error, StoreUnavailable)
    # Meanwhile writes are refused at once, with the same answer; then a new writer takes over.
    await until(lambda: process_store.writer_pid != old, "no new writer process")
    await until(lambda: process_store.write_error is None, "the store stayed unavailable")
    await asyncio.wait_for(process_store.write(Accept(new_message(9), T0)), TIMEOUT)
    assert stored_sids(db_path) == {new_message(1).sid, new_message(9).sid}
    assert process_store.stats.commits >= 3  # counted across both children


async def test_writes_called_while_the_writer_is_down_fail_at_once(
    process_store: SqliteStore,
) -> None:
    pid = process_store.writer_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await until(lambda: process_store.write_error is not None, "the death went unnoticed")
    if process_store.writer_pid == pid:  # not replaced yet: refused without waiting
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(process_store.write(Accept(new_message(1), T0)), 0.05)


async def test_close_commits_every_write_already_called(db_path: Path) -> None:
    store = SqliteStore(db_path, owner=OWNER, writer="process")
    await store.open()
    await store.write(CreateAccount(ACCOUNT, "Main", "token-main", T0))
    futures = [store.write(Accept(new_message(n), T0)) for n in range(300)]  # not awaited
    pid = store.writer_pid
    await store.close()
    assert all(f.done() and not f.exception() for f in futures)
    assert len(stored_sids(db_path)) == 300
    assert pid is not None and not alive(pid)


async def test_stop_signals_to_the_process_group_do_not_stop_the_writer(
    process_store: SqliteStore,
) -> None:
    """Ctrl-C and systemd's stop reach every process of the group: the writer must wait for
    its parent, which stops it after the last write it accepted."""
    pid = process_store.writer_pid
    assert pid is not None
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        os.kill(pid, signum)
    await asyncio.sleep(0.1)
    assert alive(pid)
    await process_store.write(Accept(new_message(1), T0))
    assert await process_store.find_message(new_message(1).sid) is not None


async def test_a_database_it_cannot_open_fails_open_with_the_reason(db_path: Path) -> None:
    async with SqliteStore(db_path):
        pass
    with sqlite3.connect(db_path) as conn:  # a newer smsgw's migration
        conn.execute("INSERT INTO schema_version VALUES (9999, 'from the future', 0)")
    store = SqliteStore(db_path, owner=OWNER, writer="process")
    with pytest.raises(SchemaTooNew, match=r"version 9999.*Upgrade smsgw"):
        await store.open()
    assert store.writer_pid is None or not alive(store.writer_pid)


def test_the_writer_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path.insert(0, {str(ROOT)!r})
        from store.sqlite import SqliteStore

        async def main():
            store = SqliteStore({str(tmp_path / "orphan.db")!r}, writer="process")
            await store.open()
            print(store.writer_pid, flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        line = parent.stdout.readline() if parent.stdout else b""
        child = int(line)
        assert alive(child)
        parent.kill()
        parent.wait(TIMEOUT)
        wait_dead(child)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(TIMEOUT)


def test_a_writer_from_other_code_refuses_to_open(tmp_path: Path) -> None:
    """The daemon and its writer must read frames alike: a child whose value classes differ
    (smsgw upgraded under a running daemon) says so instead of misreading them."""
    import socket
    import threading

    from store.writer_process import FrameReader, encode_frame, serve

    parent, child = socket.socketpair()
    worker = threading.Thread(target=serve, args=(child,))
    worker.start()
    parent.sendall(encode_frame([("open", str(tmp_path / "w.db"), 1000, 10, "not-this-code")]))
    reader, answers = FrameReader(), []
    while not answers:
        answers = reader.feed(parent.recv(65536))
    worker.join(TIMEOUT)
    parent.close()
    child.close()
    kind, error = answers[0]
    assert kind == "failed" and "runs other code" in str(error)
    assert not (tmp_path / "w.db").exists()  # nothing was opened


async def test_the_writer_runs_the_daemons_code_whatever_its_working_directory_holds(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon started from a directory holding another checkout (a `store` package of other
    code) must still get a writer of its own code: `python -m` would put the working directory
    first on sys.path."""
    other = tmp_path / "other-checkout"
    (other / "store").mkdir(parents=True)
    (other / "store" / "__init__.py").write_text("")
    (other / "store" / "writer_process.py").write_text("raise SystemExit('the wrong code ran')\n")
    monkeypatch.chdir(other)
    async with SqliteStore(db_path, owner=OWNER, writer="process") as store:
        await store.write(CreateAccount(ACCOUNT, "Main", "token-main", T0))
        await store.write(Accept(new_message(1), T0))
        assert (await store.find_message(new_message(1).sid)).status is Status.QUEUED


# -- the writes a client waits on are committed and answered first -----------------------------


def test_the_kinds_answered_first_lead_the_order_a_commit_applies() -> None:
    """Committing them before the rest of a batch keeps the causal order of one commit."""
    from store.sqlite_ops.handlers import ANSWERED_FIRST, applied_in_order

    assert applied_in_order()[: len(ANSWERED_FIRST)] == ANSWERED_FIRST


def test_a_batch_splits_into_what_a_client_waits_on_then_the_rest_each_job_once() -> None:
    from store.writer_process import _RemoteJob, split_answered_first

    def jobs(*priorities: int) -> list[_RemoteJob]:
        return [_RemoteJob(print, None, p, i) for i, p in enumerate(priorities)]

    batch = jobs(5, 1, 7, 0, 1, 9)
    first, rest = split_answered_first(batch, 2)
    assert [j.job_id for j in first] == [1, 3, 4]  # priorities 1, 0, 1: in the batch's order
    assert [j.job_id for j in rest] == [0, 2, 5]
    assert split_answered_first(jobs(0, 1), 2) == [jobs(0, 1)]  # nothing else: one commit
    assert split_answered_first(jobs(3, 4), 2) == [jobs(3, 4)]
    assert split_answered_first([], 2) == []


def test_a_frame_of_accepts_and_lane_work_is_answered_in_two_commits_accepts_first(
    tmp_path: Path,
) -> None:
    """Over the real child loop: a claim sent in the same frame as an account and its first
    message is answered after them, by a commit of its own, and still sees the message."""
    import socket
    import threading
    from datetime import timedelta

    from store.commands import Claim
    from store.writer_process import WIRE_FINGERPRINT, FrameReader, encode_frame, serve

    parent, child = socket.socketpair()
    worker = threading.Thread(target=serve, args=(child,))
    worker.start()
    reader = FrameReader()

    def answers(count: int) -> list:
        got: list = []
        while len(got) < count:
            got += reader.feed(parent.recv(65536))
        return got

    try:
        parent.sendall(
            encode_frame([("open", str(tmp_path / "w.db"), 5000, 100, WIRE_FINGERPRINT)])
        )
        assert answers(1) == [("ready",)]
        message = new_message(1)
        claim = Claim(message.carrier, 10, OWNER, 60.0, T0 + timedelta(seconds=1))
        parent.sendall(
            encode_frame(
                [
                    ("w", 1, claim),
                    ("w", 2, CreateAccount(ACCOUNT, "Main", "token-main", T0)),
                    ("w", 3, Accept(message, T0)),
                ]
            )
        )
        first, second = answers(2)
        assert first[0] == "done" and [(job, ok) for job, ok, _ in first[1]] == [
            (2, True),
            (3, True),
        ]
        assert second[0] == "done" and [job for job, _, _ in second[1]] == [1]
        ((_, ok, claimed),) = second[1]
        assert ok and [m.sid for m in claimed] == [message.sid]
        assert second[3].commits == first[3].commits + 1  # two commits, in that order
        parent.sendall(encode_frame([("stop",)]))
        assert answers(1) == [("stopped",)]
    finally:
        worker.join(TIMEOUT)
        parent.close()
        child.close()


def test_delivery_work_is_cut_short_for_an_accept_that_arrives_meanwhile(tmp_path: Path) -> None:
    """Over the real child loop, a batch of lane work (two handlers' groups, max_batch 2) with an
    accept still waiting in the inbox behind it: the first group is committed and answered, then
    the accept, then the second group, each at its own commit, instead of the accept waiting for
    the whole batch."""
    import socket
    import threading
    from datetime import timedelta

    from store.commands import Claim, ClaimCallbacks
    from store.writer_process import WIRE_FINGERPRINT, FrameReader, encode_frame, serve

    parent, child = socket.socketpair()
    worker = threading.Thread(target=serve, args=(child,))
    worker.start()
    reader = FrameReader()

    def answers(count: int) -> list:
        got: list = []
        while len(got) < count:
            got += reader.feed(parent.recv(65536))
        return got

    try:
        parent.sendall(encode_frame([("open", str(tmp_path / "w.db"), 5000, 2, WIRE_FINGERPRINT)]))
        assert answers(1) == [("ready",)]
        parent.sendall(encode_frame([("w", 0, CreateAccount(ACCOUNT, "Main", "token-main", T0))]))
        (created,) = answers(1)
        message = new_message(1)
        later = T0 + timedelta(seconds=1)
        parent.sendall(
            encode_frame(
                [
                    ("w", 1, Claim(message.carrier, 10, OWNER, 60.0, later)),
                    ("w", 2, ClaimCallbacks(OWNER, 10, 60.0, later)),
                    ("w", 3, Accept(message, T0)),
                ]
            )
        )
        done = answers(3)
        assert [[job for job, _, _ in answer[1]] for answer in done] == [[1], [3], [2]]
        assert all(ok for answer in done for _, ok, _ in answer[1])
        commits = [answer[3].commits for answer in done]
        assert commits == [created[3].commits + n for n in (1, 2, 3)]
        parent.sendall(encode_frame([("stop",)]))
        assert answers(1) == [("stopped",)]
    finally:
        worker.join(TIMEOUT)
        parent.close()
        child.close()


def test_the_inbox_gives_up_the_waiting_writes_of_a_kind_and_keeps_the_rest_in_order() -> None:
    import socket
    from collections import deque

    from store.writer_process import _Inbox

    a, b = socket.socketpair()
    try:
        inbox = _Inbox(a)
        kinds = frozenset({Accept})
        inbox.entries = deque(
            [("w", 1, "claim"), ("w", 2, Accept(new_message(1), T0)), ("lease", "o", 1.0)]
        )
        assert inbox.holds_any(kinds)
        assert [job for job, _ in inbox.take_writes(kinds)] == [2]
        assert list(inbox.entries) == [("w", 1, "claim"), ("lease", "o", 1.0)]
        assert not inbox.holds_any(kinds)
        # Nothing is taken past a control entry: it takes effect after the writes before it.
        inbox.entries = deque([("stop",), ("w", 3, Accept(new_message(2), T0))])
        assert not inbox.holds_any(kinds) and inbox.take_writes(kinds) == []
        assert len(inbox.entries) == 2
    finally:
        a.close()
        b.close()


async def test_a_write_to_an_idle_writer_goes_at_once_and_a_busy_turn_in_frames_of_flush_at(
    process_store: SqliteStore,
) -> None:
    """The channel's flushing (ProcessWriter._send): not held to the end of the loop turn when
    the child has nothing to do, nor past FLUSH_AT entries while it is busy."""
    from store.writer_process import FLUSH_AT

    writer = process_store._writer
    first = writer.submit(Accept(new_message(1), T0))
    assert writer._outgoing == []  # the child was idle: sent already, in this turn
    more = [writer.submit(Accept(new_message(n), T0)) for n in range(2, FLUSH_AT + 4)]
    assert len(writer._outgoing) == 2  # FLUSH_AT went out at once; the last two wait
    await asyncio.gather(first, *more)
    assert writer._outgoing == [] and writer._unanswered == 0
