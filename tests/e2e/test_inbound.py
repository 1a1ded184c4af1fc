"""Inbound (MO) messages through the real daemon and an external simulator: stored before the
SMSC is acknowledged, long ones reassembled, then shown by the API as Twilio shows them."""

from __future__ import annotations

import asyncio
import sqlite3

from carriers.sim.server import Simulator, SimulatorConfig
from carriers.smpp import constants as c
from carriers.smpp.pdus import DeliverSm
from carriers.smpp.text import concat_udh


def inbound_sids(db) -> list[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT sid FROM messages WHERE direction = 'inbound' AND status = 'received'"
            " ORDER BY rowid"
        )
        return [sid for (sid,) in rows]


async def wait_for_inbound(db, count: int) -> list[str]:
    async with asyncio.timeout(10):
        while len(sids := inbound_sids(db)) < count:
            await asyncio.sleep(0.02)
    return sids


async def test_an_inbound_message_is_stored_and_shown_by_the_api(start_gateway, tmp_path):
    async with Simulator(SimulatorConfig()) as smsc:
        gateway = await start_gateway(simulator=False, carrier_port=smsc.port)
        await smsc.wait_for(lambda: smsc.stats.binds == 1)
        smsc.send_mo(source_addr="447911123456", destination_addr="12345", text="STOP €5")
        [sid] = await wait_for_inbound(tmp_path / "smsgw.db", 1)
        await smsc.wait_for(lambda: smsc.stats.mo_acked == 1)
        message = await gateway.fetch(sid)
        assert (message["direction"], message["status"], message["body"]) == (
            "inbound", "received", "STOP €5"
        )  # fmt: skip
        assert (message["from"], message["to"], message["num_segments"]) == (
            "+447911123456", "12345", "1"
        )  # fmt: skip


async def test_a_long_inbound_message_in_parts_is_reassembled(start_gateway, tmp_path):
    text = "Ünïcödé reply, long enough for two parts: " + "😀" * 40
    octets = text.encode("utf-16-be")
    chunks = [octets[:133], octets[133:]]  # an odd cut: inside a UTF-16 unit, on purpose
    async with Simulator(SimulatorConfig()) as smsc:
        gateway = await start_gateway(simulator=False, carrier_port=smsc.port)
        await smsc.wait_for(lambda: smsc.stats.binds == 1)
        for seqnum in (2, 1):  # the second part first
            smsc.send_deliver(
                DeliverSm(
                    source_addr="447911123456", source_addr_ton=c.TON_INTERNATIONAL,
                    destination_addr="12345", esm_class=c.ESM_CLASS_UDHI,
                    data_coding=c.DATA_CODING_UCS2,
                    short_message=concat_udh(0x5A, 2, seqnum) + chunks[seqnum - 1],
                )
            )  # fmt: skip
        [sid] = await wait_for_inbound(tmp_path / "smsgw.db", 1)
        await smsc.wait_for(lambda: smsc.stats.mo_acked == 2)
        message = await gateway.fetch(sid)
        assert (message["status"], message["body"], message["num_segments"]) == (
            "received", text, "2"
        )  # fmt: skip
