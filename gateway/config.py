"""The daemon's configuration: a TOML file read with `tomllib`, checked before anything starts.

Every section is a frozen dataclass; `load_config` walks the file against those dataclasses and
reports the first problem by its dotted key ("carriers.sim.port: expected an integer, got 'x'"),
so an operator never meets a KeyError or a half-started daemon. Unknown keys are errors too:
a misspelt `throughput` silently ignored would be an outage found at peak traffic.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from carriers.smpp.message_ids import RECEIPT_ID_FORMATS
from carriers.smpp.times import TIME_FORMATS
from gateway.engine.policy import RECEIPT_WINDOW_DEFAULT, UNCERTAIN_POLICIES, CarrierPolicy
from gateway.ids import ACCOUNT, is_sid
from gateway.queue_cap import QueueCap
from gateway.validity import MAX_VALIDITY_PERIOD, Validity
from routing.addressing import AS_ANALYSED, Addressing
from routing.plan import MAX_CONCAT_PARTS, LongMessages
from routing.text import LONG_MESSAGE_MODES


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and what was wrong."""


@dataclass(frozen=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 65536


@dataclass(frozen=True)
class StoreConfig:
    path: str = "var/smsgw.db"
    # process: the SQLite writer runs in a child process, on its own core (store.writer_process);
    # thread: in this process, sharing the interpreter lock with the event loop.
    writer: str = "process"


@dataclass(frozen=True)
class LogConfig:
    format: str = "auto"  # auto (console on a terminal, JSON otherwise) | json | console
    level: str = "info"


@dataclass(frozen=True)
class RoutingConfig:
    default_region: str = "US"


@dataclass(frozen=True)
class InboundConfig:
    """Who owns inbound (MO) messages, until the API manages numbers: `numbers` maps the number
    a message was sent to (E.164 or a short code) to an account SID; `default_account` takes the
    rest ("": nobody, and with [demo] enabled the demo account)."""

    default_account: str = ""
    numbers: dict[str, str] = field(default_factory=dict)
    reassembly_timeout: float = 3600.0  # seconds to wait for the missing parts of a long MO


@dataclass(frozen=True)
class DeliveryConfig:
    lease_seconds: float = 120.0
    sweep_interval: float = 30.0  # seconds between housekeeping passes (gateway/engine/sweeper.py)
    # A message's ValidityPeriod when the request gives none (seconds, 1-36000 as Twilio's), and
    # per account (AC… = seconds): not submitted by then, it fails with 30036.
    validity_period: int = MAX_VALIDITY_PERIOD
    validity_by_account: dict[str, int] = field(default_factory=dict)
    # The per-account queue cap (gateway/queue_cap.py): unsent messages beyond which new ones get
    # 429 / 30001; 0: no cap. Per account (AC… = count) in [delivery.max_unsent_by_account].
    max_unsent: int = 0
    max_unsent_by_account: dict[str, int] = field(default_factory=dict)
    batch: int = 256
    stop_timeout: float = 10.0
    # The carrier outcome policy's defaults (gateway.engine.policy.CarrierPolicy); each may be
    # overridden under [carriers.NAME]. Durations in seconds.
    max_attempts: int = 10
    retry_base: float = 2.0
    retry_max: float = 300.0
    throttle_base: float = 1.0
    throttle_max: float = 10.0
    receipt_window: float = RECEIPT_WINDOW_DEFAULT  # seconds (72 h)
    uncertain_submits: str = "resend"  # a submit unanswered in time: resend | wait (never resent)
    uncertain_wait: float = 60.0  # with wait: seconds after response_timeout to await its answer


@dataclass(frozen=True)
class WebhookConfig:
    timeout: float = 10.0
    max_attempts: int = 8
    retry_base: float = 1.0
    retry_max: float = 600.0
    concurrency: int = 64


@dataclass(frozen=True)
class SimulatorConfig:
    """The built-in SMSC simulator, started inside the daemon for demos and tests."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = "smsgw"
    password: str = "secret"
    receipt_delay: float = 0.2
    # Receipts and MO not yet acknowledged, kept across restarts as a real SMSC keeps them
    # ("": in memory, lost with the process).
    owed_path: str = ""


@dataclass(frozen=True)
class CarrierConfig:
    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    # The ESME address the bind announces (SMPP 3.4 §4.1.1): some carriers route MO by it.
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""
    interface_version: int = 0x34  # what bind_* announces; 0x33 for an SMSC that wants 3.3
    # TON/NPI of submitted addresses in place of number analysis' (routing/addressing.py); unset:
    # as analysed (international 1/1, short code 3/0, alphanumeric 5/0).
    source_addr_ton: int | None = None
    source_addr_npi: int | None = None
    dest_addr_ton: int | None = None
    dest_addr_npi: int | None = None
    # Long messages (routing/text.py): udh (8-bit reference) | udh16 | sar | payload; at most
    # max_parts segments (0: 255); GSM-7 sent as data_coding 0 (SMSC default) or 1 (IA5).
    long_messages: str = "udh"
    max_parts: int = 0
    default_data_coding: int = 0
    bind_type: str = "transceiver"
    binds: int = 1  # binds of bind_type, each with its own window and throughput
    receiver_binds: int = 0  # with bind_type = "transmitter": receiver binds for receipts
    window: int = 10
    throughput: float = 0.0  # messages per second per bind; 0 means unlimited
    total_throughput: float = 0.0  # messages per second over all binds; 0 means unlimited
    enquire_link_interval: float = 30.0
    response_timeout: float = 30.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    bind_refused_backoff: float = 60.0
    builtin_simulator: bool = False  # connect to the embedded simulator, whatever port it got
    # TLS to the SMSC (gateway/tls.py): verified against tls_ca_file (else the system's CAs).
    tls: bool = False
    tls_ca_file: str = ""
    tls_cert_file: str = ""  # a client certificate, for carriers that ask for one
    tls_key_file: str = ""  # its key (if not in tls_cert_file)
    tls_server_name: str = ""  # the name the SMSC's certificate must carry; "": host
    tls_verify: bool = True  # false: test SMSCs only (a warning is logged)
    # How receipts write the id the submit_sm_resp gave (carriers/smpp/message_ids.py).
    receipt_id_format: str = "auto"
    # query_sm (gateway/engine/queries.py): a part still without its receipt query_after seconds
    # after its submit is asked about, and again every query_interval; 0: never asked.
    query_after: float = 0.0
    query_interval: float = 600.0
    # How submit_sm writes a message's validity: relative (counted from its arrival at the SMSC),
    # absolute (UTC) or none (the SMSC's own default).
    validity_format: str = "relative"
    # Overrides of the [delivery] policy defaults for this carrier; None: use [delivery]'s.
    max_attempts: int | None = None
    retry_base: float | None = None
    retry_max: float | None = None
    throttle_base: float | None = None
    throttle_max: float | None = None
    receipt_window: float | None = None
    uncertain_submits: str | None = None
    uncertain_wait: float | None = None


@dataclass(frozen=True)
class DemoConfig:
    """First-run conveniences: create an account and print how to use it."""

    enabled: bool = False
    account_name: str = "demo"


@dataclass(frozen=True)
class Config:
    http: HttpConfig = field(default_factory=HttpConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    log: LogConfig = field(default_factory=LogConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    webhooks: WebhookConfig = field(default_factory=WebhookConfig)
    simulator: SimulatorConfig = field(default_factory=SimulatorConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    inbound: InboundConfig = field(default_factory=InboundConfig)
    carriers: dict[str, CarrierConfig] = field(default_factory=dict)
    base_dir: Path = Path(".")

    def validity(self) -> Validity:
        return Validity(self.delivery.validity_period, dict(self.delivery.validity_by_account))

    def queue_cap(self) -> QueueCap:
        return QueueCap(self.delivery.max_unsent, dict(self.delivery.max_unsent_by_account))

    def policy_for(self, carrier: str) -> CarrierPolicy:
        """The outcome policy of `carrier`: its own keys where set, [delivery]'s otherwise."""
        try:
            own = self.carriers[carrier]
        except KeyError:
            known = ", ".join(sorted(self.carriers)) or "none"
            raise ConfigError(
                f"carriers.{carrier}: no such carrier (configured: {known})"
            ) from None
        return CarrierPolicy(**_policy_values(self.delivery, own))

    def addressing(self) -> dict[str, Addressing]:
        """The carriers whose submits override analysed TON/NPI values, with their overrides."""
        overrides = {
            name: Addressing(
                carrier.source_addr_ton,
                carrier.source_addr_npi,
                carrier.dest_addr_ton,
                carrier.dest_addr_npi,
            )
            for name, carrier in self.carriers.items()
        }
        return {name: a for name, a in overrides.items() if a != AS_ANALYSED}

    def long_messages(self) -> dict[str, LongMessages]:
        """How each carrier takes long messages (routing decides the split with it)."""
        return {
            name: LongMessages(carrier.long_messages, carrier.max_parts)
            for name, carrier in self.carriers.items()
        }

    def resolve(self, path: str) -> Path:
        """A path from the file, taken relative to the directory the daemon was started in."""
        candidate = Path(path)
        return candidate if candidate.is_absolute() else self.base_dir / candidate


_CHOICES = {
    "store.writer": ("process", "thread"),
    "log.format": ("auto", "json", "console"),
    "log.level": ("debug", "info", "warning", "error"),
    "bind_type": ("transmitter", "receiver", "transceiver"),
    "receipt_id_format": RECEIPT_ID_FORMATS,
    "long_messages": LONG_MESSAGE_MODES,
    "default_data_coding": (0, 1),
    "uncertain_submits": UNCERTAIN_POLICIES,
    "validity_format": TIME_FORMATS,
}

# C-Octet String maxima of bind_* fields (SMPP 3.4 section 4.1), NUL terminator excluded.
_SMPP_LENGTHS = {"system_id": 15, "password": 8, "system_type": 12, "address_range": 40}

# Integer keys sent as one octet on the wire.
_OCTET_KEYS = (
    "addr_ton",
    "addr_npi",
    "interface_version",
    "source_addr_ton",
    "source_addr_npi",
    "dest_addr_ton",
    "dest_addr_npi",
)

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}

