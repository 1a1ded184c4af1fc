"""A retry of a long message resends only the parts the SMSC has not accepted."""

from __future__ import annotations

from carriers.sim.server import SimulatorConfig
from carriers.smpp import constants as c
from gateway.engine.policy import CarrierPolicy
from tests.gateway.lane_kit import lane_rig


async def test_a_part_refused_once_is_sent_again_alone(tmp_path) -> None:
    seen: list[int] = []

    def throttle_the_second_part_once(pdu) -> int:
        udh = pdu.esm_class & c.ESM_CLASS_UDHI  # the header: 05 00 03 ref total seq
        part = pdu.short_message[5] if udh else 1
        seen.append(part)
        return c.ESME_RTHROTTLED if part == 2 and seen.count(2) == 1 else c.ESME_ROK

    config = SimulatorConfig(receipt_delay=0.01, submit_status=throttle_the_second_part_once)
    policy = CarrierPolicy(throttle_base=0.05, throttle_max=0.1)
    async with lane_rig(tmp_path, simulator=config, policy=policy) as r:
        message = await r.send(body="x" * 400, segments=3)  # 153 + 153 + 94 septets
        final = await r.status(message.sid)
        assert final.status == "delivered"
        assert seen == [1, 2, 2, 3]  # part 1 is not submitted again
        events = await r.store.message_events(message.sid)
        assert [e.reason for e in events if e.to_status == "queued"] == ["accepted", "throttled"]
