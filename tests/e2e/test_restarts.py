"""The daemon as a real process: what it accepted survives SIGKILL and SIGTERM."""

from __future__ import annotations

import asyncio
import signal

import httpx

from carriers.sim.server import Simulator, SimulatorConfig
from store.sqlite import SqliteStore
from tests.e2e.harness import DaemonProcess, demo_credentials, free_port, write_config


async def _send(api_port: int, sid: str, token: str, count: int) -> list[str]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{api_port}", auth=(sid, token), timeout=10
    ) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    f"/2010-04-01/Accounts/{sid}/Messages.json",
                    data={"To": "+14155552671", "From": "+15017122661", "Body": f"m{n}"},
                )
                for n in range(count)
            )
        )
    assert [r.status_code for r in responses] == [201] * count, responses[0].text
    return [r.json()["sid"] for r in responses]


async def _statuses(api_port: int, sid: str, token: str, sids: list[str]) -> dict[str, str]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{api_port}", auth=(sid, token), timeout=10
    ) as client:
        responses = await asyncio.gather(
            *(client.get(f"/2010-04-01/Accounts/{sid}/Messages/{m}.json") for m in sids)
        )
    return {r.json()["sid"]: r.json()["status"] for r in responses}


async def _wait_all(api_port, sid, token, sids, status="delivered", timeout=30.0):
    async with asyncio.timeout(timeout):
        while True:
            statuses = await _statuses(api_port, sid, token, sids)
            if set(statuses.values()) == {status}:
                return statuses
            await asyncio.sleep(0.1)


async def test_queued_messages_survive_sigkill_and_are_delivered_after_restart(tmp_path):
    smsc_port, api_port = free_port(), free_port()
    config = write_config(tmp_path, api_port=api_port, simulator=False, carrier_port=smsc_port)
    daemon = DaemonProcess(config, api_port, tmp_path / "daemon.log")
    try:
        await asyncio.to_thread(daemon.start)
        sid, token = demo_credentials((tmp_path / "daemon.log").read_text())
        # No SMSC is listening yet: the carrier is down, the API still accepts.
        sids = await _send(api_port, sid, token, 25)
        assert set((await _statuses(api_port, sid, token, sids)).values()) == {"queued"}
        daemon.kill()  # SIGKILL: no chance to flush anything

        async with Simulator(SimulatorConfig(port=smsc_port, receipt_delay=0.01)) as smsc:
            await asyncio.to_thread(daemon.start)
            await _wait_all(api_port, sid, token, sids)
            assert smsc.stats.submits == 25  # nothing was in flight at the kill: no duplicate
        assert daemon.stop(signal.SIGTERM) == 0
    finally:
        daemon.kill()


async def test_sigterm_stops_in_order_and_leaves_nothing_sending(tmp_path):
    smsc_port, api_port = free_port(), free_port()
    # A slow bind (window 2, 100 msgs/s) so that SIGTERM finds messages queued, in flight and
    # sent; the SMSC outlives the daemon and holds receipts until the daemon binds again.
    config = write_config(
        tmp_path,
        api_port=api_port,
        simulator=False,
        carrier_port=smsc_port,
        window=2,
        extra="throughput = 100",
    )
    daemon = DaemonProcess(config, api_port, tmp_path / "daemon.log")
    async with Simulator(SimulatorConfig(port=smsc_port, receipt_delay=0.2)) as smsc:
        try:
            await asyncio.to_thread(daemon.start)
            sid, token = demo_credentials((tmp_path / "daemon.log").read_text())
            sids = await _send(api_port, sid, token, 100)
            await smsc.wait_for(lambda: smsc.stats.submits >= 5, timeout=10)
            assert await asyncio.to_thread(daemon.stop, signal.SIGTERM) == 0

            async with SqliteStore(str(tmp_path / "smsgw.db")) as store:
                counts = await store.count_by_status()
            assert counts["sending"] == 0, counts
            assert counts["queued"] > 0, counts  # the stop really interrupted the flow
            assert sum(counts.values()) == 100
            assert smsc.stats.unbinds >= 1  # the daemon unbound before leaving

            await asyncio.to_thread(daemon.start)
            await _wait_all(api_port, sid, token, sids)
            assert smsc.stats.submits == 100  # a graceful stop sends nothing twice
            assert '"event": "daemon.stopped"' in (tmp_path / "daemon.log").read_text()
        finally:
            daemon.kill()


