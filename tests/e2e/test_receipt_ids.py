"""A carrier that answers submit_sm in hexadecimal and writes its receipts in decimal (text only,
no receipted_message_id TLV), as many do: with `receipt_id_format = "dec"` every message is
delivered; compared as text (`as-is`), none would ever be."""

from __future__ import annotations

import asyncio

from carriers.sim.server import Simulator, SimulatorConfig


async def send_and_wait(gateway, wanted: str, seconds: float) -> str:
    response = await gateway.send(To="+14155552671", From="+15017122661", Body="id formats")
    assert response.status_code == 201, response.text
    sid = response.json()["sid"]
    status = "queued"
    try:
        async with asyncio.timeout(seconds):
            while (status := (await gateway.fetch(sid))["status"]) != wanted:
                await asyncio.sleep(0.02)
    except TimeoutError:
        pass
    return status


def decimal_receipts() -> SimulatorConfig:
    return SimulatorConfig(message_id_format="hex", receipt_id_format="decimal", receipt_delay=0.01)


async def test_hex_responses_and_decimal_receipts_match_with_dec(start_gateway):
    async with Simulator(decimal_receipts()) as smsc:
        gateway = await start_gateway(
            simulator=False, carrier_port=smsc.port, extra='receipt_id_format = "dec"'
        )
        assert await send_and_wait(gateway, "delivered", 10) == "delivered"
        assert smsc.stats.receipts_acked == 1


async def test_compared_as_written_they_never_match(start_gateway):
    async with Simulator(decimal_receipts()) as smsc:
        gateway = await start_gateway(
            simulator=False, carrier_port=smsc.port, extra='receipt_id_format = "as-is"'
        )
        assert await send_and_wait(gateway, "delivered", 1.0) == "sent"
        assert smsc.stats.receipts_acked == 1  # acknowledged and held, never matched
