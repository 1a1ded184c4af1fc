"""Turning the text parts routing chose into submit_sm PDUs.

Routing (``routing/``) decides the encoding and splits the text so that each part, with its
concatenation header, fits one SMS. This module only dresses those parts: encoding, user data
header, esm_class. Sequence numbers stay 0: the session assigns them when it sends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from carriers.smpp import constants as c
from carriers.smpp.pdus import SubmitSm
from carriers.smpp.text import concat_udh, encode_text

SMS_OCTETS = 140  # one SMS's user data on the air (3GPP TS 23.040 §9.2.3.16)


def air_octets(udh: bytes, payload: bytes, data_coding: int) -> int:
    """Octets a short_message occupies on the air. The default alphabet travels in SMPP as one
    septet per octet and is packed by the SMSC, after the UDH padded to a septet boundary (TS
    23.040 §9.2.3.24); other codings travel as they are."""
    if data_coding == c.DATA_CODING_DEFAULT:
        return math.ceil((math.ceil(len(udh) * 8 / 7) + len(payload)) * 7 / 8)
    return len(udh) + len(payload)


def build_submits(
    *,
    source_addr: str,
    source_ton: int,
    source_npi: int,
    destination_addr: str,
    dest_ton: int,
    dest_npi: int,
    parts: Sequence[str],
    encoding: str,
    reference: int,
    registered_delivery: int = c.REGISTERED_DELIVERY_FINAL,
    validity_period: str = "",
) -> list[SubmitSm]:
    """One :class:`SubmitSm` per text part, in order.

    With more than one part each carries a concatenation UDH (``reference``, total, 1-based
    index) and esm_class UDHI (0x40), the form every carrier and handset reassembles. UDH rather
    than SAR TLVs: many carriers drop TLVs on their way to the handset. Every part asks for a
    receipt (``registered_delivery``) because each part is billed and delivered separately.
    """
    if not parts:
        raise ValueError("no text parts to submit: routing must give at least one (maybe empty)")
    total = len(parts)
    submits = []
    for index, part in enumerate(parts, start=1):
        data_coding, payload = encode_text(part, encoding)
        udh = concat_udh(reference, total, index) if total > 1 else b""
        if air_octets(udh, payload, data_coding) > SMS_OCTETS:
            # A carrier would refuse it (ESME_RINVMSGLEN) or a handset get it cut: a routing bug.
            raise ValueError(
                f"part {index} of {total} needs {air_octets(udh, payload, data_coding)} octets "
                f"with its {len(udh)}-octet UDH; one SMS holds {SMS_OCTETS}"
            )
        if total > 1:
            payload = udh + payload
            esm_class = c.ESM_CLASS_UDHI
        else:
            esm_class = 0
        submits.append(
            SubmitSm(
                source_addr_ton=source_ton,
                source_addr_npi=source_npi,
                source_addr=source_addr,
                dest_addr_ton=dest_ton,
                dest_addr_npi=dest_npi,
                destination_addr=destination_addr,
                esm_class=esm_class,
                registered_delivery=registered_delivery,
                validity_period=validity_period,
                data_coding=data_coding,
                short_message=payload,
            )
        )
    return submits
