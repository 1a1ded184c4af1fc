"""ValidityPeriod end to end: HTTP → store → (no) carrier → failed 30036, told by callback."""

from __future__ import annotations

import socket

import pytest

from tests.e2e.harness import WebhookReceiver


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once closed: the carrier is down


@pytest.mark.parametrize("value", ["0", "36001", "ten", "-5", "1.5"])
async def test_a_validity_outside_1_to_36000_seconds_is_21624(gateway, value) -> None:
    response = await gateway.send(
        To="+14155552671", From="+15017122661", Body="hi", ValidityPeriod=value
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 21624 and "ValidityPeriod" in body["message"], body


async def test_a_message_the_carrier_could_not_take_in_time_fails_with_30036(
    start_gateway,
) -> None:
    gateway = await start_gateway(
        simulator=False, carrier_port=closed_port(), delivery="sweep_interval = 0.2"
    )
    async with WebhookReceiver() as hooks:
        short = await gateway.send(
            To="+14155552671", From="+15017122661", Body="code 1234", ValidityPeriod="1",
            StatusCallback=hooks.url,
        )  # fmt: skip
        lasting = await gateway.send(To="+14155552672", From="+15017122661", Body="later")
        assert short.status_code == lasting.status_code == 201
        sid = short.json()["sid"]
        await hooks.callbacks.wait_for(lambda: hooks.callbacks.for_message(sid), timeout=10)
        [told] = hooks.callbacks.for_message(sid)
        assert (told["MessageStatus"], told["ErrorCode"]) == ("failed", "30036")
    fetched = await gateway.fetch(sid)
    assert (fetched["status"], fetched["error_code"]) == ("failed", 30036)
    # the default validity (36,000 s) keeps the other one waiting for its carrier
    assert (await gateway.fetch(lasting.json()["sid"]))["status"] == "queued"
