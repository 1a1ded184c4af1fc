"""SendAt and cancel over HTTP: a scheduled 201, Twilio's codes, cancel while scheduled or queued
(and the refusal after), a scheduled message that came due while the daemon was down."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta

import httpx

from gateway.config import load_config
from gateway.daemon import DaemonInfo, serve
from tests.e2e.harness import write_config


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


async def schedule(gateway, delta: timedelta = timedelta(hours=1), **extra) -> httpx.Response:
    return await gateway.send(
        To="+14155552671", From="+15017122661", Body="later", ScheduleType="fixed",
        SendAt=iso(delta), **extra,
    )  # fmt: skip


async def cancel(gateway, sid: str, status: str = "canceled") -> httpx.Response:
    return await gateway.http.post(gateway.messages_path(sid), data={"Status": status})


async def test_a_scheduled_message_waits_and_can_be_canceled(gateway) -> None:
    response = await schedule(gateway)
    assert response.status_code == 201, response.text
    sid = response.json()["sid"]
    assert response.json()["status"] == "scheduled"
    await asyncio.sleep(0.3)  # the lanes and the scheduler leave it alone
    assert (await gateway.fetch(sid))["status"] == "scheduled"
    canceled = await cancel(gateway, sid)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    again = await cancel(gateway, sid)
    assert again.status_code == 400 and again.json()["code"] == 30409, again.text


async def test_twilio_codes_for_a_schedule_it_would_refuse(gateway) -> None:
    cases = [
        ({"SendAt": iso(timedelta(hours=1))}, 35111),
        ({"ScheduleType": "fixed"}, 35111),
        ({"ScheduleType": "fixed", "SendAt": iso(timedelta(minutes=5))}, 35114),
        ({"ScheduleType": "fixed", "SendAt": iso(timedelta(days=36))}, 35115),
    ]
    for extra, code in cases:
        response = await gateway.send(To="+14155552671", From="+15017122661", Body="x", **extra)
        assert (response.status_code, response.json()["code"]) == (400, code), (
            extra,
            response.text,
        )


async def test_a_delivered_message_cannot_be_canceled_and_updates_are_cancels_only(gateway):
    sid = (await gateway.send(To="+14155552671", From="+15017122661", Body="now")).json()["sid"]
    for _ in range(200):
        if (await gateway.fetch(sid))["status"] == "delivered":
            break
        await asyncio.sleep(0.05)
    refused = await cancel(gateway, sid)
    assert refused.status_code == 400 and refused.json()["code"] == 30409
    assert "is delivered" in refused.json()["message"]
    other = await cancel(gateway, sid, status="sent")
    assert other.status_code == 400 and other.json()["code"] == 20001
    unknown = await cancel(gateway, "SM" + "0" * 32)
    assert unknown.status_code == 404 and unknown.json()["code"] == 20404


async def test_a_message_due_while_the_daemon_was_down_goes_out_at_the_next_start(tmp_path):
    config = load_config(write_config(tmp_path))

    async def run_until(check):
        stop = asyncio.Event()
        ready: asyncio.Future[DaemonInfo] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(config, stop, on_ready=ready.set_result, banner=False))
        info = await asyncio.wait_for(ready, 20)
        account = info.demo_account
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{info.api_port}", auth=(account.sid, account.auth_token)
        ) as http:
            try:
                return await check(http, f"/2010-04-01/Accounts/{account.sid}/Messages")
            finally:
                stop.set()
                await asyncio.wait_for(task, 30)

    async def send(http, base):
        response = await http.post(
            f"{base}.json",
            data={"To": "+14155552671", "From": "+15017122661", "Body": "reminder",
                  "ScheduleType": "fixed", "SendAt": iso(timedelta(minutes=20))},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        return response.json()["sid"]

    sid = await run_until(send)
    # The daemon is down; twenty minutes pass (its SendAt is moved into the past).
    with sqlite3.connect(tmp_path / "smsgw.db") as conn:
        past = round((datetime.now(UTC) - timedelta(seconds=1)).timestamp() * 1e6)
        conn.execute("UPDATE messages SET next_attempt_at = ? WHERE sid = ?", (past, sid))

    async def delivered(http, base):
        for _ in range(200):
            message = (await http.get(f"{base}/{sid}.json")).json()
            if message["status"] == "delivered":
                return message
            await asyncio.sleep(0.05)
        return message

    assert (await run_until(delivered))["status"] == "delivered"


async def test_cancels_racing_delivery_either_win_or_are_refused_never_both(start_gateway):
    from carriers.sim.server import Simulator, SimulatorConfig

    async with Simulator(SimulatorConfig(receipt_delay=0.01)) as smsc:
        gateway = await start_gateway(simulator=False, carrier_port=smsc.port)
        numbers = [f"+1415555{n:04d}" for n in range(60)]
        created = await asyncio.gather(
            *(gateway.send(To=to, From="+15017122661", Body="race") for to in numbers)
        )
        sids = [r.json()["sid"] for r in created]
        answers = await asyncio.gather(*(cancel(gateway, sid) for sid in sids))
        await asyncio.sleep(1.0)  # whatever was not canceled is delivered by now
        for to, sid, answer in zip(numbers, sids, answers, strict=True):
            final = (await gateway.fetch(sid))["status"]
            submitted = any(s.destination_addr == to[1:] for s in smsc.stats.submitted)
            if answer.status_code == 200:
                assert (final, submitted) == ("canceled", False), (to, final)
            else:
                assert answer.json()["code"] == 30409
                assert final in ("sending", "sent", "delivered") and submitted, (to, final)
