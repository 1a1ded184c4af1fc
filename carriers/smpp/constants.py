"""SMPP 3.4 numbers, named as the specification names them.

Everything here is a plain ``int`` (not an ``IntEnum``) on purpose: these values are compared on
the hot path of the codec and the session, and carriers send vendor values that no enum knows.
The reverse lookups (:func:`command_name`, :func:`status_name`) are for logs and error messages.

Section numbers refer to "Short Message Peer to Peer Protocol Specification v3.4", issue 1.2.
"""

from __future__ import annotations

from typing import Final

# --- command_id (5.1.2.1) -------------------------------------------------------------------
GENERIC_NACK: Final = 0x80000000
BIND_RECEIVER: Final = 0x00000001
BIND_RECEIVER_RESP: Final = 0x80000001
BIND_TRANSMITTER: Final = 0x00000002
BIND_TRANSMITTER_RESP: Final = 0x80000002
QUERY_SM: Final = 0x00000003
QUERY_SM_RESP: Final = 0x80000003
SUBMIT_SM: Final = 0x00000004
SUBMIT_SM_RESP: Final = 0x80000004
DELIVER_SM: Final = 0x00000005
DELIVER_SM_RESP: Final = 0x80000005
UNBIND: Final = 0x00000006
UNBIND_RESP: Final = 0x80000006
REPLACE_SM: Final = 0x00000007
REPLACE_SM_RESP: Final = 0x80000007
CANCEL_SM: Final = 0x00000008
CANCEL_SM_RESP: Final = 0x80000008
BIND_TRANSCEIVER: Final = 0x00000009
BIND_TRANSCEIVER_RESP: Final = 0x80000009
OUTBIND: Final = 0x0000000B
ENQUIRE_LINK: Final = 0x00000015
ENQUIRE_LINK_RESP: Final = 0x80000015
SUBMIT_MULTI: Final = 0x00000021
SUBMIT_MULTI_RESP: Final = 0x80000021
ALERT_NOTIFICATION: Final = 0x00000102
DATA_SM: Final = 0x00000103
DATA_SM_RESP: Final = 0x80000103

#: Bit set in the command_id of every response PDU.
RESPONSE_BIT: Final = 0x80000000

