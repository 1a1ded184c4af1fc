"""TLS to a carrier's SMSC, from the carrier's configuration keys.

Verification is on by default, as for any other TLS client: the SMSC's certificate must chain to
`tls_ca_file` (or the system's trust store) and carry `tls_server_name` (or the host). A carrier
that wants a client certificate gets `tls_cert_file` / `tls_key_file`. `tls_verify = false` is for
a test SMSC only; it is logged as a warning at every start, because it lets anyone in the path
read and change the traffic.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import structlog

from gateway.config import CarrierConfig, ConfigError

log = structlog.get_logger("gateway.tls")


def client_context(name: str, carrier: CarrierConfig, base_dir: Path) -> ssl.SSLContext | None:
    """The SSLContext for `carrier`'s bind, or None without `tls = true`.

    Raises ConfigError naming the key when a file is missing or not what it should be.
    """
    if not carrier.tls:
        return None
    prefix = f"carriers.{name}"

    def path_of(key: str) -> Path:
        return base_dir / getattr(carrier, key)

    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if carrier.tls_ca_file:
        try:
            context.load_verify_locations(cafile=str(path_of("tls_ca_file")))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{prefix}.tls_ca_file: cannot load {path_of('tls_ca_file')} as PEM "
                f"certificates: {exc}"
            ) from None
    if carrier.tls_cert_file:
        try:
            context.load_cert_chain(
                str(path_of("tls_cert_file")),
                str(path_of("tls_key_file")) if carrier.tls_key_file else None,
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{prefix}.tls_cert_file: cannot load the client certificate "
                f"{path_of('tls_cert_file')} with its key: {exc}"
            ) from None
    if not carrier.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        log.warning(
            "tls.verify_disabled",
            carrier=name,
            host=carrier.host,
            risk="the SMSC is not authenticated: traffic can be read and changed in the path",
        )
    return context
