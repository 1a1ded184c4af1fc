"""Text to short_message octets and back, and the concatenation UDH.

Deciding *which* encoding and *where* to split is routing's job (``routing/``); this module only
turns already-chosen text parts into the octets carriers expect:

* ``"gsm7"`` -> data_coding 0x00, GSM 03.38 septets **unpacked**, one per octet, extension
  characters as ESC (0x1B) + code. Over SMPP, carriers pack septets themselves; sending packed
  septets is the classic bug that turns every message into garbage.
* ``"ucs2"`` -> data_coding 0x08, UTF-16-BE. Astral characters (emoji) become surrogate pairs,
  which is what every handset decodes, even though UCS-2 strictly has no such thing.

Decoding is for text that arrives (MO messages, receipt texts) and must never raise: a garbled
inbound message is still worth storing.
"""

from __future__ import annotations

import struct

import gsmcodecs  # noqa: F401  (registers the "gsm23.038" codec)

from carriers.smpp import constants as c

GSM7 = "gsm7"
UCS2 = "ucs2"
ENCODINGS = (GSM7, UCS2)

_GSM_CODEC = "gsm23.038"
_UDH_8BIT = struct.Struct(">BBBBBB")  # UDHL=5, IEI=0x00, IEDL=3, ref, total, seq
_UDH_16BIT = struct.Struct(">BBBHBB")  # UDHL=6, IEI=0x08, IEDL=4, ref, total, seq
IEI_CONCAT_8BIT = 0x00
IEI_CONCAT_16BIT = 0x08


def encode_text(text: str, encoding: str) -> tuple[int, bytes]:
    """``(data_coding, octets)`` for ``text`` in ``encoding`` ("gsm7" or "ucs2").

    Raises ``ValueError`` (``UnicodeEncodeError``) when ``text`` has a character GSM 03.38 lacks:
    routing should have picked UCS-2 for it, so silently substituting "?" would hide a bug.
    """
    if encoding == GSM7:
        return c.DATA_CODING_DEFAULT, text.encode(_GSM_CODEC)
    if encoding == UCS2:
        return c.DATA_CODING_UCS2, text.encode("utf-16-be")
    raise ValueError(f"unknown text encoding {encoding!r}; expected one of {ENCODINGS}")


def decode_text(data_coding: int, data: bytes) -> str:
    """The text of a short_message, best effort: never raises.

    Only the low nibble's well-known values are honoured; anything else (binary, vendor
    codings, message-class bits) falls back to latin-1, which maps every octet to a character and
    so loses nothing a human could read later.
    """
    if data_coding == c.DATA_CODING_DEFAULT:
        return data.decode(_GSM_CODEC, errors="replace")
    if data_coding == c.DATA_CODING_IA5:
        return data.decode("ascii", errors="replace")
    if data_coding == c.DATA_CODING_UCS2:
        return data.decode("utf-16-be", errors="replace")
    return data.decode("latin-1")


def concat_udh(ref: int, total: int, seqnum: int, *, wide: bool = False) -> bytes:
    """The user data header of part ``seqnum`` (1-based) of ``total`` with reference ``ref``.

    The 8-bit reference element (IEI 0x00) is one octet shorter, so it is used whenever the
    reference fits, unless ``wide`` asks for the 16-bit element (IEI 0x08) as some carriers do;
    above 255 the 16-bit element keeps references distinct.
    """
    if not 1 <= total <= 255 or not 1 <= seqnum <= total:
        raise ValueError(f"part {seqnum} of {total}: need 1 <= seqnum <= total <= 255")
    if not 0 <= ref <= 0xFFFF:
        raise ValueError(f"concatenation reference {ref} is outside 0..65535")
    if ref <= 0xFF and not wide:
        return _UDH_8BIT.pack(5, IEI_CONCAT_8BIT, 3, ref, total, seqnum)
    return _UDH_16BIT.pack(6, IEI_CONCAT_16BIT, 4, ref, total, seqnum)


def split_udh(short_message: bytes) -> tuple[bytes | None, bytes]:
    """``(udh, payload)`` of a short_message whose esm_class has UDHI set.

    ``udh`` includes its length octet. When the claimed header length does not fit the message
    (garbage, or UDHI set by mistake) the whole message is returned as payload with ``None``.
    """
    if not short_message:
        return None, short_message
    length = short_message[0]
    if length == 0 or length + 1 > len(short_message):
        return None, short_message
    return short_message[: length + 1], short_message[length + 1 :]


def message_text(short_message: bytes, esm_class: int, data_coding: int) -> str:
    """The text a submit_sm or deliver_sm carries: its UDH (if UDHI is set) left out, decoded."""
    if esm_class & c.ESM_CLASS_UDHI:
        short_message = split_udh(short_message)[1]
    return decode_text(data_coding, short_message)


def parse_concat(udh: bytes) -> tuple[int, int, int] | None:
    """``(ref, total, seqnum)`` from a UDH with a concatenation element, else None.

    Walks the information elements so headers carrying other elements (ports, ...) still work.
    """
    pos, end = 1, len(udh)
    while pos + 2 <= end:
        iei, iedl = udh[pos], udh[pos + 1]
        data = udh[pos + 2 : pos + 2 + iedl]
        if len(data) < iedl:
            return None
        if iei == IEI_CONCAT_8BIT and iedl == 3:
            return data[0], data[1], data[2]
        if iei == IEI_CONCAT_16BIT and iedl == 4:
            return (data[0] << 8) | data[1], data[2], data[3]
        pos += 2 + iedl
    return None
