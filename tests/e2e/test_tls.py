"""SMPP over TLS, configured from the carrier's keys: a real TLS simulator on loopback, the daemon
bound to it, a message through the API to `delivered`; and the binds TLS must refuse."""

from __future__ import annotations

import asyncio
import ssl

import pytest
import trustme

from carriers.sim.server import Simulator, SimulatorConfig
from carriers.smpp.client import SmppClient
from gateway.config import CarrierConfig, ConfigError, load_config
from gateway.daemon import DaemonError, _bind_config, serve
from gateway.tls import client_context
from tests.e2e.harness import external_carrier_config, write_config


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, *names: str, client_ca: trustme.CA | None = None):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*(names or ("127.0.0.1",))).configure_cert(context)
    if client_ca is not None:
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def pem(tmp_path, name: str, blob: trustme.Blob) -> str:
    path = tmp_path / name
    blob.write_to_path(str(path))
    return str(path)


async def test_a_message_is_delivered_over_a_verified_tls_bind(tmp_path, ca, start_gateway):
    async with Simulator(SimulatorConfig(ssl=server_context(ca), receipt_delay=0.01)) as smsc:
        ca_file = pem(tmp_path, "ca.pem", ca.cert_pem)
        gateway = await start_gateway(
            simulator=False, carrier_port=smsc.port, extra=f'tls = true\ntls_ca_file = "{ca_file}"'
        )
        response = await gateway.send(To="+14155552671", From="+15017122661", Body="over TLS")
        assert response.status_code == 201, response.text
        sid = response.json()["sid"]
        async with asyncio.timeout(10):
            while (await gateway.fetch(sid))["status"] != "delivered":
                await asyncio.sleep(0.02)
        assert smsc.stats.receipts_acked == 1


async def bound_within(config, seconds: float) -> bool:
    async def ignore(pdu):
        return None

    client = SmppClient(config, on_deliver=ignore)
    task = asyncio.create_task(client.run())
    try:
        await client.wait_bound(timeout=seconds)
        return True
    except TimeoutError:
        return False
    finally:
        await client.close(1.0)
        await asyncio.wait_for(task, 5)  # run() returns once closed


def carrier(port: int, **tls) -> CarrierConfig:
    return CarrierConfig(
        host="127.0.0.1",
        port=port,
        system_id="smsgw",
        password="secret",
        reconnect_min=0.05,
        reconnect_max=0.2,
        tls=True,
        **tls,
    )


def bind_config(port: int, tmp_path, **tls):
    c = carrier(port, **tls)
    return _bind_config("tls", c, None, client_context("tls", c, tmp_path))


async def test_an_smsc_whose_certificate_is_not_trusted_is_never_bound(tmp_path, ca):
    async with Simulator(SimulatorConfig(ssl=server_context(ca))) as smsc:
        # No tls_ca_file: the system's CAs, which never signed the test CA's certificate.
        assert not await bound_within(bind_config(smsc.port, tmp_path), 0.5)
        assert smsc.stats.bind_attempts == 0


async def test_the_certificate_must_carry_the_server_name(tmp_path, ca):
    ca_file = pem(tmp_path, "ca.pem", ca.cert_pem)
    async with Simulator(SimulatorConfig(ssl=server_context(ca, "smsc.acme.test"))) as smsc:
        assert not await bound_within(bind_config(smsc.port, tmp_path, tls_ca_file=ca_file), 0.5)
        named = bind_config(
            smsc.port, tmp_path, tls_ca_file=ca_file, tls_server_name="smsc.acme.test"
        )
        assert await bound_within(named, 5)


async def test_verification_can_be_turned_off_for_a_test_smsc_with_a_warning(tmp_path, ca):
    import structlog
    from structlog.testing import capture_logs

    async with Simulator(SimulatorConfig(ssl=server_context(ca))) as smsc:
        saved = structlog.get_config()
        # Whatever level an earlier daemon in this process configured, see warnings here.
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(0))
        try:
            with capture_logs() as logs:
                config = bind_config(smsc.port, tmp_path, tls_verify=False)
        finally:
            structlog.configure(**saved)
        assert [e["event"] for e in logs] == ["tls.verify_disabled"]
        assert await bound_within(config, 5)


async def test_a_client_certificate_is_presented_when_the_smsc_asks(tmp_path, ca):
    ours = trustme.CA()
    leaf = ours.issue_cert("smsgw.client.test")
    ca_file = pem(tmp_path, "ca.pem", ca.cert_pem)
    cert_file = pem(tmp_path, "client.pem", leaf.cert_chain_pems[0])
    key_file = pem(tmp_path, "client.key", leaf.private_key_pem)
    smsc_tls = server_context(ca, client_ca=ours)
    async with Simulator(SimulatorConfig(ssl=smsc_tls)) as smsc:
        anonymous = bind_config(smsc.port, tmp_path, tls_ca_file=ca_file)
        assert not await bound_within(anonymous, 0.5)
        presented = bind_config(
            smsc.port, tmp_path, tls_ca_file=ca_file, tls_cert_file=cert_file,
            tls_key_file=key_file,
        )  # fmt: skip
        assert await bound_within(presented, 5)


def test_tls_keys_are_checked_at_start(tmp_path):
    def config_with(extra: str):
        return external_carrier_config(tmp_path, extra)

    with pytest.raises(ConfigError, match=r"carriers\.sim\.tls_ca_file: needs carriers\.sim\.tls"):
        config_with('tls_ca_file = "ca.pem"')
    with pytest.raises(ConfigError, match=r"carriers\.sim\.tls_key_file: needs tls_cert_file"):
        config_with('tls = true\ntls_key_file = "k.pem"')
    with pytest.raises(ConfigError, match=r"carriers\.sim\.tls_verify: expected true or false"):
        config_with('tls = true\ntls_verify = "no"')


async def test_a_ca_file_that_cannot_be_read_stops_the_start_naming_the_key(tmp_path):
    path = write_config(
        tmp_path, simulator=False, carrier_port=2775,
        extra=f'tls = true\ntls_ca_file = "{tmp_path / "missing.pem"}"',
    )  # fmt: skip
    with pytest.raises(DaemonError, match=r"carriers\.sim\.tls_ca_file: cannot load"):
        await serve(load_config(path), asyncio.Event(), banner=False)
    assert not (tmp_path / "smsgw.db").exists()  # refused before anything was opened
