"""A submit_sm whose response times out is uncertain: the SMSC may have taken it. Per carrier,
resend it (a duplicate is possible, and recorded) or wait for its late answer and never resend.
Real parts: a SQLite store, an SMPP client, the simulator answering late (or never)."""

from __future__ import annotations

import pytest

from carriers.sim.rules import parse_rule
from carriers.sim.server import SimulatorConfig
from gateway.engine.policy import CarrierPolicy
from tests.gateway.lane_kit import lane_rig

RESPONSE_TIMEOUT = 0.3


def rig(tmp_path, policy: CarrierPolicy):
    rules = (parse_rule("*1111=late:1.0"), parse_rule("*2222=no-response"))
    return lane_rig(
        tmp_path,
        simulator=SimulatorConfig(receipt_delay=0.01, rules=rules),
        policy=policy,
        bind={"response_timeout": RESPONSE_TIMEOUT},
    )


RESEND = CarrierPolicy(max_attempts=3, retry_base=0.05, retry_max=0.1)
WAIT = CarrierPolicy(max_attempts=3, retry_base=0.05, retry_max=0.1, uncertain_submits="wait",
                     uncertain_wait=3.0)  # fmt: skip


async def test_waiting_takes_a_late_answer_and_sends_once(tmp_path) -> None:
    async with rig(tmp_path, WAIT) as r:
        sid = (await r.send("+14155551111")).sid
        message = await r.status(sid)
        assert message.status == "delivered"
        assert r.submits_to("+14155551111") == 1
        assert r.smsc.stats.answered_late == 1
        events = await r.store.message_events(sid)
        assert [e.to_status for e in events if e.to_status] == [
            "queued", "sending", "sent", "delivered"
        ]  # fmt: skip


async def test_waiting_with_no_answer_fails_without_resending(tmp_path) -> None:
    async with rig(tmp_path, WAIT) as r:
        sid = (await r.send("+14155552222")).sid
        message = await r.status(sid, timeout=15)
        assert message.status == "failed"
        assert message.error_code == 30008
        assert "not resent" in message.error_message
        assert r.submits_to("+14155552222") == 1
        events = await r.store.message_events(sid)
        assert events[-1].reason == "submit_uncertain"


async def test_resending_sends_again_and_says_a_duplicate_is_possible(tmp_path) -> None:
    async with rig(tmp_path, RESEND) as r:
        sid = (await r.send("+14155551111")).sid  # answered after the timeout: too late to count
        message = await r.status(sid)
        assert r.submits_to("+14155551111") >= 2
        events = await r.store.message_events(sid)
        retried = [e for e in events if e.to_status == "queued" and e.from_status == "sending"]
        assert retried and {e.reason for e in retried} == {"submit_uncertain"}, events
        assert message.status == "delivered" or "duplicate possible" in message.error_message
        assert message.status in ("delivered", "failed")


def test_the_wait_must_end_before_the_lease_does(tmp_path) -> None:
    from gateway.config import ConfigError, load_config

    path = tmp_path / "smsgw.toml"
    path.write_text(
        '[delivery]\nlease_seconds = 60\n[carriers.acme]\nsystem_id = "x"\n'
        'uncertain_submits = "wait"\nuncertain_wait = 40\nresponse_timeout = 30\n'
    )
    with pytest.raises(ConfigError, match=r"carriers\.acme: response_timeout \+ uncertain_wait"):
        load_config(path)
    path.write_text('[carriers.acme]\nsystem_id = "x"\nuncertain_submits = "maybe"\n')
    with pytest.raises(ConfigError, match=r"carriers\.acme\.uncertain_submits: expected one of"):
        load_config(path)
