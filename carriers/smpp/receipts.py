"""Delivery receipts: recognising them in deliver_sm and reading what they say.

The receipt *text* format is only an appendix of SMPP 3.4 (Appendix B, "vendor specific"), and
carriers take that literally: fields come reordered, in upper case, with ``submit_date`` for
``submit date``, without ``text:``, or not at all when the TLVs say it all. So the parser looks for
``key:value`` pairs anywhere; the receipted_message_id TLV, when present, wins over the text's
``id``, and the message_state TLV supplies the ``stat`` word when the text has none.

Which receipts are *final* is decided here, once (:data:`FINAL_STATES`, :func:`is_final_stat`):
the carrier layer says what SMPP says about a message's state, and the gateway's policy
(``gateway/engine/policy.py``) only maps the final ones to Twilio statuses and error codes.
Acknowledgements from the handset (esm_class 0x08, 0x10) are read too, but are never final and
never reach the application as inbound text (:func:`is_receipt`).
"""

from __future__ import annotations

import re
from datetime import datetime

import msgspec

from carriers.smpp import constants as c
from carriers.smpp.pdus import DeliverSm, Tlv
from carriers.smpp.text import decode_text, split_udh

#: esm_class message types (bits 5..2, :data:`~carriers.smpp.constants.ESM_CLASS_TYPE_MASK`) in
#: which the SMSC reports on a message we submitted: SMSC delivery receipt (0x04) and intermediate
#: delivery notification (0x20).
RECEIPT_TYPES = frozenset(
    {
        c.ESM_CLASS_SMSC_DELIVERY_RECEIPT,
        c.ESM_CLASS_INTERMEDIATE_NOTIFICATION,
    }
)

#: esm_class message types sent by the destination SME (the handset or its application), not by
#: the SMSC: SME delivery acknowledgement (0x08) and manual/user acknowledgement (0x10). See
#: :func:`is_receipt` for what becomes of them.
ACKNOWLEDGEMENT_TYPES = frozenset({c.ESM_CLASS_SME_DELIVERY_ACK, c.ESM_CLASS_SME_MANUAL_ACK})

#: message_state values (SMPP 3.4 §5.2.28) after which nothing more will happen to the message.
#:
#: These are the spec's final states, with one deliberate exception. ``UNKNOWN`` (7, "message is
#: in invalid state") *is* final: the SMSC has lost track of the message and will send nothing
#: more, so waiting for another receipt would leave the message ``sent`` forever with no callback
#: the customer could act on; the gateway reports it undelivered (Twilio 30008, "unknown error")
#: with the raw ``stat`` kept in the history, and never resubmits it (the handset may well have
#: it). ``ACCEPTED`` (6) is final in the spec ("accepted on behalf of the subscriber", e.g. by
#: customer service), but carriers send ``ACCEPTD`` receipts for "accepted by the next network"
#: and follow them with the real outcome; taking it as final would report a message before its
#: true fate and, the first final answer being the one that counts, hide that fate for good.
FINAL_STATES = frozenset(
    {c.DELIVERED, c.EXPIRED, c.DELETED, c.UNDELIVERABLE, c.UNKNOWN, c.REJECTED}
)

#: The ``stat`` words (Appendix B) of :data:`FINAL_STATES`.
FINAL_STATS = frozenset(c.MESSAGE_STATE_STAT[state] for state in FINAL_STATES)

#: The ``stat`` word of the one final state that means "delivered to the handset".
DELIVERED_STAT = c.MESSAGE_STATE_STAT[c.DELIVERED]

_STAT_STATE = {stat: state for state, stat in c.MESSAGE_STATE_STAT.items()}

# A key starts the text or follows whitespace; "submit date" before "sub" so it wins.
_KEY = re.compile(
    r"(?:^|(?<=\s))(id|submit[ _]?date|done[ _]?date|sub|dlvrd|stat|err|text)\s*:",
    re.IGNORECASE,
)
_ID_AND_STAT = ("id", "stat")


class Receipt(msgspec.Struct, frozen=True):
    """What a delivery receipt says. Dates are the carrier's raw ``YYMMDDhhmm[ss]`` strings.

    ``acknowledgement`` marks a deliver_sm from the destination SME rather than the SMSC (see
    :func:`is_receipt`): its ``stat`` is always None, so it is never final, and ``text`` is the
    whole text the SME sent.
    """

    message_id: str | None
    stat: str | None
    err: str | None
    submit_date: str | None
    done_date: str | None
    sub: str | None
    dlvrd: str | None
    text: str | None
    message_state: int | None
    network_error_code: bytes | None
    acknowledgement: bool = False

    @property
    def final(self) -> bool:
        """True when the message reached an end state (see :func:`is_final_stat`)."""
        return is_final_stat(self.stat)

    @property
    def delivered(self) -> bool:
        return self.stat == DELIVERED_STAT


