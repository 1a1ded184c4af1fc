"""End-to-end benchmark: HTTP API → durable store → SMPP → simulator → receipt → delivered.

Starts the simulator and the daemon as separate processes (as they run in production: the
simulator must not share the daemon's core budget), sends N messages through the HTTP API with a
concurrent client, waits until every one is `delivered`, and prints accepted msgs/s, delivered
msgs/s, p50/p99 accept latency and the daemon's peak RSS. With --callbacks every message also
carries a StatusCallback to a receiver in this process, so the webhook path is measured too.

    .venv/bin/python bench/e2e.py [--count 20000] [--concurrency 64] [--callbacks]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def config_text(workdir: Path, api_port: int, sim_port: int, window: int) -> str:
    return f"""
[http]
host = "127.0.0.1"
port = {api_port}
[store]
path = "{workdir / "smsgw.db"}"
[log]
format = "json"
level = "warning"
[demo]
enabled = true
[carriers.sim]
host = "127.0.0.1"
port = {sim_port}
system_id = "smsgw"
password = "secret"
window = {window}
"""


def wait_http(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"process exited early with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"port {port} did not open")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def read_credentials(log_path: Path, timeout: float = 10.0) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sid = token = None
        for line in log_path.read_text(errors="replace").splitlines():
            if "demo AccountSid:" in line:
                sid = line.split(":", 1)[1].strip()
            if "demo AuthToken:" in line:
                token = line.split(":", 1)[1].strip()
        if sid and token:
            return sid, token
        time.sleep(0.05)
    raise SystemExit("no demo credentials printed by the daemon")


async def start_receiver():
    counts = {"delivered": 0, "total": 0}

    async def handle(request: web.Request) -> web.Response:
        form = await request.post()
        counts["total"] += 1
        if form.get("MessageStatus") == "delivered":
            counts["delivered"] += 1
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/cb", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/cb", counts


async def send_all(api: str, sid: str, token: str, count: int, concurrency: int, callback):
    latencies: list[float] = []
    failures = 0
    url = f"{api}/2010-04-01/Accounts/{sid}/Messages.json"
    queue = iter(range(count))
    credentials = base64.b64encode(f"{sid}:{token}".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal failures
            for n in queue:
                # A different valid recipient each time: number parsing is not cached away.
                to = f"+1415{2_000_000 + (n * 7_919) % 7_000_000:07d}"
                form = {"To": to, "From": "+15017122661", "Body": f"bench {n}"}
                if callback:
                    form["StatusCallback"] = callback
                started = time.perf_counter()
                async with session.post(url, data=form) as response:
                    await response.read()
                    if response.status != 201:
                        failures += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - began, latencies, failures


def delivered_count(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return conn.execute("SELECT count(*) FROM messages WHERE status='delivered'").fetchone()[0]


async def run(args) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="smsgw-bench-"))
    api_port, sim_port = free_port(), free_port()
    (workdir / "smsgw.toml").write_text(config_text(workdir, api_port, sim_port, args.window))
    python = sys.executable
    sim = subprocess.Popen(
        [
            python,
            "-m",
            "gateway",
            "sim",
            "--port",
            str(sim_port),
            "--receipt-delay",
            str(args.receipt_delay),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "sim.log").open("wb"),
    )
    log_path = workdir / "daemon.log"
    daemon = subprocess.Popen(
        [python, "-m", "gateway", "run", "-c", str(workdir / "smsgw.toml")],
        cwd=ROOT,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    runner = None
    try:
        wait_port(sim_port)
        wait_http(f"http://127.0.0.1:{api_port}/healthz", daemon)
        sid, token = read_credentials(log_path)
        callback = None
        counts = None
        if args.callbacks:
            runner, callback, counts = await start_receiver()
        began = time.perf_counter()
        elapsed, latencies, failures = await send_all(
            f"http://127.0.0.1:{api_port}", sid, token, args.count, args.concurrency, callback
        )
        deadline = time.monotonic() + args.timeout
        delivered = 0
        while time.monotonic() < deadline:
            delivered = delivered_count(workdir / "smsgw.db")
            if delivered >= args.count - failures:
                break
            await asyncio.sleep(0.1)
        all_delivered = time.perf_counter() - began
        callbacks_done = None
        if counts is not None:
            while time.monotonic() < deadline and counts["delivered"] < delivered:
                await asyncio.sleep(0.1)
            callbacks_done = time.perf_counter() - began
        latencies.sort()
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
        print(
            f"messages            {args.count} (concurrency {args.concurrency}, "
            f"window {args.window}, receipt delay {args.receipt_delay}s)"
        )
        print(f"accepted            {args.count - failures} ({failures} non-201)")
        print(f"accepted msgs/s     {args.count / elapsed:,.0f}")
        print(
            f"accept latency      p50 {p(0.50):.1f} ms  p99 {p(0.99):.1f} ms  "
            f"mean {statistics.fmean(latencies) * 1000:.1f} ms"
        )
        print(f"delivered           {delivered} in {all_delivered:.1f}s")
        print(f"delivered msgs/s    {delivered / all_delivered:,.0f}")
        if counts is not None:
            print(
                f"callbacks           {counts['total']} received, {counts['delivered']} "
                f"'delivered', all in {callbacks_done:.1f}s"
            )
        print(f"daemon peak RSS     {peak_rss_mb(daemon.pid):.0f} MB")
    finally:
        if runner is not None:
            await runner.cleanup()
        for process in (daemon, sim):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (daemon, sim):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        if not args.keep:
            for path in sorted(workdir.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            workdir.rmdir()
        else:
            print(f"kept {workdir}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--receipt-delay", type=float, default=0.1)
    parser.add_argument("--callbacks", action="store_true")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    try:
        import uvloop

        uvloop.run(run(parser.parse_args()))
    except ImportError:
        asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
