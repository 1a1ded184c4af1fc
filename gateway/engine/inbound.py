"""Inbound (MO) messages: whose they are, and how a PDU becomes a stored message.

Ownership comes from the config (`[inbound]`) until the API manages phone numbers: the number a
message was sent to names the account. A message nobody owns is acknowledged and logged whole
(`inbound.unrouted`) rather than refused: an SMSC answered with an error redelivers it for ever,
and the fix (a config line) is the operator's, not the carrier's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from carriers.smpp import constants as c
from carriers.smpp.inbound import InboundSm, e164_or_as_is
from carriers.smpp.text import decode_text
from gateway.ids import MESSAGE, new_ordered_sid
from store.commands import RecordInbound

# What the API's `encoding` shows for the data codings carriers use for text.
_ENCODINGS = {
    c.DATA_CODING_DEFAULT: "gsm7",
    c.DATA_CODING_IA5: "ascii",
    c.DATA_CODING_UCS2: "ucs2",
}


def encoding_name(data_coding: int) -> str:
    return _ENCODINGS.get(data_coding, f"data_coding_{data_coding:#04x}")


@dataclass(frozen=True, slots=True)
class InboundOwners:
    """The account of each of our numbers; `default` (may be None) owns every other one."""

    numbers: Mapping[str, str]
    default: str | None = None
    reassembly_seconds: float = 3600.0

    def owner_of(self, number: str) -> str | None:
        """`number` as the API shows it (`+E164` or a short code); a key written with or without
        the `+` matches."""
        bare = number.removeprefix("+")
        return (
            self.numbers.get(number)
            or self.numbers.get(bare)
            or self.numbers.get("+" + bare)
            or self.default
        )


def record_command(
    carrier: str, mo: InboundSm, account_sid: str, now: datetime, reassembly_seconds: float
) -> RecordInbound:
    """The store command for one inbound PDU (a fresh SID: used if it starts a message)."""
    concat = mo.concat
    return RecordInbound(
        sid=new_ordered_sid(MESSAGE),
        account_sid=account_sid,
        carrier=carrier,
        from_addr=e164_or_as_is(mo.source_addr, mo.source_ton),
        to_addr=e164_or_as_is(mo.destination_addr, mo.destination_ton),
        data_coding=mo.data_coding,
        payload=mo.payload,
        concat=None if concat is None else (concat.ref, concat.total, concat.seqnum),
        encoding=encoding_name(mo.data_coding),
        decode=decode_text,
        now=now,
        reassembly_seconds=reassembly_seconds,
    )
