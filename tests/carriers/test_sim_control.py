"""`smsgw sim --control-port`: MO messages injected over HTTP reach the bound ESME; counters."""

from __future__ import annotations

import asyncio
import re
import sys

import httpx

from tests.e2e.harness import free_port


async def test_an_mo_posted_to_the_control_port_reaches_the_bound_client(start_client):
    smpp_port, control_port = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "carriers.sim", "--port", str(smpp_port),
        "--control-port", str(control_port), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(15):
            while b"control:" not in (line := await proc.stdout.readline()):
                assert line, "the simulator exited before serving its control port"
        r = await start_client(smpp_port)
        await r.client.wait_bound(timeout=5)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{control_port}") as http:
            sent = await http.post(
                "/mo", data={"source": "447911123456", "destination": "12345", "text": "STOP €"}
            )
            assert sent.status_code == 202
            unicode = await http.post(
                "/mo", json={"source": "447911123456", "destination": "12345",
                             "text": "Привет", "encoding": "ucs2"},
            )  # fmt: skip
            assert unicode.status_code == 202
            missing = await http.post("/mo", data={"source": "447911123456"})
            assert missing.status_code == 400
            assert re.search("destination, text", missing.json()["error"])
            async with asyncio.timeout(5):
                while len(r.received) < 2:
                    await asyncio.sleep(0.01)
            from carriers.smpp.text import message_text

            texts = [message_text(p.short_message, p.esm_class, p.data_coding) for p in r.received]
            assert texts == ["STOP €", "Привет"]
            async with asyncio.timeout(5):
                while (stats := (await http.get("/stats")).json())["mo_acked"] < 2:
                    await asyncio.sleep(0.01)
            assert (stats["mo_sent"], stats["binds"], stats["queued"]) == (2, 1, 0)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
