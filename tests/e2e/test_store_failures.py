"""A store that cannot commit never kills the daemon, and nothing it acknowledged is lost.

Each test runs the real daemon (`python -m gateway run`, a child process, with its built-in SMSC
simulator), talks to its real HTTP API, receives its signed StatusCallbacks on a local aiohttp
server, and breaks its real SQLite file from outside, the way production breaks it:

* **disk full**: the database lives on a small filesystem of its own (`tests.e2e.fullfs`: a tmpfs,
  else an ext4 loop image, else a tmpfs in a mount namespace of the daemon's); a filler file takes
  every free byte while messages keep coming, then is deleted.
* **database locked**: another process holds ``BEGIN IMMEDIATE`` on the database for longer than
  the store's busy timeout, then rolls back.
* **read-only file**: on an ext4 loop filesystem, the database and its WAL are made immutable
  (``chattr +i``: the kernel refuses every write, even root's, even on descriptors already open),
  then writable again. And the filesystem turned read-only by the kernel itself (ext4
  ``errors=remount-ro`` after a reported filesystem error), which only an unmount undoes: there
  the daemon must stay up and refuse cleanly, and after an operator's restart deliver everything
  it had accepted.

Throughout, API clients keep sending. What is asserted:

* the daemon process never exits on its own;
* every POST is answered 201 (the message is stored) or 503 with ``Retry-After`` and a
  Twilio-shaped body (code 20503, message, more_info, status) — never a 500, never a timeout;
* while the store cannot commit, POSTs are refused and ``/healthz`` answers 503 ``degraded`` with
  the store's reason; once the cause is gone the daemon recovers by itself (201s, healthz 200);
* every message answered 201 — before, during or after the fault — reaches its final status and
  its StatusCallback (signed with the account's token) arrives with that status.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from gateway.signing import twilio_signature
from tests.e2e.fullfs import SmallFs, Unavailable, small_filesystem
from tests.e2e.harness import (
    DaemonProcess,
    SimulatorProcess,
    WebhookReceiver,
    demo_credentials,
    free_port,
    write_config,
)

# After recovery, every 201 must be final and its final callback heard within this.
SETTLE_TIMEOUT = float(os.environ.get("SMSGW_SETTLE_TIMEOUT", 30))
# Each test takes 10-30 s when all is well; the waits below fail first, and clearly.
pytestmark = pytest.mark.timeout(60 + SETTLE_TIMEOUT)

FS_SIZE_MB = 24
BUSY_TIMEOUT = 5.0  # SqliteStore's default; [store] has no key for it (see the lock test)
WORKERS = 4  # API clients sending at once
PAUSE = 0.03  # between one client's requests
FINAL = frozenset({"delivered", "undelivered", "failed"})
MORE_INFO = "https://www.twilio.com/docs/errors/20503"


# -- the daemon ------------------------------------------------------------------------------


class Daemon(DaemonProcess):
    """The harness's child daemon, with what these tests look at: liveness, its log."""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def events(self) -> list[dict]:
        """The daemon's JSON log lines (the banner and other text are skipped)."""
        events = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    events.append(json.loads(line))
        return events


def gateway_config(
    directory: Path, api_port: int, db_path: Path | None = None, carrier_port: int | None = None
) -> Path:
    """The e2e harness's configuration, with the database at `db_path` if given; the carrier is
    the built-in simulator, or the SMSC at `carrier_port`."""
    path = write_config(
        directory, api_port=api_port, simulator=carrier_port is None, carrier_port=carrier_port
    )
    if db_path is not None:
        default = f'path = "{directory / "smsgw.db"}"'
        text = path.read_text()
        assert default in text
        path.write_text(text.replace(default, f'path = "{db_path}"'))
    return path


# -- the clients -----------------------------------------------------------------------------


@dataclass
class Answer:
    phase: str  # when the request was sent
    status: int
    at: float  # monotonic time the answer arrived


