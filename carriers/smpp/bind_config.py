"""What one bind to an SMSC needs: address, credentials, window, timers and back-off limits.

Its own module because both the client and its per-connection protocol read it, and neither
should import the other to learn its shape.
"""

from __future__ import annotations

import ssl as ssl_module
from dataclasses import dataclass

from carriers.smpp.codec import encode
from carriers.smpp.constants import SMPP_VERSION_34
from carriers.smpp.errors import PduEncodeError
from carriers.smpp.pdus import BIND_REQUESTS, BindTransmitter

__all__ = ["BindConfig"]


@dataclass(frozen=True)
class BindConfig:
    """Everything one bind needs; the gateway builds it from its configuration file."""

    name: str  # the carrier/bind name used in logs and metrics
    host: str
    port: int
    system_id: str
    password: str
    bind_type: str = "transceiver"  # "transmitter" | "receiver" | "transceiver"
    system_type: str = ""
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""
    interface_version: int = SMPP_VERSION_34  # 0x33 for an SMSC that insists on 3.3
    window: int = 10
    throughput: float | None = None  # messages/s, fractional ok; None = unlimited
    enquire_link_interval: float = 30.0
    response_timeout: float = 30.0
    # After a submit_sm's response timeout, how long its answer is still awaited (it left the
    # window): 0 gives up at the timeout (SubmitUncertain); > 0 resolves the submit with the late
    # answer, or SubmitUncertain when this runs out or the link drops.
    late_response_window: float = 0.0
    connect_timeout: float = 10.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    bind_refused_backoff: float = 60.0  # do not hammer a carrier that refuses our credentials
    ssl: ssl_module.SSLContext | None = None  # TLS to the SMSC (or a stunnel in front of it)
    tls_server_name: str | None = None  # the name its certificate must carry; None: `host`

    def __post_init__(self) -> None:
        # Fail at configuration time with the field's name rather than at every connect.
        if self.bind_type not in BIND_REQUESTS:
            raise ValueError(
                f"bind_type {self.bind_type!r} for {self.name!r} must be one of "
                f"{sorted(BIND_REQUESTS)}"
            )
        try:
            encode(
                BindTransmitter(
                    system_id=self.system_id,
                    password=self.password,
                    system_type=self.system_type,
                    addr_ton=self.addr_ton,
                    addr_npi=self.addr_npi,
                    address_range=self.address_range,
                    interface_version=self.interface_version,
                )
            )
        except PduEncodeError as exc:
            raise ValueError(f"bind {self.name!r}: {exc}") from None
        if self.window < 1:
            raise ValueError(f"bind {self.name!r}: window must be at least 1, got {self.window}")
        if self.reconnect_min <= 0 or self.reconnect_max < self.reconnect_min:
            raise ValueError(
                f"bind {self.name!r}: need 0 < reconnect_min <= reconnect_max, got "
                f"{self.reconnect_min} and {self.reconnect_max}"
            )

    def __repr__(self) -> str:
        return (
            f"BindConfig(name={self.name!r}, host={self.host!r}, port={self.port}, "
            f"system_id={self.system_id!r}, password='***', bind_type={self.bind_type!r})"
        )
