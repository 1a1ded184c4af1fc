"""Benchmark: httpx.AsyncClient vs aiohttp.ClientSession vs our WebhookClient for webhooks.

Why this exists: the gateway POSTs a Twilio-style form-encoded status callback for
every message state change, so the webhook sender's per-request cost scales with
traffic.  This script picks the HTTP client by measurement rather than by taste.
WebhookClient (gateway/engine/http_client.py) is the lean keep-alive client written
for this one job; it is measured the same way, encoding the same form per request.

A raw asyncio.Protocol HTTP/1.1 keep-alive receiver runs in a separate process
(pinned to its own core when possible) on 127.0.0.1, port 0.  Under uvloop the
client process sends --count POSTs with --concurrency workers over a keep-alive
pool limited to --concurrency connections, and reports requests/s, p50/p99
latency and client-process CPU per request (seconds per 1,000 requests, and µs).  Loopback only.

    .venv/bin/python bench/webhook_clients.py [--count 20000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import multiprocessing as mp
import os
import time
from urllib.parse import urlencode

import aiohttp
import httpx
import uvloop

from gateway.engine.http_client import WebhookClient

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 0\r\n\r\n"
ROW = "{:<22}{:>9}{:>9}{:>9}{:>10}{:>11}{:>9}"
SIGNATURE = "Wm8XoTq2eTDRwzIpJH+1wVVdz6A="  # static: signing cost is identical for all


class Receiver(asyncio.Protocol):
    """Minimal HTTP/1.1 responder: parses Content-Length framing, answers 200."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            clen = 0
            for line in self.buf[:end].split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    clen = int(line[15:])
            total = end + 4 + clen
            if len(self.buf) < total:
                return
            self.buf = self.buf[total:]
            self.transport.write(RESPONSE)


def receiver_main(conn, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(
            Receiver, "127.0.0.1", 0, backlog=1024
        )
        conn.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    uvloop.run(serve())


def proc_cpu_seconds(pid: int) -> float | None:
    """utime+stime of another process (Linux /proc), to check the receiver isn't saturated."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def form(i: int) -> dict[str, str]:
    sid = f"SM{i:032x}"
    return {
        "AccountSid": "AC" + "0123456789abcdef" * 2,
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": "delivered",
        "SmsStatus": "delivered",
        "From": "+15005550006",
        "To": "+14155552671",
        "ApiVersion": "2010-04-01",
        "NumSegments": "1",
        "ErrorCode": "",
    }


async def drive(post, n: int, concurrency: int) -> list[float]:
    """Run n POSTs via `post(i)` with `concurrency` workers; return latencies (s)."""
    counter = itertools.count()
    lat: list[float] = []

    async def worker() -> None:
        while (i := next(counter)) < n:
            t0 = time.perf_counter()
            await post(i)
            lat.append(time.perf_counter() - t0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return lat


async def bench_httpx(url: str, n: int, c: int, warmup: int) -> tuple[list[float], float, float]:
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    headers = {"X-Twilio-Signature": SIGNATURE}
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:

        async def post(i: int) -> None:
            r = await client.post(url, data=form(i), headers=headers)
            if r.status_code != 200:
                raise RuntimeError(f"httpx: HTTP {r.status_code}")

        return await timed(post, n, c, warmup)


async def bench_aiohttp(url: str, n: int, c: int, warmup: int) -> tuple[list[float], float, float]:
    connector = aiohttp.TCPConnector(limit=c, limit_per_host=c)
    timeout = aiohttp.ClientTimeout(total=10.0)
    headers = {"X-Twilio-Signature": SIGNATURE}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def post(i: int) -> None:
            async with session.post(url, data=form(i), headers=headers) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"aiohttp: HTTP {r.status}")

        return await timed(post, n, c, warmup)


async def bench_webhookclient(
    url: str, n: int, c: int, warmup: int
) -> tuple[list[float], float, float]:
    headers = {"X-Twilio-Signature": SIGNATURE}
    async with WebhookClient(max_per_host=c, timeout=10.0) as client:

        async def post(i: int) -> None:
            r = await client.post_form(url, urlencode(form(i)).encode(), headers)
            if r.status != 200:
                raise RuntimeError(f"WebhookClient: HTTP {r.status}")

        return await timed(post, n, c, warmup)


async def timed(post, n: int, c: int, warmup: int) -> tuple[list[float], float, float]:
    await drive(post, warmup, c)  # open the pool, warm caches; not measured
    gc.collect()
    cpu0, t0 = time.process_time(), time.perf_counter()
    lat = await drive(post, n, c)
    return lat, time.perf_counter() - t0, time.process_time() - cpu0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    n, c = args.count, args.concurrency
    warmup = min(n, max(4 * c, 1000))
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    recv_cpu = cpus[-1] if len(cpus) >= 2 else None
    if recv_cpu is not None:
        os.sched_setaffinity(0, set(cpus[:-1]))
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=receiver_main, args=(child, recv_cpu), daemon=True)
    proc.start()
    try:
        if not parent.poll(15):
            raise SystemExit("receiver did not start")
        url = f"http://127.0.0.1:{parent.recv()}/status"
        pin = f"receiver pinned to cpu {recv_cpu}" if recv_cpu is not None else "unpinned"
        print(f"N={n} C={c} warmup={warmup} uvloop {uvloop.__version__}; {pin}")
        print(
            ROW.format("client", "req/s", "p50 ms", "p99 ms", "CPU s/1k", "CPU µs/req", "recv CPU")
        )
        results: dict[str, tuple[float, float]] = {}
        for name, fn in (
            (f"httpx {httpx.__version__}", bench_httpx),
            (f"aiohttp {aiohttp.__version__}", bench_aiohttp),
            ("WebhookClient", bench_webhookclient),
        ):
            r0, t0 = proc_cpu_seconds(proc.pid), time.perf_counter()

            async def run(fn=fn):
                async with asyncio.timeout(600):
                    return await fn(url, n, c, warmup)

            lat, wall, cpu = uvloop.run(run())
            r1, t1 = proc_cpu_seconds(proc.pid), time.perf_counter()
            lat.sort()
            rps, cpu_k = n / wall, cpu / n * 1000
            busy = f"{(r1 - r0) / (t1 - t0):.0%}" if r0 is not None and r1 is not None else "n/a"
            results[name] = (rps, cpu_k)
            p50, p99 = lat[len(lat) // 2] * 1e3, lat[int(0.99 * (len(lat) - 1))] * 1e3
            print(
                ROW.format(
                    name,
                    f"{rps:.0f}",
                    f"{p50:.2f}",
                    f"{p99:.2f}",
                    f"{cpu_k:.3f}",
                    f"{cpu_k * 1000:.0f}",
                    busy,
                )
            )
        # Decided on CPU per request: that is what scales with message volume.
        (a, (a_rps, a_cpu)), *others = sorted(results.items(), key=lambda kv: kv[1][1])
        versus = "; ".join(
            f"{b_cpu / a_cpu:.1f}x lower client CPU per request and {a_rps / b_rps:.1f}x the "
            f"req/s of {b.split()[0]} ({(b_cpu - a_cpu) * 1000:.0f} µs more per request)"
            for b, (b_rps, b_cpu) in others
        )
        print(f"verdict: use {a.split()[0]} at C={c} — {versus}")
    finally:
        proc.terminate()
        proc.join(5)
        if proc.is_alive():
            proc.kill()


if __name__ == "__main__":
    main()
