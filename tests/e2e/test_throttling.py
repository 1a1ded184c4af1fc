"""A carrier that throttles slows a message down; it never uses up the message's retry budget.

Through the real daemon and a simulator that answers submit_sm with ESME_RTHROTTLED for a while.
The carrier's own policy keys ([carriers.sim] max_attempts, throttle_*) are set small, and the
carrier throttles more often than even the [delivery] default budget, so a lane that charged
throttling to the budget fails the message whichever budget it reads.
"""

from __future__ import annotations

from carriers.sim.server import Simulator, SimulatorConfig
from carriers.smpp import constants as smpp
from gateway.config import DeliveryConfig

FINAL = {"delivered", "undelivered", "failed"}
MAX_ATTEMPTS = 2
THROTTLES = max(MAX_ATTEMPTS, DeliveryConfig().max_attempts) + 2
POLICY = f"""max_attempts = {MAX_ATTEMPTS}
throttle_base = 0.02
throttle_max = 0.1
"""


def answers_then_accepts(status: int, times: int):
    """A simulator submit_status: `status` for the first `times` submits, then ESME_ROK."""
    answered: list[int] = []

    def answer(pdu) -> int:
        result = status if len(answered) < times else smpp.ESME_ROK
        answered.append(result)
        return result

    return answer, answered


async def _final_callback(webhooks, sid: str) -> list[dict[str, str]]:
    callbacks = webhooks.callbacks
    await callbacks.wait_for(
        lambda: any(f["MessageStatus"] in FINAL for f in callbacks.for_message(sid)), timeout=30
    )
    return callbacks.for_message(sid)


async def test_message_throttled_more_times_than_max_attempts_is_delivered(start_gateway, webhooks):
    submit_status, answered = answers_then_accepts(smpp.ESME_RTHROTTLED, THROTTLES)
    config = SimulatorConfig(receipt_delay=0.01, submit_status=submit_status)
    async with Simulator(config) as smsc:
        gateway = await start_gateway(simulator=False, carrier_port=smsc.port, extra=POLICY)
        response = await gateway.send(
            To="+14155550123", From="+15017122661", Body="slow down", StatusCallback=webhooks.url
        )
        assert response.status_code == 201, response.text
        sid = response.json()["sid"]

        forms = await _final_callback(webhooks, sid)
        message = await gateway.fetch(sid)
        assert (message["status"], message["error_code"], message["error_message"]) == (
            "delivered",
            None,
            None,
        ), f"throttled {THROTTLES}x with max_attempts={MAX_ATTEMPTS}: {message}"
        assert [f["MessageStatus"] for f in forms] == ["sending", "sent", "delivered"]
        assert answered == [smpp.ESME_RTHROTTLED] * THROTTLES + [smpp.ESME_ROK]


async def test_carriers_own_max_attempts_bounds_transient_retries(start_gateway, webhooks):
    submit_status, answered = answers_then_accepts(smpp.ESME_RSYSERR, MAX_ATTEMPTS + 1)
    config = SimulatorConfig(receipt_delay=0.01, submit_status=submit_status)
    async with Simulator(config) as smsc:
        gateway = await start_gateway(simulator=False, carrier_port=smsc.port, extra=POLICY)
        response = await gateway.send(
            To="+14155550124", From="+15017122661", Body="flaky", StatusCallback=webhooks.url
        )
        sid = response.json()["sid"]

        forms = await _final_callback(webhooks, sid)
        message = await gateway.fetch(sid)
        assert (message["status"], message["error_code"]) == ("failed", 30008), message
        assert f"Retries exhausted after {MAX_ATTEMPTS} attempts" in message["error_message"]
        assert "ESME_RSYSERR" in message["error_message"]
        assert forms[-1]["MessageStatus"] == "failed" and forms[-1]["ErrorCode"] == "30008"
        assert answered == [smpp.ESME_RSYSERR] * MAX_ATTEMPTS
