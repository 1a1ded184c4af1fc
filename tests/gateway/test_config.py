from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config, parse_config

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
