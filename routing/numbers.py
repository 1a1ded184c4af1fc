"""Number analysis: turn what an application typed into what an SMSC expects.

`phonenumbers` (Google's libphonenumber metadata) does the real work: a destination must be a
valid number, normalised to E.164. A sender may also be a short code or an alphanumeric sender ID,
which carriers address with their own TON/NPI, so the result says which kind it is.
"""

from __future__ import annotations

import functools
import re
from enum import IntEnum

import msgspec
import phonenumbers

from routing import e164
from routing.errors import InvalidDestination, InvalidSender
from routing.text import is_gsm7


class Ton(IntEnum):
    """SMPP 3.4 type_of_number (section 5.2.5)."""

    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL = 2
    NETWORK_SPECIFIC = 3
    ALPHANUMERIC = 5


class Npi(IntEnum):
    """SMPP 3.4 numbering_plan_indicator (section 5.2.6)."""

    UNKNOWN = 0
    ISDN = 1


class Address(msgspec.Struct, frozen=True):
    """A normalised address: `display` is what the API shows, `digits` what goes into a PDU."""

    display: str
    digits: str
    ton: Ton
    npi: Npi
    kind: str  # "e164" | "short_code" | "alphanumeric"


_SHORT_CODE = re.compile(r"^[0-9]{3,8}$")
_PHONE_LIKE = re.compile(r"^\+?[0-9 ()\-.]+$")
_ALPHANUMERIC = re.compile(r"^[A-Za-z0-9 .\-_&+!?]{1,11}$")


def _parse_e164(raw: str, default_region: str) -> phonenumbers.PhoneNumber | None:
    number = e164.plus_digits(raw)  # E.164 as written: the fast path (routing/e164.py: why)
    if number is None:
        try:
            number = phonenumbers.parse(raw, None if raw.startswith("+") else default_region)
        except phonenumbers.NumberParseException:
            return None
    return number if e164.is_valid(number) else None


def _e164_address(number: phonenumbers.PhoneNumber) -> Address:
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Address(e164, e164[1:], Ton.INTERNATIONAL, Npi.ISDN, "e164")


# Parsing with phonenumbers is the costliest step of accepting a message; the same senders and
# many recipients recur, and the result of a (raw, region) pair never changes.
@functools.lru_cache(maxsize=65536)
def normalise_destination(raw: str, default_region: str) -> Address:
    """The `To` of an outbound message: a valid phone number, or InvalidDestination (21211)."""
    text = raw.strip()
    number = _parse_e164(text, default_region)
    if number is None:
        raise InvalidDestination(f"The 'To' number {raw} is not a valid phone number.")
    return _e164_address(number)


@functools.lru_cache(maxsize=4096)
def normalise_sender(raw: str, default_region: str) -> Address:
    """The `From`: an E.164 number, a short code, or an alphanumeric ID (1–11 GSM-7 characters)."""
    text = raw.strip()
    if _SHORT_CODE.match(text):
        return Address(text, text, Ton.NETWORK_SPECIFIC, Npi.UNKNOWN, "short_code")
    if _PHONE_LIKE.match(text):
        number = _parse_e164(text, default_region)
        if number is None:
            raise InvalidSender(
                f"The 'From' number {raw} is not a valid phone number or short code."
            )
        return _e164_address(number)
    if _ALPHANUMERIC.match(text) and any(c.isalpha() for c in text) and is_gsm7(text):
        return Address(text, text, Ton.ALPHANUMERIC, Npi.UNKNOWN, "alphanumeric")
    raise InvalidSender(
        f"The 'From' value {raw!r} is not a valid phone number, short code or alphanumeric "
        "sender ID (1-11 letters, digits and spaces, at least one letter)."
    )


def stored_address(display: str) -> Address:
    """Rebuild the Address of a value this module already normalised (as the store keeps it).

    The delivery engine needs TON/NPI for every submit; classifying the stored form is exact
    and avoids parsing the number with phonenumbers a second time on the hot path.
    """
    if display.startswith("+") and display[1:].isdigit():
        return Address(display, display[1:], Ton.INTERNATIONAL, Npi.ISDN, "e164")
    if _SHORT_CODE.match(display):
        return Address(display, display, Ton.NETWORK_SPECIFIC, Npi.UNKNOWN, "short_code")
    return Address(display, display, Ton.ALPHANUMERIC, Npi.UNKNOWN, "alphanumeric")
