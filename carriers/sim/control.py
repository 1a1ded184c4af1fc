"""The simulator's control port: inject an MO message, read the counters, over plain HTTP.

Why HTTP: a simulator running as its own process (`smsgw sim`) has no other way in, and curl is
on every machine: ``curl -d source=447911123456 -d destination=12345 -d text=STOP
http://127.0.0.1:2776/mo``. aiohttp serves it because the gateway already depends on it (for
webhooks); it listens on the simulator's host (loopback by default) and nothing else.

* ``POST /mo`` (form or JSON: source, destination, text, optional encoding gsm7|ucs2,
  system_id): queued to a receiving bind, 202; a missing field is a 400 naming it.
* ``GET /stats``: the counters (`SimulatorStats`, numbers only) as JSON.
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from carriers.sim.server import Simulator
from carriers.smpp.text import ENCODINGS


def control_app(sim: Simulator) -> web.Application:
    async def mo(request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            try:
                fields = await request.json()
            except ValueError:
                return _error(400, "the body is not JSON")
            if not isinstance(fields, dict):
                return _error(400, "expected a JSON object")
        else:
            fields = dict(await request.post())
        missing = [k for k in ("source", "destination", "text") if not fields.get(k)]
        if missing:
            return _error(400, f"missing field(s): {', '.join(missing)}")
        encoding = fields.get("encoding") or "gsm7"
        if encoding not in ENCODINGS:
            return _error(400, f"encoding must be one of {', '.join(ENCODINGS)}")
        try:
            sim.send_mo(
                source_addr=str(fields["source"]),
                destination_addr=str(fields["destination"]),
                text=str(fields["text"]),
                encoding=encoding,
                system_id=fields.get("system_id") or None,
            )
        except ValueError as exc:  # a character GSM-7 lacks
            return _error(400, f"cannot encode the text as {encoding}: {exc}")
        return web.json_response({"queued": True}, status=202)

    async def stats(_request: web.Request) -> web.Response:
        counters = {
            f.name: getattr(sim.stats, f.name)
            for f in dataclasses.fields(sim.stats)
            if isinstance(getattr(sim.stats, f.name), int)
        }
        return web.json_response(counters | {"queued": sim.queued()})

    app = web.Application()
    app.add_routes([web.post("/mo", mo), web.get("/stats", stats)])
    return app


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def start_control(sim: Simulator, host: str, port: int) -> web.AppRunner:
    """Serve the control port; returns the runner (``await runner.cleanup()`` to stop)."""
    runner = web.AppRunner(control_app(sim), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
