from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config, parse_config
from gateway.engine.policy import CarrierPolicy

ROOT = Path(__file__).resolve().parents[2]


def test_example_configuration_loads():
    config = load_config(ROOT / "conf" / "smsgw.toml")
    assert config.http.port == 8080
    assert config.simulator.enabled
    assert config.carriers["sim"].builtin_simulator
    assert config.carriers["sim"].window == 10


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"carriers": {"sim": {"port": "x", "system_id": "a"}}},
            "carriers.sim.port: expected an integer, got 'x'",
        ),
        (
            {"carriers": {"sim": {"system_id": "a", "window": 0}}},
            "carriers.sim.window: expected at least 1",
        ),
        (
            {"carriers": {"sim": {"system_id": "a", "bind_type": "tx"}}},
            "carriers.sim.bind_type: expected one of transmitter, receiver, transceiver",
        ),
        ({"carriers": {"sim": {"system_id": "a", "thruput": 5}}}, "carriers.sim.thruput: unknown"),
        (
            {"carriers": {"sim": {"system_id": "a", "receipt_id_format": "decimal"}}},
            "carriers.sim.receipt_id_format: expected one of auto, dec, hex, as-is",
        ),
        (
            {"http": {"port": True}, "carriers": {"a": {"system_id": "a"}}},
            "http.port: expected an integer, got True",
        ),
        ({}, "carriers: at least one carrier is required"),
        (
            {"carriers": {"sim": {"system_id": "a", "password": "123456789"}}},
            "carriers.sim.password: SMPP 3.4 allows at most 8 characters, got 9",
        ),
        (
            {"carriers": {"sim": {"system_id": "a" * 16}}},
            "carriers.sim.system_id: SMPP 3.4 allows at most 15 characters",
        ),
        (
            {"carriers": {"sim": {"builtin_simulator": True}}},
            "carriers.sim.builtin_simulator: needs [simulator] enabled = true",
        ),
        (
            {"inbound": {"numbers": {"12345": "acme"}}, "carriers": {"a": {"system_id": "a"}}},
            "inbound.numbers.12345: expected an account SID (AC + 32 hex digits), got 'acme'",
        ),
        (
            {"inbound": {"numbers": {"12345": 7}}, "carriers": {"a": {"system_id": "a"}}},
            "inbound.numbers.12345: expected a string, got 7",
        ),
        (
            {
                "inbound": {"default_account": "SM" + "0" * 32},
                "carriers": {"a": {"system_id": "a"}},
            },
            "inbound.default_account: expected an account SID",
        ),
        (
            {"inbound": {"reassembly_timeout": 0}, "carriers": {"a": {"system_id": "a"}}},
            "inbound.reassembly_timeout: expected a positive number of seconds",
        ),
    ],
)
def test_errors_name_the_key(data, message):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert message in str(info.value)


def test_integer_accepted_where_a_number_is_expected():
    config = parse_config({"carriers": {"a": {"system_id": "a", "throughput": 5}}})
    assert config.carriers["a"].throughput == 5.0


