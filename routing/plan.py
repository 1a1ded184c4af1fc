"""The routing decision for one message: which carrier, which addresses, which segments.

Today the route table is the simplest one that is still real: every destination goes to the one
default carrier. The decision is already a value (`Route`) built by a pure function, so a carrier
table with prefixes, number types and failover (a later issue) replaces `RouteTable.carrier_for`
without touching the API or the delivery engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from routing.addressing import AS_ANALYSED, Addressing
from routing.errors import NoRoute
from routing.numbers import Address, normalise_destination, normalise_sender
from routing.text import TextPlan, plan_text


@dataclass(frozen=True, slots=True)
class Route:
    """Everything the delivery engine needs to submit a message, decided before it is stored."""

    carrier: str
    source: Address
    destination: Address
    text: TextPlan


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Carriers in preference order; the first one that exists takes the traffic. `addressing`:
    the carriers that want other TON/NPI values than analysis gives (`routing.addressing`)."""

    carriers: tuple[str, ...]
    default_region: str = "US"
    addressing: Mapping[str, Addressing] = field(default_factory=dict)

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
    return Route(
        carrier=carrier,
        source=addressing.source(source),
        destination=addressing.destination(destination),
        text=plan_text(body),
    )
