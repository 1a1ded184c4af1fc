"""Per-carrier TON/NPI overrides: applied when the route is decided, only to what is set."""

from __future__ import annotations

from routing.addressing import AS_ANALYSED, Addressing
from routing.numbers import Npi, Ton
from routing.plan import RouteTable, plan


def route(table: RouteTable, from_: str = "+15017122661"):
    return plan(table, to="+14155550100", from_=from_, body="hi")


def test_without_an_override_the_analysed_values_go_out():
    r = route(RouteTable(("acme",), addressing={"other": Addressing(dest_ton=0)}))
    assert (r.source.ton, r.source.npi) == (Ton.INTERNATIONAL, Npi.ISDN)
    assert (r.destination.ton, r.destination.npi) == (Ton.INTERNATIONAL, Npi.ISDN)
    assert route(RouteTable(("acme",)), from_="Acme").source.ton == Ton.ALPHANUMERIC


def test_only_the_keys_set_change_and_only_for_their_carrier():
    table = RouteTable(("acme",), addressing={"acme": Addressing(source_npi=0, dest_ton=2)})
    r = route(table)
    assert (r.source.ton, r.source.npi) == (Ton.INTERNATIONAL, Npi.UNKNOWN)
    assert (r.destination.ton, r.destination.npi) == (Ton.NATIONAL, Npi.ISDN)
    assert (r.source.digits, r.destination.digits) == ("15017122661", "14155550100")
    alphanumeric = route(table, from_="Acme").source
    assert (alphanumeric.ton, alphanumeric.npi) == (Ton.ALPHANUMERIC, Npi.UNKNOWN)


def test_values_smpp_names_beyond_what_analysis_produces_pass_through():
    # TON 4 (subscriber number), NPI 8 (national): not in our enums, valid on the wire.
    table = RouteTable(("acme",), addressing={"acme": Addressing(dest_ton=4, dest_npi=8)})
    destination = route(table).destination
    assert (int(destination.ton), int(destination.npi)) == (4, 8)


def test_the_empty_override_is_the_identity():
    r = route(RouteTable(("acme",)))
    assert AS_ANALYSED.source(r.source) is r.source
    assert AS_ANALYSED.destination(r.destination) is r.destination