def is_final_stat(stat: str | None) -> bool:
    """Whether a receipt's ``stat`` word (any case) reports a final state (:data:`FINAL_STATES`).

    ``ENROUTE`` and ``ACCEPTD`` are not final. Neither is a missing ``stat`` nor a word that is not
    in Appendix B: such a receipt cannot say what happened, and calling it final would tell the
    customer "undelivered" about a message that may yet be delivered — with no way back, since the
    first final answer is the one that counts. It is kept in the message's history instead.
    """
    return stat is not None and stat.upper() in FINAL_STATS


def message_type(deliver: DeliverSm) -> int:
    """The message type of ``deliver``: its esm_class bits 5..2 (mask 0x3C, SMPP 3.4 §5.2.12)."""
    return deliver.esm_class & c.ESM_CLASS_TYPE_MASK


def is_receipt(deliver: DeliverSm) -> bool:
    """Whether ``deliver`` takes the receipt path rather than reaching the application as an
    inbound (MO) message.

    By message type (:func:`message_type`; the messaging-mode bits 1..0, UDHI and reply path do not
    count):

    * 0x00, default: an MO message — unless it carries a receipted_message_id TLV, which only a
      receipt has (some SMSCs send receipts so).
    * 0x04, SMSC delivery receipt, and 0x20, intermediate notification (:data:`RECEIPT_TYPES`):
      the SMSC's word on a message we submitted; parsed in full, final or not by their ``stat``.
    * 0x08, SME delivery acknowledgement, and 0x10, manual/user acknowledgement
      (:data:`ACKNOWLEDGEMENT_TYPES`): sent by the handset or its application, not the SMSC.
      smsgw never asks for them (``registered_delivery`` asks for SMSC receipts only) and they do
      not say what the SMSC did with a message; but neither are they text for the application.
      So they are receipts in the sense of this function, read as *acknowledgements*
      (:attr:`Receipt.acknowledgement`): never final, whatever their text says (the handset
      wrote it: ``id:… stat:DELIVRD`` in a user acknowledgement must not settle anybody's
      message), matched only by a receipted_message_id TLV. At most they add a line to a
      message's history; without that TLV the engine acknowledges them and logs them whole.
    * any other type (0x18 conversation abort, the reserved values): read as acknowledgements
      too, for the same reason — the SMSC marked it as something other than an MO text.
    """
    return message_type(deliver) != 0 or deliver.tlv(c.RECEIPTED_MESSAGE_ID) is not None


def parse_receipt(deliver: DeliverSm) -> Receipt | None:
    """The receipt carried by ``deliver``, or None if it is an ordinary inbound message."""
    if not is_receipt(deliver):
        return None
    tlv_id = deliver.tlv(c.RECEIPTED_MESSAGE_ID)
    tlv_message_id = tlv_id.as_cstring() if tlv_id is not None else None
    state_tlv = deliver.tlv(c.MESSAGE_STATE)
    message_state = state_tlv.as_int() if state_tlv is not None and state_tlv.value else None
    error_tlv = deliver.tlv(c.NETWORK_ERROR_CODE)
    network_error_code = error_tlv.value if error_tlv is not None else None
    mtype = message_type(deliver)
    if mtype not in RECEIPT_TYPES and not (mtype == 0 and tlv_id is not None):
        return Receipt(
            message_id=tlv_message_id or None,
            stat=None,
            err=None,
            submit_date=None,
            done_date=None,
            sub=None,
            dlvrd=None,
            text=decode_text(deliver.data_coding, _receipt_octets(deliver)),
            message_state=message_state,
            network_error_code=network_error_code,
            acknowledgement=True,
        )

    fields = parse_receipt_text(_receipt_text(deliver))
    message_id = tlv_message_id if tlv_id is not None else fields.get("id")
    stat = fields.get("stat")
    stat = stat.upper() if stat else None
    if stat is None and message_state is not None:
        stat = c.MESSAGE_STATE_STAT.get(message_state)
    return Receipt(
        message_id=message_id or None,
        stat=stat,
        err=fields.get("err"),
        submit_date=fields.get("submit date"),
        done_date=fields.get("done date"),
        sub=fields.get("sub"),
        dlvrd=fields.get("dlvrd"),
        text=fields.get("text"),
        message_state=message_state,
        network_error_code=network_error_code,
    )


def _receipt_octets(deliver: DeliverSm) -> bytes:
    data = deliver.short_message
    if not data:
        payload: Tlv | None = deliver.tlv(c.MESSAGE_PAYLOAD)
        data = payload.value if payload is not None else b""
    if deliver.esm_class & c.ESM_CLASS_UDHI:
        data = split_udh(data)[1]
    return data