async def test_refused_bind_keeps_messages_queued_and_the_api_serving(tmp_path):
    smsc_port, api_port = free_port(), free_port()
    config = write_config(
        tmp_path, api_port=api_port, simulator=False, carrier_port=smsc_port, password="wrong"
    )
    daemon = DaemonProcess(config, api_port, tmp_path / "daemon.log")
    async with Simulator(SimulatorConfig(port=smsc_port)) as smsc:
        try:
            await asyncio.to_thread(daemon.start)
            sid, token = demo_credentials((tmp_path / "daemon.log").read_text())
            sids = await _send(api_port, sid, token, 5)
            async with asyncio.timeout(10):
                while (
                    smsc.stats.bind_attempts - smsc.stats.binds < 2
                ):  # refused, backed off, tried again
                    await asyncio.sleep(0.05)
            assert set((await _statuses(api_port, sid, token, sids)).values()) == {"queued"}
            # Stopping while the carrier refuses us is as orderly as any other stop.
            assert await asyncio.to_thread(daemon.stop, signal.SIGTERM) == 0
            log = (tmp_path / "daemon.log").read_text()
            assert "Traceback" not in log and '"event": "daemon.stopped"' in log
        finally:
            daemon.kill()


async def test_sigkill_with_submits_in_flight_resends_them_after_restart(tmp_path):
    smsc_port, api_port = free_port(), free_port()
    config = write_config(
        tmp_path, api_port=api_port, simulator=False, carrier_port=smsc_port, window=5
    )
    daemon = DaemonProcess(config, api_port, tmp_path / "daemon.log")
    async with Simulator(SimulatorConfig(port=smsc_port, receipt_delay=0.01)) as smsc:
        try:
            await asyncio.to_thread(daemon.start)
            sid, token = demo_credentials((tmp_path / "daemon.log").read_text())
            smsc.hold_responses()  # submit_sm reach the SMSC, their answers never leave it
            sids = await _send(api_port, sid, token, 8)
            await smsc.wait_for(lambda: smsc.stats.submits == 5, timeout=10)  # a full window
            daemon.kill()
            smsc.release_responses()  # the answers go to a dead connection

            async with SqliteStore(str(tmp_path / "smsgw.db")) as store:
                counts = await store.count_by_status()
                assert counts["sending"] == 8 and sum(counts.values()) == 8, counts

            await asyncio.to_thread(daemon.start)
            await _wait_all(api_port, sid, token, sids)
            # at-least-once: exactly the 5 that were in flight went to the carrier twice
            assert smsc.stats.submits == 13
            async with SqliteStore(str(tmp_path / "smsgw.db")) as store:
                reasons = [e.reason or "" for e in await store.message_events(sids[0])]
            assert any(r.startswith("lease_expired") for r in reasons), reasons
        finally:
            daemon.kill()


async def test_receipts_the_builtin_simulator_owes_survive_sigkill(tmp_path):
    """The built-in simulator keeps the receipts it owes in its owed file: messages `sent` when
    the daemon was killed are `delivered` after the restart (they used to stay `sent`)."""
    api_port = free_port()
    config = write_config(
        tmp_path, api_port=api_port, simulator_port=free_port(), receipt_delay=1.5,
        owed_path=str(tmp_path / "owed.db"),
    )  # fmt: skip
    daemon = DaemonProcess(config, api_port, tmp_path / "daemon.log")
    try:
        await asyncio.to_thread(daemon.start)
        sid, token = demo_credentials((tmp_path / "daemon.log").read_text())
        sids = await _send(api_port, sid, token, 5)
        await _wait_all(api_port, sid, token, sids, status="sent", timeout=10)
        daemon.kill()  # the receipts were due 1.5 s after each submit: none was sent yet
        await asyncio.to_thread(daemon.start)
        await _wait_all(api_port, sid, token, sids, status="delivered", timeout=20)
    finally:
        daemon.kill()
