"""A carrier that refuses, errs or drops the bind: precise outcomes, nothing lost."""

from __future__ import annotations

import asyncio

from carriers.sim.server import Simulator, SimulatorConfig
from carriers.smpp import constants as smpp

REFUSED = "14155550100"
FLAKY = "14155550101"


async def _wait_status(gateway, sid: str, statuses: set[str], timeout: float = 20.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            message = await gateway.fetch(sid)
            if message["status"] in statuses:
                return message
            await asyncio.sleep(0.05)


async def test_permanent_submit_error_fails_the_message_with_a_mapped_code(start_gateway, webhooks):
    config = SimulatorConfig(
        submit_status=lambda pdu: (
            smpp.ESME_RINVDSTADR if pdu.destination_addr == REFUSED else smpp.ESME_ROK
        ),
    )
    async with Simulator(config) as smsc:
        gateway = await start_gateway(simulator=False, carrier_port=smsc.port)
        response = await gateway.send(
            To="+" + REFUSED, From="+15017122661", Body="nope", StatusCallback=webhooks.url
        )
        sid = response.json()["sid"]
        message = await _wait_status(gateway, sid, {"failed"})
        assert message["error_code"] == 30005
        assert "ESME_RINVDSTADR" in message["error_message"]
        callbacks = webhooks.callbacks
        await callbacks.wait_for(lambda: len(callbacks.for_message(sid)) == 2)
        failed = callbacks.for_message(sid)[-1]
        assert failed["MessageStatus"] == "failed" and failed["ErrorCode"] == "30005"
        assert smsc.stats.submits == 1  # a permanent error is not retried


async def test_transient_submit_error_is_retried_until_accepted(start_gateway):
    answers = {"count": 0}

    def flaky(pdu) -> int:
        if pdu.destination_addr != FLAKY:
            return smpp.ESME_ROK
        answers["count"] += 1
        return smpp.ESME_RSYSERR if answers["count"] <= 2 else smpp.ESME_ROK

    async with Simulator(SimulatorConfig(submit_status=flaky)) as smsc:
        gateway = await start_gateway(simulator=False, carrier_port=smsc.port)
        response = await gateway.send(To="+" + FLAKY, From="+15017122661", Body="again")
        message = await _wait_status(gateway, response.json()["sid"], {"delivered", "failed"})
        assert message["status"] == "delivered"
        assert answers["count"] == 3


async def test_dropped_binds_lose_no_message(start_gateway):
    async with Simulator(SimulatorConfig(receipt_delay=0.01)) as smsc:
        gateway = await start_gateway(
            simulator=False, carrier_port=smsc.port, extra="throughput = 500"
        )
        responses = await asyncio.gather(
            *(
                gateway.send(To="+14155552671", From="+15017122661", Body=f"drop {n}")
                for n in range(150)
            )
        )
        sids = [r.json()["sid"] for r in responses]
        for threshold in (30, 80):  # the carrier drops every connection twice mid-stream
            await smsc.wait_for(lambda t=threshold: smsc.stats.submits >= t, timeout=20)
            smsc.disconnect_all()
        async with asyncio.timeout(40):
            while True:
                fetched = await asyncio.gather(*(gateway.fetch(sid) for sid in sids))
                if {m["status"] for m in fetched} == {"delivered"}:
                    break
                await asyncio.sleep(0.1)
        assert smsc.stats.binds >= 3  # bound, re-bound twice
        assert smsc.stats.submits >= 150  # in-flight ones may have been sent twice


async def test_undelivered_receipt_marks_the_message_undelivered(start_gateway, webhooks):
    unreachable = "14155550102"
    config = SimulatorConfig(
        receipt_delay=0.01,
        receipt_outcome=lambda pdu: (
            ("UNDELIV", "001") if pdu.destination_addr == unreachable else ("DELIVRD", "000")
        ),
    )
    async with Simulator(config) as smsc:
        gateway = await start_gateway(simulator=False, carrier_port=smsc.port)
        response = await gateway.send(
            To="+" + unreachable, From="+15017122661", Body="hello?", StatusCallback=webhooks.url
        )
        sid = response.json()["sid"]
        message = await _wait_status(gateway, sid, {"undelivered", "delivered"})
        assert message["status"] == "undelivered"
        assert message["error_code"] == 30003
        callbacks = webhooks.callbacks
        await callbacks.wait_for(lambda: len(callbacks.for_message(sid)) == 3)
        last = callbacks.for_message(sid)[-1]
        assert (last["MessageStatus"], last["ErrorCode"]) == ("undelivered", "30003")


async def test_receipts_before_their_responses_are_held_and_matched(start_gateway):
    """An SMSC that sends each receipt ahead of its submit_sm_resp: the receipt is held (its id
    is not known yet) and applied when the response is recorded."""
    async with Simulator(SimulatorConfig(receipts_first=True)) as smsc:
        gateway = await start_gateway(simulator=False, carrier_port=smsc.port)
        sids = [(await gateway.send(To=f"+1415555{n:04d}", From="+15017122661", Body="early"))
                .json()["sid"] for n in range(5)]  # fmt: skip
        async with asyncio.timeout(15):
            while {(await gateway.fetch(s))["status"] for s in sids} != {"delivered"}:
                await asyncio.sleep(0.05)
        assert smsc.stats.receipts_acked == 5


async def test_scripted_disconnects_lose_nothing(start_gateway):
    async with Simulator(SimulatorConfig(receipt_delay=0.01, disconnect_every=3)) as smsc:
        gateway = await start_gateway(simulator=False, carrier_port=smsc.port, window=2)
        sids = [(await gateway.send(To=f"+1415555{n:04d}", From="+15017122661", Body="drop"))
                .json()["sid"] for n in range(10)]  # fmt: skip
        async with asyncio.timeout(30):
            while {(await gateway.fetch(s))["status"] for s in sids} != {"delivered"}:
                await asyncio.sleep(0.05)
        assert smsc.stats.scripted_disconnects >= 3 and smsc.stats.binds >= 4
