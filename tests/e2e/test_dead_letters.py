"""The dead-letter queue end to end: HTTP → store → a carrier that keeps failing → the DLQ, read
and replayed with the real `smsgw` CLI (a child process beside the running daemon) to a second
carrier; a carrier gone from the config; the per-account queue cap; a failing callback endpoint
that does not hold later statuses back."""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web

from carriers.sim.server import Simulator, SimulatorConfig
from carriers.smpp.constants import ESME_RSYSERR
from tests.e2e.harness import ROOT, WebhookReceiver, write_config

SMPP = 'system_id = "smsgw"\npassword = "secret"\nreconnect_min = 0.05\nreconnect_max = 0.5\n'


async def smsgw(*args: str) -> tuple[int, str, str]:
    """The real CLI, as an operator runs it (asynchronously: the daemon runs in this loop)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


async def test_retries_exhausted_reach_the_dlq_and_replay_to_a_second_carrier(
    start_gateway,
) -> None:
    failing = Simulator(SimulatorConfig(submit_status=lambda pdu: ESME_RSYSERR))
    working = Simulator(SimulatorConfig(receipt_delay=0.05))
    await failing.start()
    await working.start()
    try:
        gateway = await start_gateway(
            simulator=False,
            carrier_port=failing.port,
            extra=f"max_attempts = 2\n\n[carriers.beta]\nport = {working.port}\n{SMPP}",
        )
        config = str(gateway.config_path)
        async with WebhookReceiver() as hooks:
            sent = await gateway.send(
                To="+14155552671", From="+15017122661", Body="to replay", StatusCallback=hooks.url
            )
            assert sent.status_code == 201, sent.text
            sid = sent.json()["sid"]
            await hooks.callbacks.wait_for(
                lambda: any(
                    f["MessageStatus"] == "failed" for f in hooks.callbacks.for_message(sid)
                )
            )
            assert len(failing.stats.submitted) == 2  # max_attempts = 2
            assert (await gateway.fetch(sid))["status"] == "failed"  # the API's view

            rc, out, err = await smsgw("dlq", "list", "-c", config, "--json")
            assert rc == 0, err
            [entry] = json.loads(out)
            assert (entry["message_sid"], entry["carrier"], entry["reason"]) == (
                sid,
                "sim",
                "retries_exhausted",
            )
            assert entry["attempts"] == 2 and "Retries exhausted" in entry["error_message"]
            rc, out, _ = await smsgw("dlq", "list", "-c", config, "--carrier", "beta")
            assert rc == 0 and "empty for that filter" in out

            rc, out, err = await smsgw(
                "dlq", "retry", str(entry["id"]), "--to-carrier", "beta", "-c", config, "--json"
            )
            assert rc == 0, err
            assert [r["replayed_to"] for r in json.loads(out)["replayed"]] == ["beta"]
            await hooks.callbacks.wait_for(
                lambda: any(
                    f["MessageStatus"] == "delivered" for f in hooks.callbacks.for_message(sid)
                )
            )
            told = [f["MessageStatus"] for f in hooks.callbacks.for_message(sid)]
            assert told == ["sending", "failed", "sending", "sent", "delivered"]
        assert len(working.stats.submitted) == 1
        assert (await gateway.fetch(sid))["status"] == "delivered"
        # a second replay of the same entry is refused: it would send the message twice
        rc, _, err = await smsgw("dlq", "retry", str(entry["id"]), "-c", config)
        assert rc == 1 and "twice" in err
        # the operator's timeline tells the whole story, carrier and bind included
        rc, out, err = await smsgw("messages", "show", sid, "-c", config)
        assert rc == 0, err
        assert "replayed to carrier beta" in out and "carrier=beta bind=0" in out
        assert "0x00000008 ESME_RSYSERR" in out and "Dead-letter entries" in out
        rc, out, _ = await smsgw("messages", "show", sid, "-c", config, "--json")
        shown = json.loads(out)
        assert shown["message"]["carrier"] == "beta"
        assert [e["reason"] for e in shown["events"]][-1] == "receipt"
    finally:
        await failing.stop()
        await working.stop()


async def test_a_carrier_gone_from_the_config_fails_its_queue_into_the_dlq(start_gateway) -> None:
    unreachable = Simulator(SimulatorConfig())
    await unreachable.start()
    port = unreachable.port
    await unreachable.stop()  # nothing listens: the carrier "sim" is down
    first = await start_gateway(simulator=False, carrier_port=port, delivery="sweep_interval = 0.2")
    sid = (await first.send(To="+14155552671", From="+15017122661", Body="stranded")).json()["sid"]
    await first.stop()
    working = Simulator(SimulatorConfig(receipt_delay=0.05))
    await working.start()
    try:
        # the operator replaces carrier "sim" by "fresh": sim's queue has nobody to send it
        config = first.config_path
        text = config.read_text()
        config.write_text(
            text.replace("[carriers.sim]", "[carriers.fresh]").replace(
                f"port = {port}\n", f"port = {working.port}\n"
            )
        )
        gateway = await start_gateway(config_path=config)
        fetched = await poll(gateway, sid, "failed")
        assert fetched["error_code"] == 30008
        rc, out, err = await smsgw("dlq", "list", "-c", str(config), "--json", "--error", "30008")
        assert rc == 0, err
        [entry] = json.loads(out)
        assert (entry["reason"], entry["carrier"]) == ("carrier_gone", "sim")
        rc, _, err = await smsgw(
            "dlq", "retry", "--all", "--to-carrier", "nowhere", "-c", str(config)
        )
        assert rc == 2 and "not configured" in err
        rc, out, err = await smsgw(
            "dlq", "retry", "--all", "--to-carrier", "fresh", "-c", str(config)
        )
        assert rc == 0 and "1 replayed, 0 not." in out, err
        await poll(gateway, sid, "delivered")
        assert len(working.stats.submitted) == 1
        # purge wants a confirmation, and there is no terminal to ask on
        rc, _, err = await smsgw("dlq", "purge", "--all", "--include-replayed", "-c", str(config))
        assert rc == 1 and "--yes" in err
        rc, out, err = await smsgw(
            "dlq", "purge", "--all", "--include-replayed", "--yes", "-c", str(config), "--json"
        )
        assert rc == 0 and json.loads(out)["purged"] == 1, err
        rc, out, _ = await smsgw("dlq", "list", "-c", str(config), "--include-replayed")
        assert "empty" in out
    finally:
        await working.stop()


async def poll(gateway, sid: str, status: str, timeout: float = 10.0) -> dict:
    async with asyncio.timeout(timeout):
        while (fetched := await gateway.fetch(sid))["status"] != status:
            await asyncio.sleep(0.05)
    return fetched


async def test_the_queue_cap_refuses_with_429_and_30001(start_gateway) -> None:
    gateway = await start_gateway(simulator=False, carrier_port=1, delivery="max_unsent = 2")
    codes = []
    for n in range(3):
        response = await gateway.send(To=f"+1415555267{n}", From="+15017122661", Body="x")
        codes.append(response.status_code)
    assert codes == [201, 201, 429]
    body = response.json()
    assert body["code"] == 30001 and "queue cap is 2" in body["message"], body
    assert response.headers["Retry-After"] == "30"


async def test_a_failing_callback_does_not_hold_back_later_statuses(
    start_gateway, tmp_path
) -> None:
    """The endpoint fails `sending` every time; `sent` and `delivered` still reach it at once,
    though the sender's retries are 30 s apart (without superseding, minutes)."""
    seen: list[str] = []

    async def endpoint(request: web.Request) -> web.Response:
        form = await request.post()
        seen.append(form["MessageStatus"])
        return web.Response(status=500 if form["MessageStatus"] == "sending" else 204)

    app = web.Application()
    app.router.add_post("/status", endpoint)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/status"
    try:
        config = write_config(tmp_path, receipt_delay=0.3)
        text = config.read_text()
        slow = text.replace(
            "[webhooks]\nretry_base = 0.05\nretry_max = 0.5",
            "[webhooks]\nretry_base = 30\nretry_max = 60",
        )
        assert slow != text
        config.write_text(slow)
        gateway = await start_gateway(config_path=config)
        sent = await gateway.send(
            To="+14155552671", From="+15017122661", Body="hi", StatusCallback=url
        )
        sid = sent.json()["sid"]
        async with asyncio.timeout(10):
            while "delivered" not in seen:
                await asyncio.sleep(0.05)
        assert seen == ["sending", "sent", "delivered"]
        rc, out, err = await smsgw("messages", "show", sid, "-c", str(config))
        assert rc == 0, err
        assert "sending: skipped" in out and "superseded by the newer status sent" in out, out
    finally:
        await runner.cleanup()
