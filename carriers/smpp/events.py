"""What an ESME :class:`~carriers.smpp.session.Session` reports to its owner.

Each event is a frozen value (a msgspec Struct); the owner matches on the type. Events that
answer one of our requests carry its sequence number, which ``Session.submit`` returned.
"""

from __future__ import annotations

import msgspec

from carriers.smpp.pdus import DeliverSm


class Event(msgspec.Struct, frozen=True):
    """Base of all session events."""


class Bound(Event, frozen=True):
    """Our bind was accepted; ``system_id`` is the SMSC's own."""

    system_id: str


class BindFailed(Event, frozen=True):
    """Our bind was refused (bind_resp error or generic_nack). The session is back to OPEN."""

    command_status: int


class SubmitAccepted(Event, frozen=True):
    seq: int
    message_id: str


class SubmitRejected(Event, frozen=True):
    """The SMSC answered the submit with an error (submit_sm_resp or generic_nack)."""

    seq: int
    command_status: int


class DeliverReceived(Event, frozen=True):
    """A deliver_sm arrived. The owner must call ``acknowledge_deliver(seq)`` once it has
    durably recorded it: until then the SMSC keeps the receipt and will resend it."""

    seq: int
    pdu: DeliverSm


class PeerUnbound(Event, frozen=True):
    """The SMSC unbound; the session already answered unbind_resp. Close the connection."""


class Unbound(Event, frozen=True):
    """Our unbind was acknowledged. Close the connection."""


class RequestTimedOut(Event, frozen=True):
    """No response to request ``seq`` within the response timeout; it left the window."""

    seq: int
    command_id: int


class LateSubmitResponse(Event, frozen=True):
    """The answer to submit ``seq`` came after its RequestTimedOut, within the session's
    ``late_response_window``: the SMSC did take (or refuse) it. ``message_id`` is None when
    ``command_status`` is not ESME_ROK."""

    seq: int
    command_status: int
    message_id: str | None


class LateWindowClosed(Event, frozen=True):
    """Submit ``seq`` timed out and no late answer came within ``late_response_window``."""

    seq: int


class QueryAnswered(Event, frozen=True):
    """query_sm ``seq`` answered: the SMSC's ``message_state`` (§5.2.28) of the message, its
    ``final_date`` ("" while not final) and network ``error_code``."""

    seq: int
    message_id: str
    message_state: int
    final_date: str
    error_code: int


class QueryFailed(Event, frozen=True):
    """query_sm ``seq`` refused (ESME_RQUERYFAIL: the SMSC does not know the message, or
    another error, or a generic_nack)."""

    seq: int
    command_status: int


class UnmatchedResponse(Event, frozen=True):
    """A response whose sequence number matches nothing outstanding (late, or a peer bug).

    Nothing to do but log it: a late submit_sm_resp after RequestTimedOut lands here.
    """

    seq: int
    command_id: int
    command_status: int


class Notified(Event, frozen=True):
    """A request that takes no answer (alert_notification: a handset is reachable again;
    outbind): nothing to do but say so in the log."""

    seq: int
    command_id: int
    body: bytes


class RequestRefused(Event, frozen=True):
    """The SMSC sent a request we answered with generic_nack: malformed (`reason` says how) or a
    command we do not take (data_sm, query_sm, an SMSC-only or unknown command id)."""

    seq: int
    command_id: int
    command_status: int
    reason: str


class ProtocolError(Event, frozen=True):
    """The connection is unusable (lost framing, enquire_link unanswered...): close it."""

    reason: str
