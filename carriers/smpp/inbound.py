"""An inbound (MO) deliver_sm as the gateway stores it: who sent it to which number, its octets
and data_coding, and where it belongs in a concatenated message.

Sans-IO and pure, like the codec. Concatenation comes in three shapes and all are read: a UDH
concatenation element (8- or 16-bit reference), the SAR TLVs (sar_msg_ref_num,
sar_total_segments, sar_segment_seqnum), or one long text in `message_payload` (no parts at all).
The octets are kept undecoded: parts are joined *before* decoding, because a part boundary may
fall inside a UCS-2 surrogate pair or after a GSM-7 escape, and decoding each part alone would
garble the character there.
"""

from __future__ import annotations

import msgspec

from carriers.smpp import constants as c
from carriers.smpp.pdus import DeliverSm
from carriers.smpp.text import decode_text, parse_concat, split_udh


class Concat(msgspec.Struct, frozen=True):
    """Where one part belongs: the sender's reference, how many parts, this one's (1-based)."""

    ref: int
    total: int
    seqnum: int

    @property
    def usable(self) -> bool:
        """A header a handset could have meant: 1 <= seqnum <= total (else read as one part)."""
        return self.total >= 1 and 1 <= self.seqnum <= self.total


class InboundSm(msgspec.Struct, frozen=True):
    source_addr: str
    source_ton: int
    destination_addr: str
    destination_ton: int
    data_coding: int
    payload: bytes  # the text octets, UDH left out
    concat: Concat | None  # None: the whole message in one PDU

    @property
    def text(self) -> str:
        """This PDU's text alone (a whole message's when `concat` is None)."""
        return decode_text(self.data_coding, self.payload)


def read_inbound(pdu: DeliverSm) -> InboundSm:
    """What an MO deliver_sm carries. Never raises: a header that makes no sense is treated as
    text-only (the whole short_message, header included, is kept rather than lost)."""
    data = pdu.short_message
    concat: Concat | None = None
    payload_tlv = pdu.tlv(c.MESSAGE_PAYLOAD)
    if not data and payload_tlv is not None:
        data = payload_tlv.value
    if pdu.esm_class & c.ESM_CLASS_UDHI:
        udh, rest = split_udh(data)
        if udh is not None:
            data = rest
            found = parse_concat(udh)
            if found is not None:
                ref, total, seqnum = found
                concat = Concat(ref, total, seqnum)
    if concat is None:
        concat = _sar(pdu)
    if concat is not None and (not concat.usable or concat.total == 1):
        concat = None
    return InboundSm(
        source_addr=pdu.source_addr,
        source_ton=pdu.source_addr_ton,
        destination_addr=pdu.destination_addr,
        destination_ton=pdu.dest_addr_ton,
        data_coding=pdu.data_coding,
        payload=data,
        concat=concat,
    )


def _sar(pdu: DeliverSm) -> Concat | None:
    ref, total, seqnum = (
        pdu.tlv(c.SAR_MSG_REF_NUM),
        pdu.tlv(c.SAR_TOTAL_SEGMENTS),
        pdu.tlv(c.SAR_SEGMENT_SEQNUM),
    )
    if ref is None or total is None or seqnum is None:
        return None
    if not (ref.value and total.value and seqnum.value):
        return None
    return Concat(ref.as_int(), total.as_int(), seqnum.as_int())


def e164_or_as_is(addr: str, ton: int) -> str:
    """An address as the API shows it: `+digits` for an international number, else as sent."""
    if ton == c.TON_INTERNATIONAL and addr.isdigit():
        return "+" + addr
    return addr
