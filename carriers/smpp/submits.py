"""Turning the text parts routing chose into submit_sm PDUs.

Routing (``routing/``) decides the encoding and splits the text so that each part, with its
concatenation header, fits one SMS. This module only dresses those parts: encoding, user data
header, esm_class. Sequence numbers stay 0: the session assigns them when it sends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from carriers.smpp import constants as c
from carriers.smpp.pdus import SubmitSm, Tlv
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
    long_messages: str = "udh",
    default_data_coding: int = c.DATA_CODING_DEFAULT,
) -> list[SubmitSm]:
    """One :class:`SubmitSm` per text part, in order.

    With more than one part, ``long_messages`` says how they are tied together:

    * ``udh`` (default): a concatenation UDH with an 8-bit ``reference`` and esm_class UDHI
      (0x40), the form every carrier and handset reassembles (many carriers drop TLVs on their
      way to the handset);
    * ``udh16``: the same with a 16-bit reference (7-octet UDH), for carriers that ask for it;
    * ``sar``: the SAR TLVs (sar_msg_ref_num, sar_total_segments, sar_segment_seqnum) and no UDH;
      the SMSC builds the UDH for the air, so parts are cut as for ``udh``;
    * ``payload``: routing left the body whole; it goes in one submit_sm's message_payload TLV,
      short_message empty, and the SMSC splits it.

    GSM-7 goes with data_coding ``default_data_coding``: 0x00 (the SMSC default alphabet), or
    0x01 for carriers that take only IA5 for it. Every part asks for a receipt
    (``registered_delivery``) because each part is billed and delivered separately.
    """
    if not parts:
        raise ValueError("no text parts to submit: routing must give at least one (maybe empty)")
    if long_messages == "payload":
        data_coding, payload = encode_text("".join(parts), encoding)
        pieces = [(b"", 0, data_coding, (Tlv(c.MESSAGE_PAYLOAD, payload),))]
    else:
        pieces = [
            _part(part, index, len(parts), encoding, reference, long_messages)
            for index, part in enumerate(parts, start=1)
        ]
    return [
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
            data_coding=default_data_coding
            if data_coding == c.DATA_CODING_DEFAULT
            else data_coding,
            short_message=short_message,
            tlvs=tlvs,
        )
        for short_message, esm_class, data_coding, tlvs in pieces
    ]


def _part(
    part: str, index: int, total: int, encoding: str, reference: int, long_messages: str
) -> tuple[bytes, int, int, tuple[Tlv, ...]]:
    """(short_message, esm_class, data_coding, tlvs) of part `index` of `total`, checked to fit
    one SMS on the air with the UDH it carries or that the SMSC will add (SAR)."""
    data_coding, payload = encode_text(part, encoding)
    if total == 1:
        air_udh, udh, tlvs = b"", b"", ()
    elif long_messages == "sar":
        tlvs = (
            Tlv(c.SAR_MSG_REF_NUM, reference.to_bytes(2, "big")),
            Tlv(c.SAR_TOTAL_SEGMENTS, bytes([total])),
            Tlv(c.SAR_SEGMENT_SEQNUM, bytes([index])),
        )
        # On the air the SMSC adds the UDH: the part must still fit beside one.
        air_udh, udh = concat_udh(reference & 0xFF, total, index), b""
    else:
        udh = air_udh = concat_udh(reference, total, index, wide=long_messages == "udh16")
        tlvs = ()
    if air_octets(air_udh, payload, data_coding) > SMS_OCTETS:
        # A carrier would refuse it (ESME_RINVMSGLEN) or a handset get it cut: a routing bug.
        raise ValueError(
            f"part {index} of {total} needs {air_octets(air_udh, payload, data_coding)} "
            f"octets with its {len(air_udh)}-octet UDH; one SMS holds {SMS_OCTETS}"
        )
    return udh + payload, c.ESM_CLASS_UDHI if udh else 0, data_coding, tlvs
