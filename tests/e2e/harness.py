"""Real parts for end-to-end tests: a daemon (in-process or as a child process), a webhook
receiver, a free-port helper and a config writer. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(
    directory: Path,
    *,
    api_port: int = 0,
    simulator: bool = True,
    simulator_port: int = 0,
    receipt_delay: float = 0.05,
    carrier_port: int | None = None,
    password: str = "secret",
    window: int = 10,
    extra: str = "",
    owed_path: str = "",
    delivery: str = "",
) -> Path:
    """A configuration file for a test daemon; the carrier is the built-in simulator unless a
    `carrier_port` names an external SMSC."""
    if carrier_port is None:
        carrier = 'builtin_simulator = true\nsystem_id = "smsgw"\n'
    else:
        carrier = f'host = "127.0.0.1"\nport = {carrier_port}\nsystem_id = "smsgw"\n'
    text = f"""
[http]
host = "127.0.0.1"
port = {api_port}

[store]
path = "{directory / "smsgw.db"}"

[log]
format = "json"
level = "info"

[delivery]
retry_base = 0.05
retry_max = 0.5
stop_timeout = 5.0
{delivery}

[webhooks]
retry_base = 0.05
retry_max = 0.5
max_attempts = 4

[simulator]
enabled = {"true" if simulator else "false"}
port = {simulator_port}
receipt_delay = {receipt_delay}
owed_path = "{owed_path}"

[demo]
enabled = true

[carriers.sim]
{carrier}password = "{password}"
window = {window}
reconnect_min = 0.05
reconnect_max = 0.5
bind_refused_backoff = 0.5
{extra}
"""
    path = directory / "smsgw.toml"
    path.write_text(text)
    return path


@dataclass
class Callbacks:
    """Status callbacks a webhook receiver got: (url, form, headers) in arrival order."""

    received: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def for_message(self, sid: str) -> list[dict[str, str]]:
        return [form for _, form, _ in self.received if form.get("MessageSid") == sid]

    async def wait_for(self, predicate, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(predicate)


class WebhookReceiver:
    """An HTTP server that records every POST; `fail_first` answers 500 that many times."""

    def __init__(self, fail_first: int = 0) -> None:
        self.callbacks = Callbacks()
        self._fail_first = fail_first
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items()}
        if self._fail_first > 0:
            self._fail_first -= 1
            return web.Response(status=500)
        async with self.callbacks.changed:
            self.callbacks.received.append((str(request.url), form, dict(request.headers)))
            self.callbacks.changed.notify_all()
        return web.Response(status=204)

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/status", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/status"
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()


class DaemonProcess:
    """`smsgw run` as a real child process (for restarts, SIGTERM and SIGKILL), optionally behind
    a command `prefix` (e.g. one that runs it in another mount namespace)."""

    def __init__(self, config: Path, api_port: int, log_path: Path, prefix=()) -> None:
        self.config = config
        self.api_port = api_port
        self.log_path = log_path
        self.prefix = list(prefix)
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> None:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", "gateway", "run", "-c", str(self.config)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.api_port}/healthz", timeout=1).is_success:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"daemon did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def external_carrier_config(directory: Path, extra: str):
    """Load (and so check) a configuration whose carrier is an external SMSC, with `extra` keys
    in its [carriers.sim] table: raises ConfigError as the daemon would."""
    from gateway.config import load_config

    return load_config(write_config(directory, simulator=False, carrier_port=2775, extra=extra))


def demo_credentials(log_text: str) -> tuple[str, str]:
    """The demo AccountSid and AuthToken from the daemon's start-up banner."""
    sid = token = None
    for line in log_text.splitlines():
        if "demo AccountSid:" in line:
            sid = line.split(":", 1)[1].strip()
        if "demo AuthToken:" in line:
            token = line.split(":", 1)[1].strip()
    if not (sid and token):
        raise AssertionError("no demo credentials in the daemon output")
    return sid, token


class SimulatorProcess:
    """The SMSC simulator (`carriers.sim.Simulator`, as `smsgw sim` runs it) in its own child
    process, so it outlives a daemon that is SIGKILLed and keeps what it received.

    `smsgw sim` itself cannot tell anyone what it received (it runs with record_submits=False
    and has no way to report), so this child appends one line per submit_sm to `record_path`,
    written and flushed before the submit_sm_resp goes out: ``destination<TAB>text``. A test
    reads that file to count what reached the carrier, duplicates included. Bodies containing
    `reject_marker` get ESME_RINVDSTADR (a permanent error: the message `failed`); bodies
    containing `undeliver_marker` get an UNDELIV receipt (`undelivered`); others DELIVRD.
    """

    def __init__(
        self,
        port: int,
        record_path: Path,
        log_path: Path,
        *,
        receipt_delay: float = 0.05,
        reject_marker: str = "#reject",
        undeliver_marker: str = "#undeliver",
    ) -> None:
        self.port = port
        self.record_path = record_path
        self.log_path = log_path
        self.args = [str(port), str(record_path), str(receipt_delay), reject_marker,
                     undeliver_marker]  # fmt: skip
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> None:
        code = "from tests.e2e.harness import recording_simulator_main as m; m()"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", code, *self.args],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"simulator exited: {self.log_path.read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return
            time.sleep(0.05)
        raise TimeoutError(f"simulator did not start: {self.log_path.read_text()[-2000:]}")

    def submits(self) -> list[tuple[str, str]]:
        """(destination, text) of every submit_sm received so far, in arrival order."""
        if not self.record_path.exists():
            return []
        lines = self.record_path.read_text().splitlines()
        return [tuple(line.split("\t", 1)) for line in lines if "\t" in line]  # type: ignore[misc]

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def recording_simulator_main() -> None:
    """The child process of `SimulatorProcess` (argv: port record_path receipt_delay
    reject_marker undeliver_marker); runs until SIGTERM/SIGINT."""
    from carriers.sim.cli import serve_forever
    from carriers.sim.server import SimulatorConfig
    from carriers.smpp import constants
    from carriers.smpp.text import message_text

    port, record_path, receipt_delay, reject_marker, undeliver_marker = sys.argv[1:6]
    record = open(record_path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as we do

    def text_of(pdu) -> str:
        return message_text(pdu.short_message, pdu.esm_class, pdu.data_coding)

    def submit_status(pdu) -> int:  # called once per submit_sm, before it is answered
        text = text_of(pdu)
        line = text.replace("\n", " ")
        record.write(f"{pdu.destination_addr}\t{line}\n")
        record.flush()
        return constants.ESME_RINVDSTADR if reject_marker in text else constants.ESME_ROK

    def receipt_outcome(pdu) -> tuple[str, str]:
        return ("UNDELIV", "001") if undeliver_marker in text_of(pdu) else ("DELIVRD", "000")

    config = SimulatorConfig(
        port=int(port),
        receipt_delay=float(receipt_delay),
        record_submits=False,
        submit_status=submit_status,
        receipt_outcome=receipt_outcome,
    )
    parent = os.getppid()

    async def run() -> None:
        async def orphaned() -> None:  # the test process died without stopping us: stop
            while os.getppid() == parent:
                await asyncio.sleep(1.0)
            os.kill(os.getpid(), signal.SIGTERM)

        watchdog = asyncio.create_task(orphaned())
        try:
            await serve_forever(config)
        finally:
            watchdog.cancel()

    asyncio.run(run())