def test_unreadable_and_invalid_toml_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[http\nport = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


# --- the carrier outcome policy: [delivery] defaults, [carriers.NAME] overrides ---------------


def test_policy_defaults_come_from_delivery():
    config = parse_config(
        {
            "delivery": {"max_attempts": 4, "retry_base": 1, "throttle_max": 5.0},
            "carriers": {"a": {"system_id": "a"}},
        }
    )
    assert config.policy_for("a") == CarrierPolicy(
        max_attempts=4, retry_base=1.0, retry_max=300.0, throttle_max=5.0
    )


def test_carrier_keys_override_delivery_key_by_key():
    config = parse_config(
        {
            "delivery": {"max_attempts": 4, "retry_max": 60.0},
            "carriers": {
                "acme": {
                    "system_id": "a",
                    "max_attempts": 2,
                    "retry_base": 0.5,
                    "throttle_base": 0.1,
                    "throttle_max": 2,
                    "receipt_window": 3600,
                },
                "other": {"system_id": "b"},
            },
        }
    )
    assert config.policy_for("acme") == CarrierPolicy(
        max_attempts=2,
        retry_base=0.5,
        retry_max=60.0,
        throttle_base=0.1,
        throttle_max=2.0,
        receipt_window=3600.0,
    )
    assert config.policy_for("other").max_attempts == 4
    assert config.policy_for("other").receipt_window == 72 * 3600


def test_policy_for_an_unknown_carrier_names_the_known_ones():
    config = parse_config({"carriers": {"a": {"system_id": "a"}}})
    with pytest.raises(ConfigError, match=r"carriers\.b: no such carrier \(configured: a\)"):
        config.policy_for("b")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"carriers": {"a": {"system_id": "a", "max_attempts": "3"}}},
            "carriers.a.max_attempts: expected an integer, got '3'",
        ),
        (
            {"carriers": {"a": {"system_id": "a", "max_attempts": 2.5}}},
            "carriers.a.max_attempts: expected an integer, got 2.5",
        ),
        (
            {"carriers": {"a": {"system_id": "a", "retry_base": True}}},
            "carriers.a.retry_base: expected a number, got True",
        ),
        (
            {"carriers": {"a": {"system_id": "a", "receipt_window": "72h"}}},
            "carriers.a.receipt_window: expected a number, got '72h'",
        ),
        (
            {"delivery": {"throttle_max": "x"}, "carriers": {"a": {"system_id": "a"}}},
            "delivery.throttle_max: expected a number, got 'x'",
        ),
        (
            {"carriers": {"a": {"system_id": "a", "max_attempts": 0}}},
            "carriers.a.max_attempts: expected at least 1, got 0",
        ),
        (
            {"delivery": {"max_attempts": 0}, "carriers": {"a": {"system_id": "a"}}},
            "delivery.max_attempts: expected at least 1, got 0",
        ),
        (
            {"carriers": {"a": {"system_id": "a", "retry_base": 500}}},
            "carriers.a.retry_base: need 0 < retry_base <= retry_max, got 500.0 "
            "(carriers.a.retry_base) and 300.0 (delivery.retry_max)",
        ),
        (
            {"carriers": {"a": {"system_id": "a", "throttle_max": 0.5}}},
            "carriers.a.throttle_max: need 0 < throttle_base <= throttle_max",
        ),
        (
            {"delivery": {"retry_base": 0}, "carriers": {"a": {"system_id": "a"}}},
            "delivery.retry_base: need 0 < retry_base <= retry_max",
        ),
        (
            {"carriers": {"a": {"system_id": "a", "receipt_window": -1}}},
            "carriers.a.receipt_window: expected a positive number of seconds, got -1",
        ),
    ],
)
def test_policy_key_errors_name_the_key(data, message):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert message in str(info.value)


def test_example_configuration_documents_every_policy_key():
    text = (ROOT / "conf" / "smsgw.toml").read_text()
    for key in ("max_attempts", "retry_base", "retry_max", "throttle_base", "throttle_max"):
        assert f"\n{key} = " in text and f"\n# {key} = " in text, key
    assert "\nreceipt_window = 259200" in text and "\n# receipt_window = " in text
    assert load_config(ROOT / "conf" / "smsgw.toml").policy_for("sim") == CarrierPolicy()


def test_inbound_owners_come_from_the_config_else_the_demo_account():
    from gateway.daemon import inbound_owners
    from store.models import Account

    owner, other = "AC" + "1" * 32, "AC" + "2" * 32
    config = parse_config(
        {"inbound": {"numbers": {"+15017122661": owner, "12345": owner}},
         "carriers": {"a": {"system_id": "a"}}}
    )  # fmt: skip
    demo = Account(sid=other, friendly_name="demo", auth_token="t", status="active",
                   date_created=None, date_updated=None)  # fmt: skip
    owners = inbound_owners(config, demo)
    assert owners.owner_of("+15017122661") == owners.owner_of("12345") == owner
    assert owners.owner_of("15017122661") == owner  # written with or without the +
    assert owners.owner_of("+447911123456") == other
    assert inbound_owners(config, None).owner_of("+447911123456") is None


def test_validity_defaults_per_account_and_their_errors():
    account = "AC" + "1" * 32
    config = parse_config(
        {
            "delivery": {"validity_period": 600, "validity_by_account": {account: 60}},
            "carriers": {"a": {"system_id": "a", "validity_format": "absolute"}},
        }
    )
    assert config.validity().for_account(account) == 60
    assert config.validity().for_account("AC" + "2" * 32) == 600
    assert config.carriers["a"].validity_format == "absolute"
    for data, message in [
        ({"delivery": {"validity_period": 0}}, "delivery.validity_period: expected 1-36000"),
        (
            {"delivery": {"validity_by_account": {account: 36001}}},
            f"delivery.validity_by_account.{account}: expected 1-36000",
        ),
        (
            {"delivery": {"validity_by_account": {"nobody": 60}}},
            "delivery.validity_by_account.nobody: expected an account SID",
        ),
        (
            {"carriers": {"a": {"system_id": "a", "validity_format": "soon"}}},
            "carriers.a.validity_format: expected one of relative, absolute, none",
        ),
        ({"delivery": {"sweep_interval": 0}}, "delivery.sweep_interval: expected a positive"),
    ]:
        data = {"carriers": {"a": {"system_id": "a"}}} | data
        with pytest.raises(ConfigError) as info:
            parse_config(data)
        assert message in str(info.value), (data, str(info.value))
