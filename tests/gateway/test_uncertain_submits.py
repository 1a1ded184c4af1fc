"""A submit_sm whose response times out is uncertain: the SMSC may have taken it. Per carrier,
resend it (a duplicate is possible, and recorded) or wait for its late answer and never resend.
Real parts: a SQLite store, an SMPP client, the simulator answering late (or never)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from carriers.sim.rules import parse_rule
from carriers.sim.server import Simulator, SimulatorConfig
from carriers.smpp.client import BindConfig, SmppClient
from gateway.clock import utc_now
from gateway.config import DeliveryConfig
from gateway.engine.delivery import CarrierLane
from gateway.engine.policy import CarrierPolicy
from gateway.ids import ACCOUNT, MESSAGE, new_auth_token, new_sid
from store.commands import Accept, CreateAccount
from store.models import NewMessage
from store.sqlite import SqliteStore

RESPONSE_TIMEOUT = 0.3


@dataclass
class Rig:
    store: SqliteStore
    account_sid: str
    lane: CarrierLane
    smsc: Simulator

    async def send(self, to: str) -> str:
        message = await self.store.write(
            Accept(
                NewMessage(
                    sid=new_sid(MESSAGE),
                    account_sid=self.account_sid,
                    from_addr="+15017122661",
                    to_addr=to,
                    body="hello",
                    num_segments=1,
                    encoding="gsm7",
                    carrier="sim",
                ),
                utc_now(),
            )
        )
        self.lane.wake()
        return message.sid

    async def final(self, sid: str, timeout: float = 10.0):
        async with asyncio.timeout(timeout):
            while True:
                message = await self.store.get_message(self.account_sid, sid)
                if message.status in ("delivered", "undelivered", "failed"):
                    return message
                await asyncio.sleep(0.02)

    def submits_to(self, to: str) -> int:
        return sum(1 for s in self.smsc.stats.submitted if s.destination_addr == to[1:])


@contextlib.asynccontextmanager
async def rig(tmp_path, policy: CarrierPolicy) -> AsyncIterator[Rig]:
    rules = (parse_rule("*1111=late:1.0"), parse_rule("*2222=no-response"))
    async with (
        SqliteStore(str(tmp_path / "lane.db")) as store,
        Simulator(SimulatorConfig(receipt_delay=0.01, rules=rules)) as smsc,
    ):
        account = await store.write(
            CreateAccount(new_sid(ACCOUNT), "t", new_auth_token(), utc_now())
        )
        lanes: list[CarrierLane] = []

        async def on_deliver(pdu):
            await lanes[0].on_deliver(pdu)

        client = SmppClient(
            BindConfig(
                name="sim",
                host="127.0.0.1",
                port=smsc.port,
                system_id="smsgw",
                password="secret",
                response_timeout=RESPONSE_TIMEOUT,
                late_response_window=policy.late_response_window,
                reconnect_min=0.05,
                reconnect_max=0.2,
            ),
            on_deliver=on_deliver,
        )
        lane = CarrierLane(
            carrier="sim",
            client=client,
            store=store,
            owner=store.owner,
            window=4,
            config=DeliveryConfig(),
            policy=policy,
        )
        lanes.append(lane)
        tasks = [asyncio.create_task(client.run()), asyncio.create_task(lane.run())]
        try:
            yield Rig(store, account.sid, lane, smsc)
        finally:
            await lane.stop(2)
            await client.close(1)
            await lane.drain(1)
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


RESEND = CarrierPolicy(max_attempts=3, retry_base=0.05, retry_max=0.1)
WAIT = CarrierPolicy(max_attempts=3, retry_base=0.05, retry_max=0.1, uncertain_submits="wait",
                     uncertain_wait=3.0)  # fmt: skip


async def test_waiting_takes_a_late_answer_and_sends_once(tmp_path) -> None:
    async with rig(tmp_path, WAIT) as r:
        sid = await r.send("+14155551111")
        message = await r.final(sid)
        assert message.status == "delivered"
        assert r.submits_to("+14155551111") == 1
        assert r.smsc.stats.answered_late == 1
        events = await r.store.message_events(sid)
        assert [e.to_status for e in events if e.to_status] == [
            "queued", "sending", "sent", "delivered"
        ]  # fmt: skip


async def test_waiting_with_no_answer_fails_without_resending(tmp_path) -> None:
    async with rig(tmp_path, WAIT) as r:
        sid = await r.send("+14155552222")
        message = await r.final(sid, timeout=15)
        assert message.status == "failed"
        assert message.error_code == 30008
        assert "not resent" in message.error_message
        assert r.submits_to("+14155552222") == 1
        events = await r.store.message_events(sid)
        assert events[-1].reason == "submit_uncertain"


async def test_resending_sends_again_and_says_a_duplicate_is_possible(tmp_path) -> None:
    async with rig(tmp_path, RESEND) as r:
        sid = await r.send("+14155551111")  # answered after the timeout: too late to count
        message = await r.final(sid)
        assert r.submits_to("+14155551111") >= 2
        events = await r.store.message_events(sid)
        retried = [e for e in events if e.to_status == "queued" and e.from_status == "sending"]
        assert retried and {e.reason for e in retried} == {"submit_uncertain"}, events
        assert message.status == "delivered" or "duplicate possible" in message.error_message
        assert message.status in ("delivered", "failed")


def test_the_wait_must_end_before_the_lease_does(tmp_path) -> None:
    from gateway.config import ConfigError, load_config

    path = tmp_path / "smsgw.toml"
    path.write_text(
        '[delivery]\nlease_seconds = 60\n[carriers.acme]\nsystem_id = "x"\n'
        'uncertain_submits = "wait"\nuncertain_wait = 40\nresponse_timeout = 30\n'
    )
    with pytest.raises(ConfigError, match=r"carriers\.acme: response_timeout \+ uncertain_wait"):
        load_config(path)
    path.write_text('[carriers.acme]\nsystem_id = "x"\nuncertain_submits = "maybe"\n')
    with pytest.raises(ConfigError, match=r"carriers\.acme\.uncertain_submits: expected one of"):
        load_config(path)