#: The CarrierPolicy fields, set in [delivery] and overridable per carrier.
_POLICY_KEYS = tuple(f.name for f in dataclasses.fields(CarrierPolicy))


def _policy_values(delivery: DeliveryConfig, carrier: CarrierConfig) -> dict[str, typing.Any]:
    values = {}
    for key in _POLICY_KEYS:
        own = getattr(carrier, key)
        values[key] = own if own is not None else getattr(delivery, key)
    return values


def _check_policy(prefix: str, values: dict[str, typing.Any], own: set[str]) -> None:
    """Check one effective policy; errors name the key, and say where a value came from."""

    def where(key: str) -> str:
        return f"{prefix}.{key}" if key in own else f"delivery.{key}"

    if values["max_attempts"] < 1:
        key = where("max_attempts")
        raise ConfigError(f"{key}: expected at least 1, got {values['max_attempts']}")
    for base, ceiling in (("retry_base", "retry_max"), ("throttle_base", "throttle_max")):
        low, high = values[base], values[ceiling]
        if not 0 < low <= high:
            key = where(base) if base in own or ceiling not in own else where(ceiling)
            raise ConfigError(
                f"{key}: need 0 < {base} <= {ceiling}, got {low} ({where(base)}) and "
                f"{high} ({where(ceiling)})"
            )
    if values["receipt_window"] <= 0:
        key, value = where("receipt_window"), values["receipt_window"]
        raise ConfigError(f"{key}: expected a positive number of seconds, got {value}")
    if values["uncertain_wait"] <= 0:
        key, value = where("uncertain_wait"), values["uncertain_wait"]
        raise ConfigError(f"{key}: expected a positive number of seconds, got {value}")


