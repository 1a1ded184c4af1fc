"""Fixtures for the carriers tests: a simulator on an ephemeral loopback port, and clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import structlog

from carriers.sim.server import Simulator, SimulatorConfig
from carriers.smpp.client import BindConfig, SmppClient


@pytest.fixture(autouse=True, scope="session")
def quiet_structlog():
    # Tests assert on behaviour, not on log lines; keep the output readable.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(receipt_delay=0.01, receipt_retry_delay=0.05)) as s:
        yield s


def bind_config(port: int, **overrides) -> BindConfig:
    options = dict(
        name="sim", host="127.0.0.1", port=port, system_id="smsgw", password="secret",
        reconnect_min=0.01, reconnect_max=0.05, connect_timeout=2.0, response_timeout=5.0,
    )  # fmt: skip
    options.update(overrides)
    return BindConfig(**options)


class Running:
    """A client whose run() task is stopped (and checked) when the test ends."""

    def __init__(self, client: SmppClient, task: asyncio.Task[None], received: list) -> None:
        self.client = client
        self.task = task
        self.received = received

    async def stop(self) -> None:
        await asyncio.wait_for(self.client.close(timeout=2.0), 5.0)
        await asyncio.wait_for(self.task, 5.0)


@pytest.fixture
async def start_client():
    running: list[Running] = []

    async def start(port: int, on_deliver=None, **overrides) -> Running:
        received: list = []

        async def record(pdu):
            received.append(pdu)

        client = SmppClient(bind_config(port, **overrides), on_deliver=on_deliver or record)
        r = Running(client, asyncio.create_task(client.run()), received)
        running.append(r)
        return r

    yield start
    for r in running:
        await r.stop()