@dataclass
class Traffic:
    """API clients sending all along; every answer is checked and recorded by phase.

    Phases: "before" the fault, "fault" (from the moment it is caused), "after" (from the moment
    its cause is removed); `started` holds when each began.
    """

    base_url: str
    account_sid: str
    auth_token: str
    callback_url: str
    phase: str = "before"
    started: dict[str, float] = field(default_factory=dict)
    accepted: dict[str, str] = field(default_factory=dict)  # sid -> phase it was sent in
    answers: list[Answer] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    paused: bool = False  # clients wait (as clients honouring Retry-After do)
    _stop: bool = False
    _numbers: itertools.count = field(default_factory=itertools.count)

    def begin(self, phase: str) -> None:
        self.phase = phase
        self.started[phase] = time.monotonic()

    def count(self, phase: str, status: int) -> int:
        return sum(1 for a in self.answers if a.phase == phase and a.status == status)

    def first(self, status: int, phase: str) -> float:
        """When the first answer `status` to a request sent in `phase` arrived."""
        return min(a.at for a in self.answers if a.phase == phase and a.status == status)

    async def run(self) -> None:
        async with httpx.AsyncClient(
            base_url=self.base_url, auth=(self.account_sid, self.auth_token), timeout=30
        ) as client:
            await asyncio.gather(*(self._client(client) for _ in range(WORKERS)))

    def stop(self) -> None:
        self._stop = True

    async def _client(self, client: httpx.AsyncClient) -> None:
        path = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        while not self._stop:
            if self.paused:
                await asyncio.sleep(0.02)
                continue
            n, phase = next(self._numbers), self.phase
            data = {
                "To": "+14155552671",
                "From": "+15017122661",
                "Body": f"store fault {n} ({phase})",
                "StatusCallback": self.callback_url,
            }
            try:
                response = await client.post(path, data=data)
            except httpx.HTTPError as exc:  # refused, reset, timed out: the daemon failed us
                self.problems.append(f"POST {n} ({phase}): no answer: {exc!r}")
                await asyncio.sleep(0.2)
                continue
            self.answers.append(Answer(phase, response.status_code, time.monotonic()))
            if response.status_code == 201:
                self.accepted[response.json()["sid"]] = phase
            elif response.status_code == 503:
                if problem := refusal_problem(response):
                    self.problems.append(f"POST {n} ({phase}): {problem}")
            else:
                self.problems.append(f"POST {n} ({phase}): {response.status_code} {response.text}")
            await asyncio.sleep(PAUSE)

    async def wait_for(self, phase: str, status: int, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while self.count(phase, status) == 0:
                await asyncio.sleep(0.02)

    async def warm_up(self, count: int = 30) -> None:
        """Until `count` messages were accepted (some of them on their way when the fault comes)."""
        async with asyncio.timeout(15):
            while len(self.accepted) < count:
                await asyncio.sleep(0.02)


def refusal_problem(response: httpx.Response) -> str | None:
    """What is wrong with a 503 refusal, if anything: it must say when to retry, in Twilio's
    error shape."""
    retry_after = response.headers.get("retry-after", "")
    if not retry_after.isdigit() or int(retry_after) < 1:
        return f"503 without a usable Retry-After ({retry_after!r})"
    try:
        body = response.json()
    except ValueError:
        return f"503 body is not JSON: {response.text[:200]!r}"
    shaped = (
        body.get("code") == 20503
        and body.get("status") == 503
        and isinstance(body.get("message"), str)
        and body["message"]
        and body.get("more_info") == MORE_INFO
    )
    return None if shaped else f"503 body not Twilio-shaped: {body}"


@dataclass
class Health:
    """`/healthz` sampled all along, every 50 ms: (HTTP status, body, monotonic time)."""

    base_url: str
    samples: list[tuple[int, dict, float]] = field(default_factory=list)
    _stop: bool = False

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as client:
            while not self._stop:
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get("/healthz")
                    self.samples.append((response.status_code, response.json(), time.monotonic()))
                await asyncio.sleep(0.05)

    def stop(self) -> None:
        self._stop = True

    def between(self, since: float, until: float) -> collections.Counter:
        """How often each (status, body status) was seen in [since, until)."""
        return collections.Counter(
            (status, body.get("status")) for status, body, at in self.samples if since <= at < until
        )

    async def now(self) -> tuple[int, dict]:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as client:
            response = await client.get("/healthz")
            return response.status_code, response.json()

    async def wait_ok(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while (await self.now())[0] != 200:
                await asyncio.sleep(0.05)


# -- the checks ------------------------------------------------------------------------------


async def statuses(base_url: str, account_sid: str, token: str, sids) -> dict[str, str]:
    found: dict[str, str] = {}
    queue = list(sids)
    async with httpx.AsyncClient(base_url=base_url, auth=(account_sid, token), timeout=10) as api:

        async def worker() -> None:
            while queue:
                sid = queue.pop()
                response = await api.get(f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json")
                found[sid] = (
                    response.json()["status"]
                    if response.status_code == 200
                    else f"HTTP {response.status_code}"
                )

        await asyncio.gather(*(worker() for _ in range(16)))
    return found


def stored_callbacks(db: Path | None, sids) -> list[tuple]:
    """The store's callback rows of `sids` (read beside the running daemon), for diagnostics:
    (message, id, status, state, attempts, leased, seconds until due)."""
    if db is None:
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
            marks = ",".join("?" * len(sids))
            return conn.execute(
                "SELECT message_sid, id, status, state, attempts, lease_owner IS NOT NULL, "
                "round(next_attempt_at / 1e6 - (julianday('now') - 2440587.5) * 86400, 1) "
                f"FROM callbacks WHERE message_sid IN ({marks}) ORDER BY id",
                list(sids),
            ).fetchall()
    except sqlite3.Error as exc:
        return [f"cannot read: {exc}"]


async def assert_all_settled(
    base_url: str,
    receiver: WebhookReceiver,
    traffic: Traffic,
    timeout: float,
    db: Path | None = None,
) -> None:
    """Every 201: final in the API, and a correctly signed callback with that final status."""
    accepted = dict(traffic.accepted)
    open_ = set(accepted)
    final: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while open_ and time.monotonic() < deadline:
        answer = await statuses(base_url, traffic.account_sid, traffic.auth_token, open_)
        for sid, status in answer.items():
            if status in FINAL:
                final[sid] = status
        called_back = {
            form["MessageSid"]
            for _, form, _ in receiver.callbacks.received
            if form.get("MessageStatus") in FINAL
        }
        open_ = {sid for sid in accepted if sid not in final or sid not in called_back}
        if open_:
            await asyncio.sleep(0.25)
    if open_:
        sample = sorted(open_)[:3]
        detail = await statuses(base_url, traffic.account_sid, traffic.auth_token, sample)
        heard = {sid: receiver.callbacks.for_message(sid) for sid in sample}
        raise AssertionError(
            f"{len(open_)} of {len(accepted)} acknowledged messages did not settle within "
            f"{timeout}s (final status and callback); e.g. API status {detail}, sent in phase "
            f"{ {sid: accepted[sid] for sid in sample} }; callbacks heard "
            f"{ {sid: [f.get('MessageStatus') for f in forms] for sid, forms in heard.items()} }; "
            f"the store's callbacks: {stored_callbacks(db, sample)}"
        )
    assert set(final.values()) == {"delivered"}, final
    for url, form, headers in receiver.callbacks.received:
        expected = twilio_signature(traffic.auth_token, url, form)
        assert headers.get("X-Twilio-Signature") == expected, (form, headers)
    finals = {}
    for _, form, _ in receiver.callbacks.received:
        if form.get("MessageStatus") in FINAL:
            finals.setdefault(form["MessageSid"], set()).add(form["MessageStatus"])
    assert all(v == {"delivered"} for v in finals.values()), finals


def assert_log_clean(daemon: Daemon) -> dict[str, int]:
    """No internal error, no unrecorded delivery, no traceback; returns the store-fault events
    the daemon logged, counted (for the report).

    One error-level event is expected: ``deliver.handler_failed`` for a delivery receipt the
    store could not record (the SMPP connection answers the SMSC ESME_RX_T_APPN, and the SMSC
    delivers the receipt again) — allowed only when its error is the store's.
    """
    events = daemon.events()

    def expected(e: dict) -> bool:
        failed = e.get("event") == "deliver.handler_failed"
        return failed and "StoreUnavailable(" in e.get("error", "")

    bad = [
        e for e in events
        if e.get("event") in ("api.failed", "delivery.unrecorded", "delivery.crashed",
                              "webhook.crashed")
        or (e.get("level") in ("error", "critical") and not expected(e))
    ]  # fmt: skip
    assert not bad, f"the daemon logged errors: {bad[:3]}"
    text = daemon.log_path.read_text(errors="replace")
    assert "Traceback" not in text, text[text.index("Traceback") - 500 :][:4000]
    names = ("message.not_stored", "lane.paused", "lane.resumed", "store.write_retried",
             "webhooks.claim_failed", "webhook.settle_failed", "sweep.skipped")  # fmt: skip
    counts = {name: sum(1 for e in events if e.get("event") == name) for name in names}
    counts["deliver.handler_failed"] = sum(1 for e in events if expected(e))
    return counts


@contextlib.asynccontextmanager
async def running(daemon: Daemon, receiver: WebhookReceiver):
    """Start the daemon, the clients and the health sampler; stop all of them afterwards."""
    await asyncio.to_thread(daemon.start)
    account_sid, token = demo_credentials(daemon.log_path.read_text())
    base_url = f"http://127.0.0.1:{daemon.api_port}"
    traffic = Traffic(base_url, account_sid, token, receiver.url)
    health = Health(base_url)
    tasks = [asyncio.create_task(traffic.run()), asyncio.create_task(health.run())]
    try:
        yield traffic, health
    finally:
        traffic.stop()
        health.stop()
        await asyncio.wait(tasks, timeout=40)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()


async def fault_window(
    daemon: Daemon, traffic: Traffic, health: Health, reason: str, hold: float, quiet: float = 0
) -> None:
    """The store cannot commit: refusals come, /healthz says why, the daemon stays up.

    For `quiet` seconds of the `hold` the clients pause, as clients told ``Retry-After`` do:
    /healthz must not turn healthy only because nobody asked to write for a while.
    """
    await traffic.wait_for("fault", 503, timeout=3 * BUSY_TIMEOUT)
    status, body = await health.now()
    assert (status, body.get("status")) == (503, "degraded"), (status, body)
    assert body["store"].startswith("cannot commit: ") and reason in body["store"], body
    began = time.monotonic()
    while time.monotonic() < began + hold:
        traffic.paused = time.monotonic() < began + quiet
        assert daemon.alive(), f"the daemon exited while its store was failing: {daemon.tail()}"
        await asyncio.sleep(0.05)
    traffic.paused = False


async def recovery(daemon: Daemon, traffic: Traffic, health: Health, timeout: float) -> None:
    """The cause is gone: the daemon recovers by itself — healthz 200 and 201s again."""
    await health.wait_ok(timeout)
    await traffic.wait_for("after", 201, timeout)
    await asyncio.sleep(1.0)  # a little more traffic after the recovery
    traffic.stop()
    assert daemon.alive(), daemon.tail()


def assert_answers(traffic: Traffic, health: Health) -> None:
    """Every answer was a 201 or a well-formed 503; none refused and none unhealthy before the
    fault began."""
    assert not traffic.problems, traffic.problems[:5]
    fault = traffic.started["fault"]
    early = [a for a in traffic.answers if a.status != 201 and a.at < fault]
    assert not early, early[:5]
    assert set(health.between(0, fault)) == {(200, "ok")}, health.between(0, fault)


def assert_degraded_throughout(traffic: Traffic, health: Health) -> None:
    """From the first refusal until the cause was removed, /healthz said 503 degraded every
    time it was asked: here no write can commit then, so an "ok" would send a load balancer's
    traffic to a gateway that refuses it."""
    since, until = traffic.first(503, "fault"), traffic.started["after"]
    seen = health.between(since, until)
    assert set(seen) == {(503, "degraded")}, (
        f"/healthz while every write failed ({until - since:.1f}s): {dict(seen)}; "
        f"201s to requests sent then: {traffic.count('fault', 201)}"
    )


def report(name: str, traffic: Traffic, health: Health, logged: dict[str, int]) -> None:
    by_phase = {
        phase: {s: traffic.count(phase, s) for s in (201, 503) if traffic.count(phase, s)}
        for phase in ("before", "fault", "after")
    }
    since, until = traffic.first(503, "fault"), traffic.started["after"]
    print(
        f"\n{name}: answers {by_phase}; healthz from first refusal to the fix "
        f"{dict(health.between(since, until))}; logged {logged}"
    )


# -- the tests -------------------------------------------------------------------------------


async def test_disk_full_refuses_with_503_and_recovers_without_losing_anything(tmp_path):
    """The store's filesystem fills up while messages keep coming, then space is freed.

    The filesystem is a real one of FS_SIZE_MB MiB (tmpfs; else ext4 on a loop image; else a
    tmpfs in the daemon's own mount namespace — see `tests.e2e.fullfs`), filled by a file
    written until the kernel answers ENOSPC. The test is skipped, naming each method's error,
    only if no small filesystem can be made here.

    A full disk does not refuse every write: SQLite reuses the WAL space a failed transaction
    had already taken, so a smaller later transaction may still commit (its 201 is honest, and
    its message must be delivered like any other). So /healthz must say "degraded" right after
    a refusal, not at every instant of the fault.
    """
    with contextlib.ExitStack() as stack:
        try:
            fs: SmallFs = stack.enter_context(small_filesystem(tmp_path, FS_SIZE_MB))
        except Unavailable as exc:
            pytest.skip(str(exc))
        api_port = free_port()
        config = gateway_config(tmp_path, api_port, fs.mountpoint / "smsgw.db")
        daemon = Daemon(config, api_port, tmp_path / "daemon.log", prefix=fs.prefix)
        stack.callback(daemon.kill)  # before the unmount (callbacks run in reverse)
        async with WebhookReceiver() as receiver, running(daemon, receiver) as (traffic, health):
            fs.attach(daemon.pid)
            db = fs.path / "smsgw.db"
            await traffic.warm_up()

            traffic.begin("fault")
            filler, size = await asyncio.to_thread(fs.fill)
            assert fs.free_bytes() == 0
            await fault_window(
                daemon, traffic, health, "database or disk is full", hold=5.0, quiet=3.0
            )

            filler.unlink()
            traffic.begin("after")
            await recovery(daemon, traffic, health, timeout=15)
            base_url = f"http://127.0.0.1:{api_port}"
            await assert_all_settled(base_url, receiver, traffic, SETTLE_TIMEOUT, db)

        assert_answers(traffic, health)
        assert daemon.alive(), daemon.tail()
        assert await asyncio.to_thread(daemon.stop) == 0, daemon.tail()
        logged = assert_log_clean(daemon)
        report(f"disk full ({fs.method}, filler {size} bytes)", traffic, health, logged)


LOCK_HOLDER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
    conn.execute("BEGIN IMMEDIATE")  # the write lock, as any other SQLite writer takes it
    print("locked", flush=True)
    sys.stdin.read()  # until the test closes our stdin
    conn.execute("ROLLBACK")
    conn.close()
    """
)


async def test_database_locked_past_busy_timeout_refuses_with_503_and_recovers(tmp_path):
    """Another process holds the database's write lock (``BEGIN IMMEDIATE``) for well over the
    store's busy timeout, then lets go.

    The busy timeout is SqliteStore's default (BUSY_TIMEOUT, 5 s): [store] in the configuration
    has no key for it and `gateway.daemon.serve` passes none, so the lock is held 3 × 5 s, and
    requests wait up to two busy timeouts for their answer.
    """
    api_port = free_port()
    db = tmp_path / "smsgw.db"
    daemon = Daemon(gateway_config(tmp_path, api_port), api_port, tmp_path / "daemon.log")
    holder: subprocess.Popen | None = None
    try:
        async with WebhookReceiver() as receiver, running(daemon, receiver) as (traffic, health):
            await traffic.warm_up()

            traffic.begin("fault")
            holder = subprocess.Popen(
                [sys.executable, "-c", LOCK_HOLDER, str(db)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            line = await asyncio.to_thread(holder.stdout.readline)
            assert line.strip() == "locked", line + holder.stdout.read()
            locked_at = time.monotonic()
            await fault_window(daemon, traffic, health, "database is locked", hold=3.0, quiet=3.0)
            await asyncio.sleep(max(0.0, locked_at + 3 * BUSY_TIMEOUT - time.monotonic()))
            assert daemon.alive(), daemon.tail()

            holder.stdin.close()
            assert await asyncio.to_thread(holder.wait, 10) == 0
            traffic.begin("after")
            await recovery(daemon, traffic, health, timeout=15)
            base_url = f"http://127.0.0.1:{api_port}"
            await assert_all_settled(base_url, receiver, traffic, SETTLE_TIMEOUT, db)

        assert_answers(traffic, health)
        assert_degraded_throughout(traffic, health)
        assert await asyncio.to_thread(daemon.stop) == 0, daemon.tail()
        report("database locked", traffic, health, assert_log_clean(daemon))
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
            holder.wait(10)
        daemon.kill()


async def test_read_only_database_file_refuses_with_503_and_recovers(tmp_path):
    """The database and its WAL become read-only to the kernel (ext4's immutable attribute:
    write(2) fails with EPERM for everyone, root included, on descriptors already open), then
    writable again.

    Why not ``mount -o remount,ro``: Linux refuses it (EBUSY, "mount point is busy") while any
    file on the filesystem is open for writing — and the daemon's database always is. The
    kernel's own forced read-only remount is the next test. Needs root and an ext4 loop mount.
    """
    with contextlib.ExitStack() as stack:
        try:
            fs: SmallFs = stack.enter_context(small_filesystem(tmp_path, 32, methods=("loop",)))
        except Unavailable as exc:
            pytest.skip(f"needs an ext4 loop filesystem (root): {exc}")
        api_port = free_port()
        db = fs.mountpoint / "smsgw.db"
        daemon = Daemon(gateway_config(tmp_path, api_port, db), api_port, tmp_path / "daemon.log")
        stack.callback(daemon.kill)
        files = [db, db.with_name("smsgw.db-wal")]
        stack.callback(lambda: fs.set_immutable(files, False))  # never leave them immutable
        async with WebhookReceiver() as receiver, running(daemon, receiver) as (traffic, health):
            await traffic.warm_up()

            traffic.begin("fault")
            await asyncio.to_thread(fs.set_immutable, files, True)
            with pytest.raises(PermissionError), files[1].open("r+b") as wal:
                wal.write(b"x")  # the kernel refuses root too
            await fault_window(daemon, traffic, health, "disk I/O error", hold=5.0, quiet=3.0)

            await asyncio.to_thread(fs.set_immutable, files, False)
            traffic.begin("after")
            await recovery(daemon, traffic, health, timeout=15)
            base_url = f"http://127.0.0.1:{api_port}"
            await assert_all_settled(base_url, receiver, traffic, SETTLE_TIMEOUT, db)

        assert_answers(traffic, health)
        assert_degraded_throughout(traffic, health)
        assert await asyncio.to_thread(daemon.stop) == 0, daemon.tail()
        report("read-only file (chattr +i)", traffic, health, assert_log_clean(daemon))


async def test_filesystem_forced_read_only_keeps_daemon_up_and_loses_nothing(tmp_path):
    """The kernel remounts the store's filesystem read-only, as ext4 with ``errors=remount-ro``
    does after an I/O error (here reported through ext4's own ``trigger_fs_error`` hook). That
    cannot be undone while mounted, so the daemon cannot recover by itself: it must stay up,
    refuse with 503 and say so on /healthz, stop cleanly on SIGTERM, and — after the operator
    checks and remounts the filesystem and starts it again — deliver everything it accepted.
    """
    with contextlib.ExitStack() as stack:
        try:
            fs: SmallFs = stack.enter_context(small_filesystem(tmp_path, 32, methods=("loop",)))
        except Unavailable as exc:
            pytest.skip(f"needs an ext4 loop filesystem (root): {exc}")
        api_port, smsc_port = free_port(), free_port()
        db = fs.mountpoint / "smsgw.db"
        # The SMSC is a process of its own: it keeps the receipts it owes across the restart.
        smsc = SimulatorProcess(smsc_port, tmp_path / "submits.tsv", tmp_path / "smsc.log")
        stack.callback(smsc.kill)
        await asyncio.to_thread(smsc.start)
        config = gateway_config(tmp_path, api_port, db, carrier_port=smsc_port)
        daemon = Daemon(config, api_port, tmp_path / "daemon.log")
        stack.callback(daemon.kill)
        async with WebhookReceiver() as receiver:
            async with running(daemon, receiver) as (traffic, health):
                await traffic.warm_up()

                traffic.begin("fault")
                try:
                    await asyncio.to_thread(fs.trigger_fs_error, "smsgw test: disk error")
                except Unavailable as exc:
                    pytest.skip(str(exc))
                options = fs.mounted_options().split(",")
                assert "ro" in options or "emergency_ro" in options, options
                await fault_window(daemon, traffic, health, "cannot commit", hold=5.0, quiet=3.0)
                traffic.begin("after")  # no recovery by itself: the operator's turn
            assert_answers(traffic, health)
            assert_degraded_throughout(traffic, health)
            report("forced read-only", traffic, health, {})

            # The operator's part: stop, check the filesystem, mount it again, start.
            began = time.monotonic()
            code = await asyncio.to_thread(daemon.stop, timeout=40)
            stopping = time.monotonic() - began
            assert code == 0, daemon.tail()
            await asyncio.to_thread(fs.remount_fresh)
            with contextlib.closing(sqlite3.connect(db)) as check:
                assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            await asyncio.to_thread(daemon.start)
            try:
                base_url = f"http://127.0.0.1:{api_port}"
                await assert_all_settled(base_url, receiver, traffic, SETTLE_TIMEOUT, db)
            finally:
                await asyncio.to_thread(daemon.stop)
        logged = assert_log_clean(daemon)
        print(f"SIGTERM while read-only: stopped in {stopping:.1f}s; logged {logged}")
