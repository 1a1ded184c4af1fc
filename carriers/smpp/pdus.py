"""SMPP 3.4 PDUs as small frozen values (msgspec Structs: see store/models.py for why).

A PDU object is plain data: it knows its ``command_id`` (a class constant) and its fields, never
how to reach a socket. Every field is keyword-only with the specification's default, so building
one reads like the spec's field table::

    SubmitSm(source_addr="Acme", source_addr_ton=TON_ALPHANUMERIC,
             destination_addr="447700900123", dest_addr_ton=1, dest_addr_npi=1,
             short_message=b"Hello", registered_delivery=1)

C-octet strings are ``str`` (ASCII on the wire), octet strings are ``bytes``. ``sequence_number``
is usually left 0 and assigned by the session when the PDU is sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import msgspec

from carriers.smpp import constants as c


class Tlv(msgspec.Struct, frozen=True):
    """One optional parameter: tag and raw value. Unknown tags are kept, never rejected."""

    tag: int
    value: bytes

    def as_int(self) -> int:
        """The value read as a big-endian unsigned integer (message_state, sar_* fields)."""
        return int.from_bytes(self.value, "big")

    def as_cstring(self) -> str:
        """The value read as a C-octet string, tolerating a missing terminating NUL."""
        value = self.value
        end = value.find(b"\0")
        return (value if end < 0 else value[:end]).decode("latin-1")


def find_tlv(tlvs: Iterable[Tlv], tag: int) -> Tlv | None:
    """The first TLV with ``tag``, or None. (The spec allows each tag once; carriers repeat.)"""
    for tlv in tlvs:
        if tlv.tag == tag:
            return tlv
    return None


class Pdu(msgspec.Struct, frozen=True, kw_only=True):
    """Fields every PDU has. ``command_length`` is not one: the codec computes it."""

    command_id: ClassVar[int]
    sequence_number: int = 0
    command_status: int = 0

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & c.RESPONSE_BIT)


# --- bind -----------------------------------------------------------------------------------
class _Bind(Pdu, frozen=True, kw_only=True):
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = c.SMPP_VERSION_34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""

    def __repr__(self) -> str:
        # Keeps the password out of logs and tracebacks that print the PDU.
        return (
            f"{type(self).__name__}(sequence_number={self.sequence_number}, "
            f"command_status={self.command_status}, system_id={self.system_id!r}, "
            f"password='***', system_type={self.system_type!r}, "
            f"interface_version={self.interface_version:#x}, addr_ton={self.addr_ton}, "
            f"addr_npi={self.addr_npi}, address_range={self.address_range!r})"
        )


class BindTransmitter(_Bind, frozen=True, kw_only=True):
    command_id: ClassVar[int] = c.BIND_TRANSMITTER


class BindReceiver(_Bind, frozen=True, kw_only=True):
    command_id: ClassVar[int] = c.BIND_RECEIVER


class BindTransceiver(_Bind, frozen=True, kw_only=True):
    command_id: ClassVar[int] = c.BIND_TRANSCEIVER


class _BindResp(Pdu, frozen=True, kw_only=True):
    system_id: str = ""
    tlvs: tuple[Tlv, ...] = ()


class BindTransmitterResp(_BindResp, frozen=True, kw_only=True):
    command_id: ClassVar[int] = c.BIND_TRANSMITTER_RESP


class BindReceiverResp(_BindResp, frozen=True, kw_only=True):
    command_id: ClassVar[int] = c.BIND_RECEIVER_RESP


class BindTransceiverResp(_BindResp, frozen=True, kw_only=True):
    command_id: ClassVar[int] = c.BIND_TRANSCEIVER_RESP


# --- messages -------------------------------------------------------------------------------
class _ShortMessage(Pdu, frozen=True, kw_only=True):
    """The mandatory fields submit_sm and deliver_sm share (4.4.1, 4.6.1), in wire order."""

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""
    tlvs: tuple[Tlv, ...] = ()

    def tlv(self, tag: int) -> Tlv | None:
        """The optional parameter ``tag``, or None."""
        return find_tlv(self.tlvs, tag) if self.tlvs else None


class SubmitSm(_ShortMessage, frozen=True, kw_only=True):
    command_id: ClassVar[int] = c.SUBMIT_SM


class DeliverSm(_ShortMessage, frozen=True, kw_only=True):
    command_id: ClassVar[int] = c.DELIVER_SM


class SubmitSmResp(Pdu, frozen=True, kw_only=True):
    command_id: ClassVar[int] = c.SUBMIT_SM_RESP
    message_id: str = ""


class DeliverSmResp(Pdu, frozen=True, kw_only=True):
    """``message_id`` is unused by the spec (always empty) but kept so decoding is lossless."""

    command_id: ClassVar[int] = c.DELIVER_SM_RESP
    message_id: str = ""


class DataSm(Pdu, frozen=True, kw_only=True):
    """data_sm (SMPP 3.4 §4.7): a message with no short_message field, its text (if any) in the
    message_payload TLV. Some SMSCs deliver receipts and MO messages with it; the session reads
    it as the deliver_sm it stands for (:meth:`as_deliver`) and answers with data_sm_resp."""

    command_id: ClassVar[int] = c.DATA_SM
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0
    tlvs: tuple[Tlv, ...] = ()

    def tlv(self, tag: int) -> Tlv | None:
        return find_tlv(self.tlvs, tag) if self.tlvs else None

    def as_deliver(self) -> DeliverSm:
        """The same message as a deliver_sm (text left in message_payload), so receipts and
        inbound messages are read by one path whichever PDU carried them."""
        return DeliverSm(
            sequence_number=self.sequence_number,
            service_type=self.service_type,
            source_addr_ton=self.source_addr_ton,
            source_addr_npi=self.source_addr_npi,
            source_addr=self.source_addr,
            dest_addr_ton=self.dest_addr_ton,
            dest_addr_npi=self.dest_addr_npi,
            destination_addr=self.destination_addr,
            esm_class=self.esm_class,
            registered_delivery=self.registered_delivery,
            data_coding=self.data_coding,
            tlvs=self.tlvs,
        )


class DataSmResp(Pdu, frozen=True, kw_only=True):
    command_id: ClassVar[int] = c.DATA_SM_RESP
    message_id: str = ""


class QuerySm(Pdu, frozen=True, kw_only=True):
    """query_sm (SMPP 3.4 §4.8): the state of a message we submitted, named by the id its
    submit_sm_resp gave and its source address — for carriers that send no receipts."""

    command_id: ClassVar[int] = c.QUERY_SM
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""


class QuerySmResp(Pdu, frozen=True, kw_only=True):
    """query_sm_resp: ``message_state`` (§5.2.28), ``final_date`` (SMPP time, "" while not
    final) and the network ``error_code``."""

    command_id: ClassVar[int] = c.QUERY_SM_RESP
    message_id: str = ""
    final_date: str = ""
    message_state: int = 0
    error_code: int = 0


# --- session management ---------------------------------------------------------------------
class EnquireLink(Pdu, frozen=True, kw_only=True):
    command_id: ClassVar[int] = c.ENQUIRE_LINK


class EnquireLinkResp(Pdu, frozen=True, kw_only=True):
    command_id: ClassVar[int] = c.ENQUIRE_LINK_RESP


class Unbind(Pdu, frozen=True, kw_only=True):
    command_id: ClassVar[int] = c.UNBIND


class UnbindResp(Pdu, frozen=True, kw_only=True):
    command_id: ClassVar[int] = c.UNBIND_RESP


class GenericNack(Pdu, frozen=True, kw_only=True):
    command_id: ClassVar[int] = c.GENERIC_NACK


class UnknownPdu(Pdu, frozen=True, kw_only=True):
    """A command this codec has no layout for (query_sm, data_sm, vendor commands...).

    Decoding it is not an error: the session answers requests with generic_nack
    ESME_RINVCMDID and the stream goes on.
    """

    command_id: int  # type: ignore[misc]  # an instance field here, a ClassVar elsewhere
    body: bytes = b""


BIND_REQUESTS: dict[str, type[_Bind]] = {
    "transmitter": BindTransmitter,
    "receiver": BindReceiver,
    "transceiver": BindTransceiver,
}
