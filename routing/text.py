"""Choose the alphabet for a message body and split it into SMS segments.

GSM 03.38 (3GPP TS 23.038) default alphabet when every character is in it — extension-table
characters (€ [ ] { } ~ ^ \\ |) cost two septets, an escape plus the character — else UCS-2.
One segment holds 160 septets / 70 UTF-16 units; a concatenated segment loses 7 septets /
3 units to the 6-octet UDH of an 8-bit reference, so 153 / 67. Delivery uses that reference
(`gateway.engine.delivery.concat_reference`), and `carriers.smpp.submits.build_submits` refuses a
part that would not fit one SMS, so a split and its header cannot disagree unnoticed. A split
never separates an escape sequence from its character nor the two halves of a surrogate pair: we
split by whole characters.

The tables come from `gsmcodecs` (which encodes but neither counts septets nor splits); this
module is the one place that counts, so `num_segments` in the API and the parts sent to the
carrier can never disagree.
"""

from __future__ import annotations

import msgspec
from gsmcodecs.charmaps import GSMCHARMAPS

_ESCAPE = 0x1B
_BASIC: frozenset[int] = frozenset(
    cp for cp, code in GSMCHARMAPS[0]["locking"]["encode"].items() if code != _ESCAPE
)
_EXTENSION: frozenset[int] = frozenset(GSMCHARMAPS[0]["singleShift"]["encode"]) - _BASIC

GSM7_SINGLE = 160
GSM7_CONCAT = 153
UCS2_SINGLE = 70
UCS2_CONCAT = 67
# With a 16-bit reference the UDH is 7 octets: 8 septets of GSM-7 (padded), 7 octets of UCS-2.
GSM7_CONCAT_16 = 152
UCS2_CONCAT_16 = 66

#: How a carrier takes long messages (`long_messages` in the config): a concatenation UDH with an
#: 8- or 16-bit reference, the SAR TLVs (the SMSC builds the UDH for the air, so parts are cut
#: as for the 8-bit one), or the whole text in one `message_payload` (the SMSC splits it).
LONG_MESSAGE_MODES = ("udh", "udh16", "sar", "payload")
_CONCAT_LIMITS = {
    "udh": (GSM7_CONCAT, UCS2_CONCAT),
    "udh16": (GSM7_CONCAT_16, UCS2_CONCAT_16),
    "sar": (GSM7_CONCAT, UCS2_CONCAT),
}


class TextPlan(msgspec.Struct, frozen=True):
    """How a body travels: its alphabet and the text of each segment, in order."""

    encoding: str  # "gsm7" | "ucs2"
    parts: tuple[str, ...]

    @property
    def num_segments(self) -> int:
        return len(self.parts)


def is_gsm7(text: str) -> bool:
    """True when every character exists in the GSM 03.38 default or extension table."""
    return all(ord(c) in _BASIC or ord(c) in _EXTENSION for c in text)


def _gsm7_cost(char: str) -> int:
    return 1 if ord(char) in _BASIC else 2


def _ucs2_cost(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def count_units(text: str, encoding: str) -> int:
    """Septets (gsm7) or UTF-16 code units (ucs2) that `text` occupies."""
    cost = _gsm7_cost if encoding == "gsm7" else _ucs2_cost
    return sum(cost(c) for c in text)


def _split(text: str, cost, limit: int) -> tuple[str, ...]:
    parts: list[str] = []
    start = 0
    used = 0
    for index, char in enumerate(text):
        size = cost(char)
        if used + size > limit:
            parts.append(text[start:index])
            start, used = index, 0
        used += size
    parts.append(text[start:])
    return tuple(parts)


def plan_text(body: str, mode: str = "udh") -> TextPlan:
    """Pick the alphabet and split `body` into segments (an empty body is one empty segment),
    as the carrier's long-message `mode` needs; with "payload" the body stays whole (one
    submit_sm, the SMSC splits it)."""
    if mode not in LONG_MESSAGE_MODES:
        raise ValueError(f"long message mode {mode!r} is not one of {LONG_MESSAGE_MODES}")
    gsm = is_gsm7(body)
    encoding, cost, single = (
        ("gsm7", _gsm7_cost, GSM7_SINGLE) if gsm else ("ucs2", _ucs2_cost, UCS2_SINGLE)
    )
    if mode == "payload" or sum(cost(c) for c in body) <= single:
        return TextPlan(encoding, (body,))
    gsm_limit, ucs2_limit = _CONCAT_LIMITS[mode]
    return TextPlan(encoding, _split(body, cost, gsm_limit if gsm else ucs2_limit))