# --- command_status (5.1.3) -----------------------------------------------------------------
ESME_ROK: Final = 0x00000000
ESME_RINVMSGLEN: Final = 0x00000001
ESME_RINVCMDLEN: Final = 0x00000002
ESME_RINVCMDID: Final = 0x00000003
ESME_RINVBNDSTS: Final = 0x00000004
ESME_RALYBND: Final = 0x00000005
ESME_RINVPRTFLG: Final = 0x00000006
ESME_RINVREGDLVFLG: Final = 0x00000007
ESME_RSYSERR: Final = 0x00000008
ESME_RINVSRCADR: Final = 0x0000000A
ESME_RINVDSTADR: Final = 0x0000000B
ESME_RINVMSGID: Final = 0x0000000C
ESME_RBINDFAIL: Final = 0x0000000D
ESME_RINVPASWD: Final = 0x0000000E
ESME_RINVSYSID: Final = 0x0000000F
ESME_RCANCELFAIL: Final = 0x00000011
ESME_RREPLACEFAIL: Final = 0x00000013
ESME_RMSGQFUL: Final = 0x00000014
ESME_RINVSERTYP: Final = 0x00000015
ESME_RINVNUMDESTS: Final = 0x00000033
ESME_RINVDLNAME: Final = 0x00000034
ESME_RINVDESTFLAG: Final = 0x00000040
ESME_RINVSUBREP: Final = 0x00000042
ESME_RINVESMCLASS: Final = 0x00000043
ESME_RCNTSUBDL: Final = 0x00000044
ESME_RSUBMITFAIL: Final = 0x00000045
ESME_RINVSRCTON: Final = 0x00000048
ESME_RINVSRCNPI: Final = 0x00000049
ESME_RINVDSTTON: Final = 0x00000050
ESME_RINVDSTNPI: Final = 0x00000051
ESME_RINVSYSTYP: Final = 0x00000053
ESME_RINVREPFLAG: Final = 0x00000054
ESME_RINVNUMMSGS: Final = 0x00000055
ESME_RTHROTTLED: Final = 0x00000058
ESME_RINVSCHED: Final = 0x00000061
ESME_RINVEXPIRY: Final = 0x00000062
ESME_RINVDFTMSGID: Final = 0x00000063
ESME_RX_T_APPN: Final = 0x00000064
ESME_RX_P_APPN: Final = 0x00000065
ESME_RX_R_APPN: Final = 0x00000066
ESME_RQUERYFAIL: Final = 0x00000067
ESME_RINVOPTPARSTREAM: Final = 0x000000C0
ESME_ROPTPARNOTALLWD: Final = 0x000000C1
ESME_RINVPARLEN: Final = 0x000000C2
ESME_RMISSINGOPTPARAM: Final = 0x000000C3
ESME_RINVOPTPARAMVAL: Final = 0x000000C4
ESME_RDELIVERYFAILURE: Final = 0x000000FE
ESME_RUNKNOWNERR: Final = 0x000000FF
# SMPP 5.0 values (4.7.6 of that spec) that carriers return on 3.4 binds too.
ESME_RSERTYPUNAUTH: Final = 0x00000100
ESME_RPROHIBITED: Final = 0x00000101
ESME_RSERTYPUNAVAIL: Final = 0x00000102
ESME_RSERTYPDENIED: Final = 0x00000103
ESME_RINVDCS: Final = 0x00000104
ESME_RINVSRCADDRSUBUNIT: Final = 0x00000105
ESME_RINVDSTADDRSUBUNIT: Final = 0x00000106

# --- TLV tags (5.3.2) -----------------------------------------------------------------------
DEST_ADDR_SUBUNIT: Final = 0x0005
DEST_NETWORK_TYPE: Final = 0x0006
SOURCE_NETWORK_TYPE: Final = 0x000E
PAYLOAD_TYPE: Final = 0x0019
RECEIPTED_MESSAGE_ID: Final = 0x001E
USER_MESSAGE_REFERENCE: Final = 0x0204
SOURCE_PORT: Final = 0x020A
DESTINATION_PORT: Final = 0x020B
SAR_MSG_REF_NUM: Final = 0x020C
LANGUAGE_INDICATOR: Final = 0x020D
SAR_TOTAL_SEGMENTS: Final = 0x020E
SAR_SEGMENT_SEQNUM: Final = 0x020F
SC_INTERFACE_VERSION: Final = 0x0210
NETWORK_ERROR_CODE: Final = 0x0423
MESSAGE_PAYLOAD: Final = 0x0424
DELIVERY_FAILURE_REASON: Final = 0x0425
MORE_MESSAGES_TO_SEND: Final = 0x0426
MESSAGE_STATE: Final = 0x0427

# --- message_state values (5.2.28) ----------------------------------------------------------
ENROUTE: Final = 1
DELIVERED: Final = 2
EXPIRED: Final = 3
DELETED: Final = 4
UNDELIVERABLE: Final = 5
ACCEPTED: Final = 6
UNKNOWN: Final = 7
REJECTED: Final = 8

#: The receipt text's ``stat:`` word for each message_state (Appendix B).
MESSAGE_STATE_STAT: Final[dict[int, str]] = {
    ENROUTE: "ENROUTE",
    DELIVERED: "DELIVRD",
    EXPIRED: "EXPIRED",
    DELETED: "DELETED",
    UNDELIVERABLE: "UNDELIV",
    ACCEPTED: "ACCEPTD",
    UNKNOWN: "UNKNOWN",
    REJECTED: "REJECTD",
}

