"""A fast path for the common case: a number already written in E.164 ("+" and digits only).

Why by hand: accepting a message parses and validates its `To` with `phonenumbers`, and under load
that was the costliest step of the API after the socket writes — `parse` ~35 µs (its general
machinery handles spaces, letters, extensions, IDD prefixes and national prefixes) and
`is_valid_number` ~50 µs (for a +44 number it runs the type checks of up to eleven number
descriptions twice: once to pick GB among GB/GG/IM/JE, once to validate). Applications nearly always
send E.164 already, and for that input both answers follow from the same metadata in a few
microseconds. Nothing here is a rule of our own: every decision is `phonenumbers`' own, taken
step for step from its code and its metadata (Google's libphonenumber), and a property test holds
both functions equal to `phonenumbers` over every region's numbers
(tests/routing/test_e164.py). Anything unusual is left to `phonenumbers` (`plus_digits` → None).
"""

from __future__ import annotations

import functools
import re

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber

_AS_WRITTEN = re.compile(r"\+[1-9][0-9]{3,16}")
_COUNTRY_CODES = phonenumbers.COUNTRY_CODE_TO_REGION_CODE
_NON_GEO = phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
_MIN_NSN, _MAX_NSN = 2, 17  # phonenumbers' _MIN_LENGTH_FOR_NSN, _MAX_LENGTH_FOR_NSN


def plus_digits(text: str) -> PhoneNumber | None:
    """What `phonenumbers.parse(text, None)` returns for "+" and digits, or None: let `parse`
    decide (other input, or a case where `parse` might strip a national prefix or refuse).

    As `parse` does for such input: the country code is the first 1–3 digits that are a known
    one (codes are prefix-free); the rest is the national number — unless the region's national
    prefix pattern matches its start (`parse` may then strip one), or its length is one `parse`
    refuses. Leading zeros are recorded as `parse` records them."""
    if not _AS_WRITTEN.fullmatch(text):
        return None
    digits = text[1:]
    for size in (1, 2, 3):
        country_code = int(digits[:size])
        if country_code in _COUNTRY_CODES:
            break
    else:
        return None
    national = digits[size:]
    if not _MIN_NSN <= len(national) <= _MAX_NSN:
        return None
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(
        country_code, phonenumbers.region_code_for_country_code(country_code)
    )
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    if prefix and _compiled(prefix).match(national):
        return None
    number = PhoneNumber(country_code=country_code, national_number=int(national))
    if len(national) > 1 and national[0] == "0":
        number.italian_leading_zero = True
        zeros = min(len(national) - len(national.lstrip("0")), len(national) - 1)
        if zeros != 1:
            number.number_of_leading_zeros = zeros
    return number


def is_valid(number: PhoneNumber) -> bool:
    """`phonenumbers.is_valid_number(number)`, with each region's descriptions compiled once.

    As `is_valid_number`: the region is the calling code's only one, else the first of its list
    whose leading digits match or whose descriptions type the number; the number is valid for it
    when the calling codes agree and a description types it (`_number_type_helper` is not
    UNKNOWN: the general description matches, then any specific one)."""
    regions = _COUNTRY_CODES.get(number.country_code)
    if regions is None:
        return False
    nsn = phonenumbers.national_significant_number(number)
    if len(regions) == 1:
        region = regions[0]
    else:
        region = None
        for candidate in regions:
            metadata = PhoneMetadata.metadata_for_region(candidate.upper(), None)
            if metadata is None:
                continue
            if metadata.leading_digits is not None:
                if _compiled(metadata.leading_digits).match(nsn):
                    region = candidate
                    break
            elif _typed(nsn, metadata):
                region = candidate
                break
        if region is None:
            return False
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(
        number.country_code, region.upper()
    )
    if metadata is None:
        return False
    if region != _NON_GEO:
        own = PhoneMetadata.metadata_for_region(region.upper(), None)
        if own is None or own.country_code != number.country_code:
            return False
    return _typed(nsn, metadata)


def _typed(nsn: str, metadata: PhoneMetadata) -> bool:
    general, specific = _descriptions(metadata.id, metadata.country_code, len(nsn))
    return (
        general is not None
        and specific is not None
        and bool(general.fullmatch(nsn) and specific.fullmatch(nsn))
    )


@functools.lru_cache(maxsize=4096)
def _descriptions(
    region: str, country_code: int, length: int
) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """For numbers of `length` digits, in the metadata of `region` (`001` with `country_code`
    for a non-geographic entity: metadata objects are not hashable, so they are named): the
    general description's pattern, and one pattern that matches when any specific description
    does (None: none can). A description takes part when its possible lengths are unset or hold
    `length`, and its pattern is not empty — as `_is_number_matching_desc` decides. Mobile takes
    part only when its pattern differs from fixed line's (with the same pattern,
    `_number_type_helper` never looks at it)."""
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    general = _pattern_for(metadata.general_desc, length)
    kinds = [
        metadata.premium_rate,
        metadata.toll_free,
        metadata.shared_cost,
        metadata.voip,
        metadata.personal_number,
        metadata.pager,
        metadata.uan,
        metadata.voicemail,
        metadata.fixed_line,
    ]
    if not metadata.same_mobile_and_fixed_line_pattern:
        kinds.append(metadata.mobile)
    patterns = [p for p in (_source_for(kind, length) for kind in kinds) if p is not None]
    specific = re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None
    return (None if general is None else re.compile(general)), specific


def _source_for(desc, length: int) -> str | None:
    if desc is None:
        return None
    lengths = desc.possible_length
    if lengths and length not in lengths:
        return None
    pattern = desc.national_number_pattern
    return pattern or None


def _pattern_for(desc, length: int) -> str | None:
    source = _source_for(desc, length)
    return None if source is None else f"(?:{source})"


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
