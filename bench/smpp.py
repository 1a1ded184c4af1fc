"""Benchmark of the SMPP layer: codec speed, client round trips, simulator capacity.

    .venv/bin/python bench/smpp.py [--submits 20000] [--uvloop]

Client round trips are measured over one bind and over four (a BindPool, as a carrier lane uses),
over plain TCP and over TLS (the simulator with a certificate from a throwaway CA).

The simulator runs in a child process (``python -m carriers.sim``) so that client and server each
get a core, as they would in production. Receipts are off: this measures the submit path.
Runs in well under a minute on a 2-core box.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from carriers.smpp import constants as c  # noqa: E402
from carriers.smpp.client import BindConfig, SmppClient  # noqa: E402
from carriers.smpp.codec import FrameReader, decode, encode, encode_with_sequence  # noqa: E402
from carriers.smpp.pdus import BindTransceiver, DeliverSm, SubmitSm, Tlv  # noqa: E402
from carriers.smpp.pool import BindPool  # noqa: E402

SUBMIT = SubmitSm(
    source_addr="Acme",
    source_addr_ton=c.TON_ALPHANUMERIC,
    dest_addr_ton=c.TON_INTERNATIONAL,
    dest_addr_npi=c.NPI_ISDN,
    destination_addr="447700900123",
    registered_delivery=1,
    short_message=b"Your verification code is 123456. It expires in 10 minutes.",
)
RECEIPT = DeliverSm(
    source_addr="447700900123",
    destination_addr="Acme",
    esm_class=c.ESM_CLASS_SMSC_DELIVERY_RECEIPT,
    short_message=b"id:00deadbeef sub:001 dlvrd:001 submit date:2401011200 "
    b"done date:2401011200 stat:DELIVRD err:000 text:Your verification co",
    tlvs=(Tlv(c.RECEIPTED_MESSAGE_ID, b"00deadbeef\0"), Tlv(c.MESSAGE_STATE, b"\x02")),
)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f}/s"


def bench_codec(seconds: float = 1.5) -> None:
    def measure(fn, arg) -> float:
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(10_000):
                fn(arg)
            n += 10_000
        return n / elapsed

    frame = encode(RECEIPT)
    print(f"codec  submit_sm encode          {measure(encode, SUBMIT):>12,.0f}/s")
    print(f"codec  deliver_sm decode          {measure(decode, frame):>12,.0f}/s")


class Sim:
    """The simulator in a child process, without receipts (over TLS with a certificate)."""

    def __init__(self, tls_cert: str | None = None) -> None:
        tls = ["--tls-cert", tls_cert] if tls_cert else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "carriers.sim", "--port", "0", "--no-receipts", *tls],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        line = ""
        while "listening on" not in line:
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise RuntimeError("simulator exited before listening")
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


async def bench_client(port: int, window: int, submits: int, tls=None, binds: int = 1) -> float:
    """Round trips through `binds` binds of `window` each (one pool, as a carrier lane uses)."""

    async def ignore(pdu: DeliverSm) -> None:
        return None

    config = BindConfig(
        name="bench", host="127.0.0.1", port=port, system_id="smsgw", password="secret",
        window=window, ssl=tls,
    )  # fmt: skip
    client = BindPool([SmppClient(config, on_deliver=ignore) for _ in range(binds)])
    runner = asyncio.create_task(client.run())
    while not all(c.bound for c in client.clients):
        await client.wait_bound(timeout=10)
        await asyncio.sleep(0.01)

    async def worker(count: int) -> None:
        for _ in range(count):
            result = await client.submit(SUBMIT)
            assert result.ok, result

    start = time.perf_counter()
    workers = window * binds
    share, extra = divmod(submits, workers)
    await asyncio.gather(*(worker(share + (i < extra)) for i in range(workers)))
    elapsed = time.perf_counter() - start
    await client.close()
    await runner
    return elapsed


async def bench_raw(port: int, submits: int, depth: int = 512) -> float:
    """Pipelined pre-encoded submit_sm on a bare socket: what the simulator alone can take."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(encode(BindTransceiver(sequence_number=1, system_id="smsgw", password="secret")))
    frames = FrameReader()
    frames.feed(await reader.read(1024))
    assert decode(next(frames)).command_status == 0
    pdus = [encode_with_sequence(SUBMIT, i + 2) for i in range(depth)]
    start = time.perf_counter()
    sent = answered = 0
    while answered < submits:
        batch = min(depth - (sent - answered), submits - sent)
        if batch > 0:
            writer.write(b"".join(pdus[:batch]))
            sent += batch
        frames.feed(await reader.read(65536))
        answered += sum(1 for _ in frames)
    elapsed = time.perf_counter() - start
    writer.close()
    return elapsed


async def bench_network(submits: int) -> None:
    sim = Sim()
    try:
        for window in (1, 10, 64):
            elapsed = await bench_client(sim.port, window, submits)
            print(f"client submit round trips, window {window:<3} {rate(submits, elapsed)}"
                  f"   ({submits:,} in {elapsed:.2f}s)")  # fmt: skip
        for binds, window in ((4, 16), (4, 64)):
            elapsed = await bench_client(sim.port, window, submits, binds=binds)
            print(f"  over {binds} binds, window {window:<3}     {rate(submits, elapsed)}"
                  f"   ({submits:,} in {elapsed:.2f}s)")  # fmt: skip
        elapsed = await bench_raw(sim.port, submits)
        print(f"simulator alone, raw pipelined   {rate(submits, elapsed)}"
              f"   ({submits:,} in {elapsed:.2f}s)")  # fmt: skip
    finally:
        sim.stop()
    await bench_tls(submits)


async def bench_tls(submits: int) -> None:
    """The same round trips over TLS (a throwaway CA from trustme, a test dependency)."""
    try:
        import trustme
    except ImportError:
        print("client submit round trips over TLS: skipped (pip install trustme)")
        return
    ca = trustme.CA()
    with tempfile.TemporaryDirectory() as tmp:
        cert = Path(tmp) / "sim.pem"
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(cert))
        context = ssl.create_default_context()
        ca.configure_trust(context)
        sim = Sim(tls_cert=str(cert))
        try:
            for window in (10, 64):
                elapsed = await bench_client(sim.port, window, submits, tls=context)
                print(f"  over TLS, window {window:<3}          {rate(submits, elapsed)}"
                      f"   ({submits:,} in {elapsed:.2f}s)")  # fmt: skip
        finally:
            sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submits", type=int, default=20_000)
    parser.add_argument("--uvloop", action="store_true", help="run the client on uvloop")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    bench_codec()
    if args.uvloop:
        import uvloop

        uvloop.run(bench_network(args.submits))
    else:
        asyncio.run(bench_network(args.submits))


if __name__ == "__main__":
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    main()
