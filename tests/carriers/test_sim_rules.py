"""Simulator outcome rules by destination pattern: parsed once, matched first-wins, and played
by a real simulator to a real client."""

from __future__ import annotations

import asyncio

import pytest

from carriers.sim.cli import build_parser
from carriers.sim.rules import DELIVERED, Outcome, outcome_for, parse_rule
from carriers.sim.server import Simulator, SimulatorConfig
from carriers.smpp import constants as c
from carriers.smpp.errors import SubmitUncertain
from carriers.smpp.pdus import SubmitSm
from carriers.smpp.receipts import parse_receipt


def test_rules_parse_and_the_first_match_wins():
    rules = [parse_rule("1415555*=undelivered"), parse_rule("14155550000=error:0x0B"),
             parse_rule("*9=no-receipt"), parse_rule("44*=delay:2.5")]  # fmt: skip
    assert outcome_for(rules, "14155550000").receipt == ("UNDELIV", "001")  # first match wins
    assert outcome_for(rules, "447911").receipt_delay == 2.5
    assert outcome_for(rules, "33699").receipt is None
    assert outcome_for(rules, "33600") is DELIVERED
    assert parse_rule("*=no-response").outcome == Outcome(respond=False, receipt=None)
    assert parse_rule("*=error:88").outcome.submit_status == c.ESME_RTHROTTLED
    assert parse_rule("*=late:1.5").outcome == Outcome(response_delay=1.5)


@pytest.mark.parametrize(
    ("text", "message"),
    [("1415555*", "expected PATTERN=OUTCOME"), ("*=lost", "unknown outcome 'lost'"),
     ("*=error:x", "needs a valid value"), ("*=delay:-1", "needs a valid value"),
     ("*=error:0", "needs a valid value"), ("*=late:0", "needs a valid value")],
)  # fmt: skip
def test_bad_rules_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_rule(text)


def test_the_cli_takes_repeated_rules_and_refuses_bad_ones(capsys):
    args = build_parser().parse_args(["--rule", "1*=expired", "--rule", "*=rejected"])
    assert [r.text for r in args.rule] == ["1*=expired", "*=rejected"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--rule", "*=maybe"])
    assert "unknown outcome 'maybe'" in capsys.readouterr().err


def submit(destination: str) -> SubmitSm:
    return SubmitSm(source_addr="Acme", destination_addr=destination, short_message=b"rule",
                    registered_delivery=1)  # fmt: skip


async def test_a_simulator_plays_the_rules(start_client):
    rules = tuple(parse_rule(r) for r in ("1*=expired", "2*=error:0x0B", "3*=no-receipt",
                                          "4*=no-response"))  # fmt: skip
    async with Simulator(SimulatorConfig(receipt_delay=0.01, rules=rules)) as sim:
        r = await start_client(sim.port, response_timeout=0.3)
        await r.client.wait_bound(timeout=5)
        expired = await r.client.submit(submit("1000"))
        refused = await r.client.submit(submit("2000"))
        silent = await r.client.submit(submit("3000"))
        with pytest.raises(SubmitUncertain):
            await r.client.submit(submit("4000"))
        delivered = await r.client.submit(submit("5000"))
        assert (expired.ok, refused.command_status, silent.ok, delivered.ok) == (
            True, c.ESME_RINVDSTADR, True, True
        )  # fmt: skip
        await sim.wait_for(lambda: len(r.received) == 2)
        await asyncio.sleep(0.05)  # no third receipt is coming
        stats = {parse_receipt(p).message_id: parse_receipt(p).stat for p in r.received}
        assert stats == {expired.message_id: "EXPIRED", delivered.message_id: "DELIVRD"}
        assert sim.stats.unanswered == 1