def _receipt_text(deliver: DeliverSm) -> str:
    """The receipt text, decoded as its data_coding says (the octets may be short_message's or
    message_payload's), before any field is looked for.

    UCS-2 (0x08) is UTF-16-BE: read as latin-1, every other character would be a NUL and no key
    would be found. Yet some SMSCs copy the submit's data_coding into the receipt and write the
    text in ASCII all the same (farhadi/node-smpp#68: ``id:…`` arrives as ``楤㩓…``); so when the
    UTF-16 reading has no receipt key and the latin-1 one has, the latin-1 one is taken.
    """
    data = _receipt_octets(deliver)
    if deliver.data_coding == c.DATA_CODING_UCS2:
        text = decode_text(c.DATA_CODING_UCS2, data)
        if _KEY.search(text) is None:
            octets = data.decode("latin-1")
            if _KEY.search(octets) is not None:
                return octets
        return text
    # Receipt texts are ASCII even under data_coding 0: read as GSM 03.38, "_" would become
    # "§" and "submit_date" would be lost. latin-1 keeps every octet.
    return data.decode("latin-1")


# The format of SMPP 3.4 Appendix B exactly as most SMSCs write it: one regex match reads it
# (a fifth of the general parser's cost, and every receipt is read); anything else — other order,
# case, spacing, missing or extra keys — goes to the general parser. A property test holds the two
# equal on this format (tests/carriers/test_receipts.py).
_APPENDIX_B = re.compile(
    r"id:(\S*) sub:(\S*) dlvrd:(\S*) submit date:(\S*) done date:(\S*) stat:(\S*) err:(\S*)"
    r" text:(.*)",
    re.DOTALL,
)
_APPENDIX_B_KEYS = ("id", "sub", "dlvrd", "submit date", "done date", "stat", "err")


def parse_receipt_text(text: str) -> dict[str, str]:
    """``{key: value}`` from a receipt text; keys lower-case, ``submit date``/``done date``
    spaced."""
    match = _APPENDIX_B.fullmatch(text)
    if match is None:
        return parse_any_receipt_text(text)
    *values, text_value = match.groups()
    fields = dict(zip(_APPENDIX_B_KEYS, values, strict=True))
    fields["text"] = text_value.strip()
    return fields


def parse_any_receipt_text(text: str) -> dict[str, str]:
    """`parse_receipt_text` for any layout: keys in any order and case, ``_`` or no space in the
    date keys, missing keys, ``text:`` anywhere.

    Everything after ``text:`` is the text, colons and all, unless ``id`` or ``stat`` were not
    found before it: then the carrier put ``text:`` in the middle, and keys found after it end it.
    """
    matches = list(_KEY.finditer(text))
    keys = [m.group(1).lower() for m in matches]
    fields: dict[str, str] = {}
    if "text" not in keys:
        _collect(text, matches, fields, end=None)
        return fields
    text_index = keys.index("text")
    text_match = matches[text_index]
    _collect(text, matches[:text_index], fields, end=text_match.start())
    tail = matches[text_index + 1 :]
    if not tail or all(key in fields for key in _ID_AND_STAT):
        fields["text"] = text[text_match.end() :].strip()
    else:
        fields["text"] = text[text_match.end() : tail[0].start()].strip()
        _collect(text, tail, fields, end=None)
    return fields


def _collect(
    text: str, matches: list[re.Match[str]], fields: dict[str, str], end: int | None
) -> None:
    for i, match in enumerate(matches):
        stop = matches[i + 1].start() if i + 1 < len(matches) else end
        key = _normal_key(match.group(1))
        value = text[match.end() : stop].strip()
        fields.setdefault(key, value)


def _normal_key(key: str) -> str:
    key = key.lower().replace("_", " ")
    if key in ("submitdate", "donedate"):
        return key[:-4] + " date"
    return key


def format_receipt_text(
    message_id: str,
    *,
    submit_date: datetime,
    done_date: datetime,
    stat: str = "DELIVRD",
    err: str = "000",
    text: str = "",
    sub: int = 1,
    dlvrd: int = 1,
) -> str:
    """The Appendix B receipt text, as the simulator (and most carriers) send it."""
    return (
        f"id:{message_id} sub:{sub:03d} dlvrd:{dlvrd:03d} "
        f"submit date:{submit_date:%y%m%d%H%M} done date:{done_date:%y%m%d%H%M} "
        f"stat:{stat} err:{err} text:{text[:20]}"
    )


def state_for_stat(stat: str) -> int | None:
    """The message_state TLV value matching a receipt ``stat`` word, or None if unknown."""
    return _STAT_STATE.get(stat.upper())
