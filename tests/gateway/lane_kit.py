"""One carrier lane with real parts, for the delivery tests: a SQLite store with an account, the
simulator, an SMPP client bound to it, the lane (and, if asked, a query_sm sweep)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from carriers.sim.server import Simulator, SimulatorConfig
from carriers.smpp.client import BindConfig, SmppClient
from gateway.clock import utc_now
from gateway.config import DeliveryConfig
from gateway.engine.delivery import CarrierLane
from gateway.engine.policy import CarrierPolicy
from gateway.engine.queries import ReceiptQuerier
from gateway.ids import ACCOUNT, MESSAGE, new_auth_token, new_sid
from store.commands import Accept, CreateAccount
from store.models import Account, Message, NewMessage
from store.sqlite import SqliteStore

FINAL = {"delivered", "undelivered", "failed"}


@dataclass
class LaneRig:
    store: SqliteStore
    account: Account
    lane: CarrierLane
    smsc: Simulator
    client: SmppClient
    querier: ReceiptQuerier | None = None

    async def send(
        self,
        to: str = "+14155552671",
        from_addr: str = "+15017122661",
        validity_until: datetime | None = None,
        body: str = "hello",
        segments: int = 1,
    ) -> Message:
        message = NewMessage(
            sid=new_sid(MESSAGE), account_sid=self.account.sid, from_addr=from_addr,
            to_addr=to, body=body, num_segments=segments, encoding="gsm7", carrier="sim",
            validity_until=validity_until,
        )  # fmt: skip
        now = utc_now()
        await self.store.write(Accept(message, now))
        self.lane.wake()
        return message.stored(now)

    async def status(self, sid: str, wanted: set[str] = FINAL, timeout: float = 10.0) -> Message:
        """The message once its status is one of `wanted`."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.store.get_message(self.account.sid, sid)
                if message.status in wanted:
                    return message
                await asyncio.sleep(0.02)

    def submits_to(self, to: str) -> int:
        return sum(1 for s in self.smsc.stats.submitted if s.destination_addr == to.lstrip("+"))


@contextlib.asynccontextmanager
async def lane_rig(
    tmp_path: Path,
    *,
    simulator: SimulatorConfig | None = None,
    policy: CarrierPolicy | None = None,
    bind: dict[str, Any] | None = None,
    query: tuple[float, float] | None = None,  # (query_after, query_interval)
    window: int = 4,
    validity_format: str = "relative",
) -> AsyncIterator[LaneRig]:
    policy = policy or CarrierPolicy()
    async with (
        SqliteStore(str(tmp_path / "lane.db")) as store,
        Simulator(simulator or SimulatorConfig(receipt_delay=0.01)) as smsc,
    ):
        account = await store.write(
            CreateAccount(new_sid(ACCOUNT), "t", new_auth_token(), utc_now())
        )
        lanes: list[CarrierLane] = []

        async def on_deliver(pdu) -> None:
            await lanes[0].on_deliver(pdu)

        config = BindConfig(
            name="sim", host="127.0.0.1", port=smsc.port, system_id="smsgw", password="secret",
            reconnect_min=0.05, reconnect_max=0.2,
            late_response_window=policy.late_response_window,
        )  # fmt: skip
        client = SmppClient(dataclasses.replace(config, **(bind or {})), on_deliver=on_deliver)
        lane = CarrierLane(
            carrier="sim", client=client, store=store, owner=store.owner, window=window,
            config=DeliveryConfig(), policy=policy, validity_format=validity_format,
        )  # fmt: skip
        lanes.append(lane)
        querier = None
        if query is not None:
            querier = ReceiptQuerier(
                "sim", client, store, policy, query_after=query[0], query_interval=query[1]
            )
        runs = [client.run(), lane.run(), *([querier.run()] if querier else [])]
        tasks = [asyncio.create_task(run) for run in runs]
        try:
            yield LaneRig(store, account, lane, smsc, client, querier)
        finally:
            if querier is not None:
                querier.stop()
            await lane.stop(2)
            await client.close(1)
            await lane.drain(1)
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
