"""The route table the configuration gives, and a routing decision as the store keeps it — one
place for the daemon's API (routing at accept) and the admin CLI (re-routing a dead letter to
another carrier on replay), so both plan exactly alike."""

from __future__ import annotations

from gateway.config import Config
from routing.plan import Route, RouteTable
from store.models import SmppAddress, StoredRoute


def route_table(config: Config, *, only: str | None = None) -> RouteTable:
    """Every configured carrier in preference order, or `only` that one (which must exist)."""
    carriers = tuple(config.carriers) if only is None else (only,)
    return RouteTable(
        carriers,
        config.routing.default_region,
        config.addressing(),
        config.long_messages(),
    )


def stored_route(route: Route) -> StoredRoute:
    """The routing decision as the store keeps it: delivery submits exactly this."""
    source, destination = route.source, route.destination
    return StoredRoute(
        SmppAddress(source.digits, int(source.ton), int(source.npi)),
        SmppAddress(destination.digits, int(destination.ton), int(destination.npi)),
        tuple(route.text.parts),
        route.long_messages,
    )
