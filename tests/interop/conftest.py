"""An SMSC not written in this project: `node_smsc.js`, built on the npm `smpp` package, run by
Node as a child process on 127.0.0.1. `make test` installs it (npm ci in tests/interop)."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import start_gateway  # noqa: F401  (the daemon, in this test's loop)

HERE = Path(__file__).parent
SCRIPT = HERE / "node_smsc.js"


class NodeSmsc:
    """The running peer: what it printed (`events`), and a way to make it send MO messages."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.port = 0
        self.events: list[dict] = []
        self._changed = asyncio.Event()
        self._reader: asyncio.Task | None = None

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read())
        listening = await self.wait_for(lambda: self.of("listening"), timeout=15)
        self.port = listening[0]

    def of(self, kind: str) -> list:
        return [event[kind] for event in self.events if kind in event]

    async def wait_for(self, found: Callable[[], object], timeout: float = 15):
        async with asyncio.timeout(timeout):
            while not (value := found()):
                if self._reader is not None and self._reader.done():
                    raise AssertionError(f"node_smsc.js ended: {self.events[-3:]}")
                self._changed.clear()
                await self._changed.wait()
        return value

    def send_mo(self, **mo) -> None:
        self.process.stdin.write((json.dumps({"mo": mo}) + "\n").encode())

    async def _read(self) -> None:
        while line := await self.process.stdout.readline():
            self.events.append(json.loads(line))
            self._changed.set()
        self._changed.set()

    async def stop(self) -> None:
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            await self._reader


@pytest.fixture
async def node_smsc():
    """Start node_smsc.js with the given options (`id_format="dec"` → `--id-format dec`)."""
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "smpp").is_dir():
        pytest.fail("the interop peer is not installed: run `make test` (npm ci in tests/interop)")
    running: list[NodeSmsc] = []

    async def start(**options) -> NodeSmsc:
        argv = [node, str(SCRIPT), "--port", "0"]
        for key, value in options.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        smsc = NodeSmsc(process)
        running.append(smsc)
        await smsc.start()
        return smsc

    yield start
    for smsc in running:
        await smsc.stop()
