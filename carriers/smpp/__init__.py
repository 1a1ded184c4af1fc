"""SMPP 3.4 for smsgw: a sans-IO codec and ESME session, and an asyncio client per bind.

What the gateway imports lives here; the submodules are the layers underneath:
``constants`` (spec numbers), ``pdus`` (dataclasses), ``codec`` (bytes), ``session`` (the
protocol state machine), ``client`` (asyncio transport), ``text``/``submits``/``receipts``
(message content).
"""

from carriers.smpp.client import BindConfig, ClientClosed, SmppClient
from carriers.smpp.errors import (
    BindRefused,
    PduDecodeError,
    PduEncodeError,
    SmppError,
    SubmitNotSent,
    SubmitUncertain,
)
from carriers.smpp.pdus import DeliverSm, SubmitSm, Tlv
from carriers.smpp.receipts import Receipt, is_receipt, parse_receipt
from carriers.smpp.results import ClientStats, SubmitResult
from carriers.smpp.submits import build_submits
from carriers.smpp.text import decode_text, encode_text

__all__ = [
    "BindConfig",
    "BindRefused",
    "ClientClosed",
    "ClientStats",
    "DeliverSm",
    "PduDecodeError",
    "PduEncodeError",
    "Receipt",
    "SmppClient",
    "SmppError",
    "SubmitNotSent",
    "SubmitResult",
    "SubmitSm",
    "SubmitUncertain",
    "Tlv",
    "build_submits",
    "decode_text",
    "encode_text",
    "is_receipt",
    "parse_receipt",
]
