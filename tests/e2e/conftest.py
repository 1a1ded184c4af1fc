from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from gateway.config import load_config
from gateway.daemon import DaemonInfo, serve
from tests.e2e.harness import WebhookReceiver, write_config


@dataclass
class RunningGateway:
    info: DaemonInfo
    http: httpx.AsyncClient
    account_sid: str
    auth_token: str
    config_path: Path | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None

    async def stop(self) -> None:
        """Stop the daemon now (gracefully), before the test ends."""
        self.stopping.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 30)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.info.api_port}"

    def messages_path(self, sid: str | None = None) -> str:
        base = f"/2010-04-01/Accounts/{self.account_sid}/Messages"
        return f"{base}/{sid}.json" if sid else f"{base}.json"

    async def send(self, **params) -> httpx.Response:
        return await self.http.post(self.messages_path(), data=params)

    async def fetch(self, sid: str) -> dict:
        response = await self.http.get(self.messages_path(sid))
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
async def start_gateway(tmp_path):
    """Start the daemon in this test's event loop; keyword arguments go to `write_config`, or
    `config_path=` starts it from a file the test wrote (or edited)."""
    stops: list[tuple[asyncio.Event, asyncio.Task]] = []
    clients: list[httpx.AsyncClient] = []

    async def start(**options) -> RunningGateway:
        path = options.pop("config_path", None) or write_config(tmp_path, **options)
        config = load_config(path)
        stop = asyncio.Event()
        ready: asyncio.Future[DaemonInfo] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(config, stop, on_ready=ready.set_result, banner=False))
        stops.append((stop, task))
        done, _ = await asyncio.wait({task, ready}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # raises the start-up error
        info = ready.result()
        account = info.demo_account
        client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{info.api_port}",
            auth=(account.sid, account.auth_token),
            timeout=10,
        )
        clients.append(client)
        return RunningGateway(info, client, account.sid, account.auth_token, path, stop, task)

    yield start
    for client in clients:
        await client.aclose()
    for stop, task in stops:
        stop.set()
        if not task.done():
            await asyncio.wait_for(task, 30)


@pytest.fixture
async def gateway(start_gateway):
    """The daemon with the built-in simulator as its carrier."""
    return await start_gateway()


@pytest.fixture
async def webhooks():
    async with WebhookReceiver() as receiver:
        yield receiver
