"""A pool of real binds to the simulator: submits spread over the binds, and a carrier-wide pace
(`total_throughput`) holds however many binds there are."""

from __future__ import annotations

import asyncio

import pytest

from carriers.smpp.client import SmppClient
from carriers.smpp.pdus import SubmitSm
from carriers.smpp.pool import BindPool
from tests.carriers.conftest import bind_config


def a_submit(n: int) -> SubmitSm:
    return SubmitSm(source_addr="15017122661", destination_addr=f"1415555{n:04d}",
                    short_message=b"paced")  # fmt: skip


async def run_pool(sim, total_throughput: float | None, count: int) -> list[float]:
    """Submit `count` messages through three binds; the simulator's arrival times, in order."""
    clients = [
        SmppClient(bind_config(sim.port), on_deliver=lambda pdu: asyncio.sleep(0)) for _ in "abc"
    ]
    pool = BindPool(clients, total_throughput=total_throughput)
    running = asyncio.create_task(pool.run())
    try:
        await asyncio.wait_for(sim.wait_for(lambda: sim.stats.binds == 3), 5)
        results = await asyncio.wait_for(
            asyncio.gather(*(pool.submit(a_submit(n)) for n in range(count))), 10
        )
        assert all(r.ok for r in results)
    finally:
        await pool.close(timeout=2.0)
        await asyncio.wait_for(running, 5)
    return sorted(s.received_at for s in sim.stats.submitted)


async def test_the_carrier_wide_pace_spaces_submits_over_all_binds(sim):
    arrivals = await run_pool(sim, total_throughput=40.0, count=9)
    # Nine submits at 40/s over three binds: the ninth no sooner than 8/40 s after the first,
    # whichever binds carried them (only the lower bound: a slow machine spaces them more).
    assert arrivals[-1] - arrivals[0] >= 8 / 40 - 0.01
    assert len({s.message_id for s in sim.stats.submitted}) == 9


async def test_no_total_throughput_means_no_carrier_wide_pace(sim):
    pool = BindPool([SmppClient(bind_config(sim.port), on_deliver=lambda pdu: asyncio.sleep(0))])
    assert pool.pace.limit is None
    with pytest.raises(ValueError, match="throughput must be positive"):
        BindPool(pool.transmitters, total_throughput=-1)
