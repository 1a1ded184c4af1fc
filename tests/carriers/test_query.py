"""query_sm over a real bind: the simulator answers with the state it holds for each message it
accepted (whether or not it sends receipts), as an SMSC does for carriers without receipts."""

from __future__ import annotations

import asyncio

import pytest

from carriers.sim.rules import parse_rule
from carriers.sim.server import Simulator, SimulatorConfig
from carriers.smpp import constants as c
from carriers.smpp.errors import QueryUnanswered
from carriers.smpp.pdus import QuerySm, SubmitSm

SOURCE = "15017122661"


def submit(destination: str) -> SubmitSm:
    return SubmitSm(
        source_addr_ton=1, source_addr_npi=1, source_addr=SOURCE, dest_addr_ton=1,
        dest_addr_npi=1, destination_addr=destination, registered_delivery=1,
        short_message=b"hello",
    )  # fmt: skip


def query(message_id: str, source: str = SOURCE) -> QuerySm:
    return QuerySm(message_id=message_id, source_addr_ton=1, source_addr_npi=1, source_addr=source)


async def test_query_tells_enroute_then_the_final_state(start_client) -> None:
    rules = (parse_rule("1*=no-receipt"), parse_rule("2*=undelivered"))
    async with Simulator(SimulatorConfig(receipt_delay=0.3, rules=rules)) as sim:
        r = await start_client(sim.port)
        await r.client.wait_bound(timeout=5)
        silent = await r.client.submit(submit("1000"))
        failed = await r.client.submit(submit("2000"))
        early = await r.client.query(query(silent.message_id))
        assert (early.ok, early.message_state, early.final_date) == (True, c.ENROUTE, "")
        await asyncio.sleep(0.4)
        late = await r.client.query(query(silent.message_id))
        assert (late.ok, late.message_state) == (True, c.DELIVERED)
        assert len(late.final_date) == 16
        undelivered = await r.client.query(query(failed.message_id))
        assert (undelivered.message_state, undelivered.error_code) == (c.UNDELIVERABLE, 1)
        assert sim.stats.queries == 3
        assert r.client.stats.queries == 3


async def test_an_unknown_message_or_source_is_a_query_failure(start_client) -> None:
    async with Simulator(SimulatorConfig(receipt_delay=0.01)) as sim:
        r = await start_client(sim.port)
        await r.client.wait_bound(timeout=5)
        taken = await r.client.submit(submit("3000"))
        for pdu in (query("ffffff"), query(taken.message_id, source="999")):
            answer = await r.client.query(pdu)
            assert (answer.ok, answer.command_status, answer.message_state) == (
                False, c.ESME_RQUERYFAIL, None
            )  # fmt: skip


async def test_no_bind_no_query(start_client) -> None:
    async with Simulator(SimulatorConfig()) as sim:
        r = await start_client(sim.port)
        with pytest.raises(QueryUnanswered):  # not bound yet: ask again later, do not wait
            await r.client.query(query("1"))
