"""The routing decision for one message: which carrier, which addresses, which segments.

Today the route table is the simplest one that is still real: every destination goes to the one
default carrier. The decision is already a value (`Route`) built by a pure function, so a carrier
table with prefixes, number types and failover (a later issue) replaces `RouteTable.carrier_for`
without touching the API or the delivery engine.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from routing.addressing import AS_ANALYSED, Addressing
from routing.errors import NoRoute, TooManyParts
from routing.numbers import Address, normalise_destination, normalise_sender
from routing.text import TextPlan, plan_text


class Route(msgspec.Struct, frozen=True):
    """Everything the delivery engine needs to submit a message, decided before it is stored."""

    carrier: str
    source: Address
    destination: Address
    text: TextPlan
    long_messages: str = "udh"  # how the carrier takes the parts (routing.text.LONG_MESSAGE_MODES)


class LongMessages(msgspec.Struct, frozen=True):
    """How one carrier takes long messages: `mode` (routing.text.LONG_MESSAGE_MODES) and at most
    `max_parts` segments (0: up to the 255 a concatenation header can number)."""

    mode: str = "udh"
    max_parts: int = 0


ANY_LENGTH = LongMessages()
MAX_CONCAT_PARTS = 255


class RouteTable(msgspec.Struct, frozen=True):
    """Carriers in preference order; the first one that exists takes the traffic. `addressing`:
    the carriers that want other TON/NPI values than analysis gives (`routing.addressing`)."""

    carriers: tuple[str, ...]
    default_region: str = "US"
    addressing: Mapping[str, Addressing] = msgspec.field(default_factory=dict)
    long_messages: Mapping[str, LongMessages] = msgspec.field(default_factory=dict)

    def carrier_for(self, destination: Address) -> str:
        if not self.carriers:
            raise NoRoute(f"No carrier is configured to reach {destination.display}.")
        return self.carriers[0]


def plan(table: RouteTable, *, to: str, from_: str, body: str) -> Route:
    """Normalise both addresses, choose the carrier and split the body (raises RoutingError)."""
    destination = normalise_destination(to, table.default_region)
    source = normalise_sender(from_, table.default_region)
    carrier = table.carrier_for(destination)
    addressing = table.addressing.get(carrier, AS_ANALYSED)
    rules = table.long_messages.get(carrier, ANY_LENGTH)
    text = plan_text(body, rules.mode)
    # Air segments: what the SMSC splits a payload into too (counted as for "udh").
    segments = text.num_segments if rules.mode != "payload" else plan_text(body).num_segments
    limit = rules.max_parts or MAX_CONCAT_PARTS
    if segments > limit:
        raise TooManyParts(
            f"The message body needs {segments} segments; carrier {carrier} takes at most {limit}."
        )
    return Route(
        carrier=carrier,
        source=addressing.source(source),
        destination=addressing.destination(destination),
        text=text,
        long_messages=rules.mode,
    )