def _check_scalar(key: str, kind: type, value: object) -> object:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{key}: expected {_TYPE_NAMES[kind]}, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{key}: expected {_TYPE_NAMES[kind]}, got {value!r}")
    return value


def _optional_of(hint: typing.Any) -> typing.Any:
    """`X` for an `X | None` field (an optional key: TOML has no null, so a value is an X)."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _build(cls: type, data: object, prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix}: expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.name != "base_dir"}
    for key in data:
        if key not in known:
            where = f"{prefix}.{key}" if prefix else key
            raise ConfigError(f"{where}: unknown key (known: {', '.join(sorted(known))})")
    values = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        hint = _optional_of(hints[name])
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, key)
        elif typing.get_origin(hint) is dict:
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: expected a table, got {value!r}")
            item_cls = typing.get_args(hint)[1]
            if dataclasses.is_dataclass(item_cls):
                values[name] = {k: _build(item_cls, v, f"{key}.{k}") for k, v in value.items()}
            else:
                values[name] = {
                    k: _check_scalar(f"{key}.{k}", item_cls, v) for k, v in value.items()
                }
        else:
            values[name] = _check_scalar(key, hint, value)
            choices = _CHOICES.get(key) or _CHOICES.get(name)
            if choices and value not in choices:
                raise ConfigError(
                    f"{key}: expected one of {', '.join(map(str, choices))}, got {value!r}"
                )
    return cls(**values)


def _validate(config: Config) -> None:
    for key, port in (("http.port", config.http.port), ("simulator.port", config.simulator.port)):
        if not 0 <= port < 65536:  # 0: any free port (tests); the daemon logs the real one
            raise ConfigError(f"{key}: expected 0-65535, got {port}")
    if not config.carriers:
        raise ConfigError("carriers: at least one carrier is required ([carriers.NAME])")
    if config.inbound.reassembly_timeout <= 0:
        raise ConfigError(
            "inbound.reassembly_timeout: expected a positive number of seconds, got "
            f"{config.inbound.reassembly_timeout}"
        )
    owners = {"inbound.default_account": config.inbound.default_account} | {
        f"inbound.numbers.{number}": sid for number, sid in config.inbound.numbers.items()
    }
    for key, sid in owners.items():
        if sid and not is_sid(sid, ACCOUNT):
            raise ConfigError(f"{key}: expected an account SID (AC + 32 hex digits), got {sid!r}")
    if config.delivery.sweep_interval <= 0:
        raise ConfigError(
            "delivery.sweep_interval: expected a positive number of seconds, got "
            f"{config.delivery.sweep_interval}"
        )
    validities = {"delivery.validity_period": config.delivery.validity_period} | {
        f"delivery.validity_by_account.{sid}": seconds
        for sid, seconds in config.delivery.validity_by_account.items()
    }
    for key, seconds in validities.items():
        if not 1 <= seconds <= MAX_VALIDITY_PERIOD:
            raise ConfigError(f"{key}: expected 1-{MAX_VALIDITY_PERIOD} seconds, got {seconds}")
    for table in ("validity_by_account", "max_unsent_by_account"):
        for sid in getattr(config.delivery, table):
            if not is_sid(sid, ACCOUNT):
                raise ConfigError(
                    f"delivery.{table}.{sid}: expected an account SID (AC + 32 hex digits)"
                )
    caps = {"delivery.max_unsent": config.delivery.max_unsent} | {
        f"delivery.max_unsent_by_account.{sid}": cap
        for sid, cap in config.delivery.max_unsent_by_account.items()
    }
    for key, cap in caps.items():
        if cap < 0:
            raise ConfigError(f"{key}: expected a count >= 0 (0: no cap), got {cap}")
    delivery = {key: getattr(config.delivery, key) for key in _POLICY_KEYS}
    _check_policy("delivery", delivery, own=set(_POLICY_KEYS))
    for name, carrier in config.carriers.items():
        prefix = f"carriers.{name}"
        own = {key for key in _POLICY_KEYS if getattr(carrier, key) is not None}
        policy = _policy_values(config.delivery, carrier)
        _check_policy(prefix, policy, own)
        waited = carrier.response_timeout + policy["uncertain_wait"]
        if policy["uncertain_submits"] == "wait" and waited >= config.delivery.lease_seconds:
            raise ConfigError(
                f"{prefix}: response_timeout + uncertain_wait ({waited:g} s) must be shorter "
                f"than delivery.lease_seconds ({config.delivery.lease_seconds:g} s): a message "
                "whose lease runs out while its answer is awaited would be sent again"
            )
        if carrier.query_after < 0:
            raise ConfigError(
                f"{prefix}.query_after: expected seconds >= 0 (0: never), got {carrier.query_after}"
            )
        if carrier.query_interval <= 0:
            raise ConfigError(
                f"{prefix}.query_interval: expected a positive number of seconds, got "
                f"{carrier.query_interval}"
            )
        if carrier.builtin_simulator and not config.simulator.enabled:
            raise ConfigError(f"{prefix}.builtin_simulator: needs [simulator] enabled = true")
        if not carrier.builtin_simulator and not 0 < carrier.port < 65536:
            raise ConfigError(f"{prefix}.port: expected 1-65535, got {carrier.port}")
        if not carrier.system_id and not carrier.builtin_simulator:
            raise ConfigError(f"{prefix}.system_id: required")
        if carrier.window < 1:
            raise ConfigError(f"{prefix}.window: expected at least 1, got {carrier.window}")
        for key in _OCTET_KEYS:
            if getattr(carrier, key) is not None and not 0 <= getattr(carrier, key) <= 255:
                raise ConfigError(
                    f"{prefix}.{key}: expected 0-255 (one octet), got {getattr(carrier, key)}"
                )
        if carrier.binds < 1:
            raise ConfigError(f"{prefix}.binds: expected at least 1, got {carrier.binds}")
        if not 0 <= carrier.max_parts <= MAX_CONCAT_PARTS:
            raise ConfigError(
                f"{prefix}.max_parts: expected 0 (up to {MAX_CONCAT_PARTS}) to "
                f"{MAX_CONCAT_PARTS}, got {carrier.max_parts}"
            )
        if carrier.bind_type == "receiver":
            raise ConfigError(
                f"{prefix}.bind_type: a receiver cannot submit; use transceiver, or transmitter "
                "with receiver_binds"
            )
        if carrier.receiver_binds < 0:
            raise ConfigError(
                f"{prefix}.receiver_binds: expected 0 or more, got {carrier.receiver_binds}"
            )
        if carrier.receiver_binds and carrier.bind_type != "transmitter":
            raise ConfigError(
                f'{prefix}.receiver_binds: needs bind_type = "transmitter" (a transceiver '
                "receives on its own)"
            )
        for key, limit in _SMPP_LENGTHS.items():
            value = getattr(carrier, key)
            if len(value.encode("ascii", errors="replace")) > limit:
                raise ConfigError(
                    f"{prefix}.{key}: SMPP 3.4 allows at most {limit} characters, got {len(value)}"
                )
        if not 0 < carrier.reconnect_min <= carrier.reconnect_max:
            raise ConfigError(
                f"{prefix}.reconnect_min: need 0 < reconnect_min <= reconnect_max, got "
                f"{carrier.reconnect_min} and {carrier.reconnect_max}"
            )
        for key in ("throughput", "total_throughput"):
            if getattr(carrier, key) < 0:
                raise ConfigError(f"{prefix}.{key}: expected >= 0, got {getattr(carrier, key)}")
        _check_tls(prefix, carrier)


_TLS_KEYS = ("tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name")


def _check_tls(prefix: str, carrier: CarrierConfig) -> None:
    if not carrier.tls:
        for key in (*_TLS_KEYS, "tls_verify"):
            if getattr(carrier, key) != getattr(_PLAIN_CARRIER, key):
                raise ConfigError(f"{prefix}.{key}: needs {prefix}.tls = true")
        return
    if carrier.tls_key_file and not carrier.tls_cert_file:
        raise ConfigError(f"{prefix}.tls_key_file: needs tls_cert_file (the certificate it signs)")
    if carrier.builtin_simulator:
        raise ConfigError(f"{prefix}.tls: the built-in simulator speaks plain TCP")


_PLAIN_CARRIER = CarrierConfig()


def parse_config(data: dict, base_dir: Path = Path(".")) -> Config:
    """Build and check a Config from already-parsed TOML data."""
    config = _build(Config, data, "")
    config = dataclasses.replace(config, base_dir=base_dir)
    _validate(config)
    return config


def load_config(path: str | Path) -> Config:
    """Read, parse and check the TOML file at `path`; raises ConfigError with the key at fault."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return parse_config(data, base_dir=Path.cwd())
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
