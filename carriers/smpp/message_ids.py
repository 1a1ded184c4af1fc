"""Carrier message ids as one key, whichever way a carrier writes them.

An SMSC names each accepted submit_sm in its submit_sm_resp, and names it again in the delivery
receipt — but not always the same way. Common in the field: the response in hexadecimal and the
receipt text in decimal (or the reverse), ids padded with zeros on one side only, hex digits in
upper case on one side. Compared as text, every receipt of such a carrier stays unmatched and
every message `sent` for ever. Kannel has its `msg-id-type` for this; smsgw has
`receipt_id_format` per carrier:

* ``auto`` (default): case and leading zeros do not matter (``00A1`` is ``a1``).
* ``dec``: the response writes the number in hexadecimal, the receipt in decimal.
* ``hex``: the response writes the number in decimal, the receipt in hexadecimal.
* ``as-is``: compared exactly as written.

Both sides are turned into the same key before they reach the store, so a receipt that overtakes
its response is held under the key its response will bring. An id that is not a number in the base
its format says falls back to the ``auto`` key (and so still matches an id written the same way).
"""

from __future__ import annotations

from typing import Literal

RECEIPT_ID_FORMATS = ("auto", "dec", "hex", "as-is")
Side = Literal["response", "receipt"]

# The base each side writes its number in, per format (None: not read as a number).
_BASES: dict[str, dict[str, int | None]] = {
    "auto": {"response": None, "receipt": None},
    "as-is": {"response": None, "receipt": None},
    "dec": {"response": 16, "receipt": 10},
    "hex": {"response": 10, "receipt": 16},
}


def message_id_key(message_id: str, receipt_id_format: str, side: Side) -> str:
    """The key under which `message_id` (as `side` wrote it) is stored and matched."""
    if receipt_id_format == "as-is":
        return message_id
    base = _BASES[receipt_id_format][side]
    text = message_id.strip(" ")
    if base is not None:
        try:
            return str(int(text, base))
        except ValueError:
            pass  # not a number in that base: the auto key below
    return text.lower().lstrip("0") or "0"
