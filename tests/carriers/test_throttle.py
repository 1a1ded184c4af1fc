"""The bind's pace: spacing to the configured rate, halving on throttling, recovering slowly."""

from __future__ import annotations

import asyncio

import pytest

from carriers.sim.server import Simulator, SimulatorConfig
from carriers.smpp import constants as c
from carriers.smpp.pdus import SubmitSm
from carriers.smpp.throttle import FLOOR, Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_throttled_limit_halves_once_per_settle_period_and_recovers_to_the_limit():
    clock = Clock()
    throttle = Throttle(40.0, clock=clock, settle=0.5, recover_every=1.0)
    assert throttle.throttled() and throttle.rate == 20.0
    assert not throttle.throttled() and throttle.rate == 20.0  # answers already in flight
    clock.now += 0.5
    assert throttle.throttled() and throttle.rate == 10.0
    assert throttle.reserve() == 0.0 and throttle.reserve() == pytest.approx(0.1)  # the new pace
    assert not throttle.accepted()  # not a second yet
    rates = []
    for _ in range(30):
        clock.now += 1.0
        throttle.accepted()
        rates.append(throttle.rate)
    assert rates[:3] == pytest.approx([11.0, 12.1, 13.31])
    assert rates[-1] == 40.0 and max(rates) == 40.0  # never above the configured limit


def test_unpaced_binds_slow_to_half_what_was_sent_and_return_to_unpaced():
    clock = Clock()
    throttle = Throttle(None, clock=clock)
    for _ in range(300):  # 300 submits in the last second
        clock.now += 1 / 300
        assert throttle.reserve() == 0.0
    assert throttle.throttled() and throttle.rate == 150.0
    while throttle.rate is not None:
        clock.now += 1.0
        assert throttle.accepted()
    assert throttle.rate is None  # back to unpaced at twice the throttled rate


def test_the_pace_never_falls_below_the_floor():
    clock = Clock()
    throttle = Throttle(2.0, clock=clock)
    for _ in range(10):
        clock.now += 1.0
        throttle.throttled()
    assert throttle.rate == FLOOR


def message(n: int) -> SubmitSm:
    return SubmitSm(source_addr="15017122661", destination_addr=f"1415555{n:04d}",
                    short_message=b"hi", registered_delivery=0)  # fmt: skip


async def test_a_bind_capped_by_its_carrier_settles_under_the_cap(start_client):
    """A carrier caps the account at 50 submits/s and answers ESME_RTHROTTLED past it; the
    bind, configured with no throughput at all, must slow down instead of hammering it (it used
    to keep its pace: 59 % of submits throttled). Each throttled message is tried again shortly,
    as the delivery engine does."""
    cap, count = 50, 150
    async with Simulator(SimulatorConfig(max_submit_rate=cap, send_receipts=False)) as smsc:
        r = await start_client(smsc.port, window=10)
        await r.client.wait_bound(timeout=5)

        async def deliver(n: int) -> None:
            while (await r.client.submit(message(n))).command_status == c.ESME_RTHROTTLED:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(asyncio.gather(*(deliver(n) for n in range(count))), 30)
        assert smsc.stats.submits - smsc.stats.throttled == count
        throttled_share = smsc.stats.throttled / smsc.stats.submits
        # measured: 40 of 190 (21 %), nearly all in the first second; 95 % without adapting
        assert throttled_share < 0.3, (smsc.stats.throttled, smsc.stats.submits)
