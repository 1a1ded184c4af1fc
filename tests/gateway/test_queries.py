"""query_sm for a carrier that sends no receipts: the answer settles the message as a receipt
would. Pure reading of answers first, then real parts: SQLite, an SMPP bind, the simulator."""

from __future__ import annotations

from datetime import UTC, datetime

from carriers.sim.rules import parse_rule
from carriers.sim.server import SimulatorConfig
from carriers.smpp import constants as c
from carriers.smpp.results import QueryResult
from gateway.engine.policy import classify_receipt
from gateway.engine.queries import QueriedState, query_for, read_answer
from store.models import PartToQuery, SmppAddress
from tests.gateway.lane_kit import lane_rig

T0 = datetime(2026, 12, 3, tzinfo=UTC)


def test_a_final_answer_reads_as_the_receipt_it_stands_for() -> None:
    delivered = QueryResult(c.ESME_ROK, c.DELIVERED, "261203120501000+", 0)
    assert read_answer(delivered) == QueriedState("DELIVRD", "000", "2612031205")
    undeliverable = QueryResult(c.ESME_ROK, c.UNDELIVERABLE, "261203120501000+", 11)
    assert read_answer(undeliverable) == QueriedState("UNDELIV", "011", "2612031205")
    assert read_answer(QueryResult(c.ESME_ROK, c.ENROUTE, "", 0)) == QueriedState(
        "ENROUTE", "000", None
    )


def test_no_state_when_refused_or_unheard_of() -> None:
    assert read_answer(QueryResult(c.ESME_RQUERYFAIL, None)) is None
    assert read_answer(QueryResult(c.ESME_ROK, 0x42, "", 0)) is None


def test_the_query_names_the_id_as_written_and_the_address_as_submitted() -> None:
    part = PartToQuery("SM1", 0, "a1", "00A1", SmppAddress("Acme", 5, 0), "Acme", T0)
    pdu = query_for(part)
    assert (pdu.message_id, pdu.source_addr, pdu.source_addr_ton, pdu.source_addr_npi) == (
        "00A1", "Acme", 5, 0
    )  # fmt: skip
    legacy = query_for(PartToQuery("SM2", 0, "b2", "b2", None, "+15017122661", T0))
    assert (legacy.source_addr, legacy.source_addr_ton, legacy.source_addr_npi) == (
        "15017122661", 1, 1
    )  # fmt: skip


def rig(tmp_path, *, final_after: float, query_after: float):
    rules = (parse_rule("*3333=undelivered"),)
    return lane_rig(
        tmp_path,
        simulator=SimulatorConfig(receipt_delay=final_after, send_receipts=False, rules=rules),
        query=(query_after, 0.3),
    )


async def test_a_carrier_without_receipts_is_asked_and_the_answer_settles_it(tmp_path) -> None:
    async with rig(tmp_path, final_after=0.05, query_after=0.2) as r:
        delivered = (await r.send("+14155551111")).sid
        undelivered = (await r.send("+14155553333")).sid
        assert (await r.status(delivered, {"delivered"})).status == "delivered"
        failed = await r.status(undelivered, {"undelivered"})
        assert failed.error_code == classify_receipt("UNDELIV").error_code  # as its receipt would
        events = await r.store.message_events(delivered)
        assert [(e.to_status, e.receipt_stat) for e in events][-1] == ("delivered", "DELIVRD")
        assert r.smsc.stats.queries == 2  # once each: the first answers were final


async def test_a_part_not_final_yet_is_asked_again_later(tmp_path) -> None:
    async with rig(tmp_path, final_after=1.0, query_after=0.1) as r:
        sid = (await r.send("+14155551111")).sid
        await r.status(sid, {"sent"})
        message = await r.status(sid, {"delivered"}, timeout=10)
        assert message.status == "delivered"
        assert r.smsc.stats.queries >= 2  # ENROUTE first, noted, asked again
