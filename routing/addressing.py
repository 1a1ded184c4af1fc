"""Per-carrier overrides of the TON/NPI that number analysis chose (Kannel's source-addr-ton,
dest-addr-npi and friends).

Why: `routing.numbers` gives each address the TON/NPI SMPP 3.4 prescribes for its kind
(international 1/1, short code 3/0, alphanumeric 5/0), and most SMSCs take that. Some do not: one
wants every destination as TON 0 (unknown), another refuses alphanumeric senders unless NPI is 0
and short codes unless TON is 0. The override is applied when the route is decided, at accept, so
it is stored with the message like the rest of the route: changing it in the config changes new
messages, never one already queued or in flight.
"""

from __future__ import annotations

import msgspec

from routing.numbers import Address, Npi, Ton


class Addressing(msgspec.Struct, frozen=True):
    """What one carrier wants in place of the analysed values; None keeps the analysed one."""

    source_ton: int | None = None
    source_npi: int | None = None
    dest_ton: int | None = None
    dest_npi: int | None = None

    def source(self, address: Address) -> Address:
        return _override(address, self.source_ton, self.source_npi)

    def destination(self, address: Address) -> Address:
        return _override(address, self.dest_ton, self.dest_npi)


AS_ANALYSED = Addressing()


def _override(address: Address, ton: int | None, npi: int | None) -> Address:
    if ton is None and npi is None:
        return address
    return msgspec.structs.replace(
        address,
        ton=address.ton if ton is None else _member(Ton, ton),
        npi=address.npi if npi is None else _member(Npi, npi),
    )


def _member(kind: type[Ton] | type[Npi], value: int) -> int:
    """The enum member where SMPP names the value; the plain octet otherwise (the spec lists
    more TONs and NPIs than analysis produces, and carriers use them)."""
    try:
        return kind(value)
    except ValueError:
        return value