# --- data_coding (5.2.19) -------------------------------------------------------------------
DATA_CODING_DEFAULT: Final = 0x00  # SMSC default alphabet; GSM 03.38 on every carrier we know
DATA_CODING_IA5: Final = 0x01  # IA5 (CCITT T.50) / ASCII
DATA_CODING_BINARY_02: Final = 0x02  # 8-bit binary
DATA_CODING_LATIN1: Final = 0x03  # ISO-8859-1
DATA_CODING_BINARY: Final = 0x04  # 8-bit binary
DATA_CODING_UCS2: Final = 0x08  # UCS-2 (ISO/IEC-10646), sent as UTF-16-BE in practice

# --- esm_class (5.2.12) ---------------------------------------------------------------------
ESM_CLASS_TYPE_MASK: Final = 0x3C  # bits 5..2: message type
ESM_CLASS_SMSC_DELIVERY_RECEIPT: Final = 0x04
ESM_CLASS_SME_DELIVERY_ACK: Final = 0x08
ESM_CLASS_SME_MANUAL_ACK: Final = 0x10
ESM_CLASS_CONVERSATION_ABORT: Final = 0x18
ESM_CLASS_INTERMEDIATE_NOTIFICATION: Final = 0x20
ESM_CLASS_UDHI: Final = 0x40
ESM_CLASS_REPLY_PATH: Final = 0x80

# --- registered_delivery (5.2.17) -----------------------------------------------------------
REGISTERED_DELIVERY_NONE: Final = 0x00
REGISTERED_DELIVERY_FINAL: Final = 0x01  # receipt on final outcome, success or failure
REGISTERED_DELIVERY_FAILURE: Final = 0x02  # receipt on failure only

# --- misc -----------------------------------------------------------------------------------
SMPP_VERSION_34: Final = 0x34

# Type of number / numbering plan indicator (5.2.5, 5.2.6), the ones a gateway uses.
TON_UNKNOWN: Final = 0x00
TON_INTERNATIONAL: Final = 0x01
TON_NATIONAL: Final = 0x02
TON_ALPHANUMERIC: Final = 0x05
NPI_UNKNOWN: Final = 0x00
NPI_ISDN: Final = 0x01  # E.163/E.164


_COMMANDS: Final = (
    "GENERIC_NACK", "BIND_RECEIVER", "BIND_RECEIVER_RESP", "BIND_TRANSMITTER",
    "BIND_TRANSMITTER_RESP", "QUERY_SM", "QUERY_SM_RESP", "SUBMIT_SM", "SUBMIT_SM_RESP",
    "DELIVER_SM", "DELIVER_SM_RESP", "UNBIND", "UNBIND_RESP", "REPLACE_SM", "REPLACE_SM_RESP",
    "CANCEL_SM", "CANCEL_SM_RESP", "BIND_TRANSCEIVER", "BIND_TRANSCEIVER_RESP", "OUTBIND",
    "ENQUIRE_LINK", "ENQUIRE_LINK_RESP", "SUBMIT_MULTI", "SUBMIT_MULTI_RESP",
    "ALERT_NOTIFICATION", "DATA_SM", "DATA_SM_RESP",
)  # fmt: skip
_COMMAND_NAMES: Final[dict[int, str]] = {globals()[name]: name.lower() for name in _COMMANDS}
_STATUS_NAMES: Final[dict[int, str]] = {
    value: name for name, value in globals().items() if name.startswith("ESME_")
}


def status_name(command_status: int) -> str:
    """Name a command_status for logs: ``"ESME_RTHROTTLED"``, or ``"0x00000458"`` if unknown.

    Carriers use the vendor range (0x400-0x4FF) freely, so unknown values are common and must
    still print recognisably (the hex form is what carriers' documentation lists).
    """
    return _STATUS_NAMES.get(command_status) or f"0x{command_status:08X}"


def command_name(command_id: int) -> str:
    """Name a command_id for logs: ``"submit_sm"``, or ``"0x00000104"`` if unknown."""
    return _COMMAND_NAMES.get(command_id) or f"0x{command_id:08X}"
