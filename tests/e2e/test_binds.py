"""Several binds to one carrier, and a transmitter + receiver pair, through the real daemon and an
external simulator: every bind comes up, submits spread over them, receipts match whichever bind
carries them."""

from __future__ import annotations

import asyncio

import pytest

from carriers.sim.server import Simulator, SimulatorConfig
from gateway.config import ConfigError
from tests.e2e.harness import external_carrier_config


async def deliver_all(gateway, count: int) -> None:
    sids = []
    for n in range(count):
        response = await gateway.send(To=f"+1415555{n:04d}", From="+15017122661", Body="binds")
        assert response.status_code == 201, response.text
        sids.append(response.json()["sid"])
    async with asyncio.timeout(15):
        for sid in sids:
            while (await gateway.fetch(sid))["status"] != "delivered":
                await asyncio.sleep(0.02)


async def test_three_transceivers_share_the_submits(start_gateway):
    async with Simulator(SimulatorConfig(receipt_delay=0.01)) as smsc:
        gateway = await start_gateway(
            simulator=False, carrier_port=smsc.port, window=2, extra="binds = 3"
        )
        await smsc.wait_for(lambda: smsc.stats.binds == 3)
        await deliver_all(gateway, 30)
        assert smsc.stats.binds == 3
        assert len({s.system_id for s in smsc.stats.submitted}) == 1
        per_bind = smsc.submits_by_connection()
        assert len(per_bind) == 3 and min(per_bind) > 0, per_bind


async def test_a_transmitter_and_receiver_pair_delivers(start_gateway):
    async with Simulator(SimulatorConfig(receipt_delay=0.01)) as smsc:
        gateway = await start_gateway(
            simulator=False,
            carrier_port=smsc.port,
            extra='bind_type = "transmitter"\nreceiver_binds = 1',
        )
        await deliver_all(gateway, 5)
        assert smsc.stats.binds == 2
        assert smsc.stats.receipts_acked == 5  # through the receiver: a transmitter cannot


def test_bind_counts_are_checked(tmp_path):
    def config_with(extra: str):
        return external_carrier_config(tmp_path, extra)

    with pytest.raises(ConfigError, match=r"carriers\.sim\.binds: expected at least 1"):
        config_with("binds = 0")
    with pytest.raises(ConfigError, match=r"carriers\.sim\.receiver_binds: needs bind_type"):
        config_with("receiver_binds = 1")
    with pytest.raises(ConfigError, match=r"carriers\.sim\.bind_type: a receiver cannot submit"):
        config_with('bind_type = "receiver"')


async def test_the_bind_announces_the_configured_esme_address(start_gateway):
    async with Simulator(SimulatorConfig()) as smsc:
        await start_gateway(
            simulator=False,
            carrier_port=smsc.port,
            extra='system_type = "VMA"\naddr_ton = 1\naddr_npi = 1\naddress_range = "^4477"\n'
            "interface_version = 0x33",
        )
        await smsc.wait_for(lambda: smsc.stats.binds == 1)
        [bind] = smsc.stats.bind_requests
        assert (bind.system_type, bind.addr_ton, bind.addr_npi, bind.address_range) == (
            "VMA", 1, 1, "^4477"
        )  # fmt: skip
        assert bind.interface_version == 0x33


def ton_npi(submit) -> tuple[int, int, int, int]:
    return (submit.source_addr_ton, submit.source_addr_npi, submit.dest_addr_ton,
            submit.dest_addr_npi)  # fmt: skip


async def test_submits_carry_the_analysed_ton_npi_unless_the_carrier_overrides_them(
    start_gateway,
):
    async with Simulator(SimulatorConfig(receipt_delay=0.01)) as smsc:
        analysed = await start_gateway(simulator=False, carrier_port=smsc.port)
        await deliver_all(analysed, 1)
        await analysed.send(To="+14155550100", From="Acme", Body="alphanumeric sender")
        await smsc.wait_for(lambda: len(smsc.stats.submitted) == 2)
        assert [ton_npi(s) for s in smsc.stats.submitted] == [(1, 1, 1, 1), (5, 0, 1, 1)]
    async with Simulator(SimulatorConfig(receipt_delay=0.01)) as smsc:
        overridden = await start_gateway(
            simulator=False,
            carrier_port=smsc.port,
            extra="source_addr_npi = 9\ndest_addr_ton = 0\ndest_addr_npi = 0",
        )
        await deliver_all(overridden, 1)
        [submit] = smsc.stats.submitted
        # Only what was set changes: the sender keeps its analysed TON, the digits stay as they are.
        assert ton_npi(submit) == (1, 9, 0, 0)
        assert (submit.source_addr, submit.destination_addr) == ("15017122661", "14155550000")


def test_esme_address_keys_are_checked(tmp_path):
    def config_with(extra: str):
        return external_carrier_config(tmp_path, extra)

    with pytest.raises(ConfigError, match=r"carriers\.sim\.addr_ton: expected 0-255"):
        config_with("addr_ton = 256")
    with pytest.raises(ConfigError, match=r"carriers\.sim\.dest_addr_npi: expected 0-255"):
        config_with("dest_addr_npi = -1")
    with pytest.raises(ConfigError, match=r"carriers\.sim\.interface_version: expected 0-255"):
        config_with("interface_version = 0x340")
    with pytest.raises(ConfigError, match=r"carriers\.sim\.source_addr_ton: expected an integer"):
        config_with('source_addr_ton = "international"')
    with pytest.raises(ConfigError, match=r"carriers\.sim\.address_range: SMPP 3.4 allows at most"):
        config_with(f'address_range = "{"9" * 41}"')


async def test_total_throughput_paces_the_carrier_over_all_its_binds(start_gateway):
    async with Simulator(SimulatorConfig(receipt_delay=0.01)) as smsc:
        gateway = await start_gateway(
            simulator=False, carrier_port=smsc.port, extra="binds = 2\ntotal_throughput = 20"
        )
        await smsc.wait_for(lambda: smsc.stats.binds == 2)
        await deliver_all(gateway, 6)
        arrivals = sorted(s.received_at for s in smsc.stats.submitted)
        assert arrivals[-1] - arrivals[0] >= 5 / 20 - 0.01  # six submits at 20/s: ≥ 0.25 s
        assert len(smsc.submits_by_connection()) == 2


def test_throughputs_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"carriers\.sim\.total_throughput: expected >= 0"):
        external_carrier_config(tmp_path, "total_throughput = -5")


async def test_a_body_longer_than_the_carrier_takes_is_refused_at_accept(start_gateway):
    gateway = await start_gateway(extra="max_parts = 1")
    ok = await gateway.send(To="+14155550100", From="+15017122661", Body="a" * 160)
    assert ok.status_code == 201
    refused = await gateway.send(To="+14155550100", From="+15017122661", Body="a" * 161)
    assert refused.status_code == 400
    assert refused.json()["code"] == 21617 and "at most 1" in refused.json()["message"]


def test_long_message_keys_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"carriers\.sim\.long_messages: expected one of udh"):
        external_carrier_config(tmp_path, 'long_messages = "concat"')
    with pytest.raises(ConfigError, match=r"carriers\.sim\.max_parts: expected 0"):
        external_carrier_config(tmp_path, "max_parts = 256")
    with pytest.raises(ConfigError, match=r"carriers\.sim\.default_data_coding: expected one of"):
        external_carrier_config(tmp_path, "default_data_coding = 3")
