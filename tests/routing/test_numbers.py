import pytest

from routing.errors import InvalidDestination, InvalidSender, NoRoute
from routing.numbers import Ton, normalise_destination, normalise_sender, stored_address
from routing.plan import RouteTable, plan


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+14155552671", "+14155552671"),
        ("(415) 555-2671", "+14155552671"),  # national format, default region US
        ("+44 7911 123456", "+447911123456"),
        ("+4915112345678", "+4915112345678"),
        ("+919876543210", "+919876543210"),
    ],
)
def test_destination_is_normalised_to_e164(raw, e164):
    address = normalise_destination(raw, "US")
    assert address.display == e164
    assert address.digits == e164[1:]
    assert address.ton is Ton.INTERNATIONAL


@pytest.mark.parametrize("raw", ["+1555", "hello", "", "+15558675310", "++1415"])
def test_invalid_destination_is_21211(raw):
    with pytest.raises(InvalidDestination) as info:
        normalise_destination(raw, "US")
    assert info.value.code == 21211
    assert raw in info.value.message


def test_sender_kinds():
    assert normalise_sender("+15017122661", "US").kind == "e164"
    short = normalise_sender("12345", "US")
    assert (short.kind, short.ton) == ("short_code", Ton.NETWORK_SPECIFIC)
    alpha = normalise_sender("Acme Co", "US")
    assert (alpha.kind, alpha.ton, alpha.digits) == ("alphanumeric", Ton.ALPHANUMERIC, "Acme Co")


@pytest.mark.parametrize("raw", ["ThisIsTooLongForAnSMS", "+1999", "Acme`", "Ünïcødé"])
def test_invalid_sender_is_21212(raw):
    with pytest.raises(InvalidSender) as info:
        normalise_sender(raw, "US")
    assert info.value.code == 21212


def test_plan_picks_the_first_carrier_and_splits_the_body():
    route = plan(RouteTable(("sim", "backup")), to="+14155552671", from_="Acme", body="a" * 200)
    assert route.carrier == "sim"
    assert route.text.num_segments == 2
    assert route.destination.display == "+14155552671"


def test_plan_without_carriers_has_no_route():
    with pytest.raises(NoRoute):
        plan(RouteTable(()), to="+14155552671", from_="Acme", body="hi")


@pytest.mark.parametrize(
    "raw", ["+14155552671", "(415) 555-2671", "12345", "Acme Co", "+447911123456"]
)
def test_stored_form_rebuilds_the_same_address(raw):
    address = normalise_sender(raw, "US")
    assert stored_address(address.display) == address
