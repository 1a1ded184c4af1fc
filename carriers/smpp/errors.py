"""The one exception hierarchy of the SMPP layer.

Every error carries a ``command_status``: for codec errors it is the status the peer must be
answered with (so the session can turn a decode failure straight into a ``generic_nack``), for
the others it is the closest SMPP status, which gives callers a stable numeric code to log and map.
A carrier's *rejection* of a message is not an exception: it is a ``SubmitResult`` with a status.
"""

from __future__ import annotations

from carriers.smpp.constants import (
    ESME_RINVBNDSTS,
    ESME_RINVCMDLEN,
    ESME_RMSGQFUL,
    ESME_RSYSERR,
    status_name,
)


class SmppError(Exception):
    """Base of every error raised by ``carriers.smpp``."""

    command_status: int = ESME_RSYSERR

    def __init__(self, message: str, *, command_status: int | None = None) -> None:
        super().__init__(message)
        if command_status is not None:
            self.command_status = command_status


# --- codec ----------------------------------------------------------------------------------
class SmppCodecError(SmppError):
    """Bytes could not be turned into a PDU, or a PDU into bytes."""


class PduEncodeError(SmppCodecError):
    """A PDU we were asked to send violates the specification (field too long, out of range).

    Raised before anything is written, so nothing malformed ever reaches a carrier.
    """


class PduDecodeError(SmppCodecError):
    """A frame's body is malformed. The stream itself is intact: answer and carry on.

    ``command_status`` is what to put in the ``generic_nack`` (e.g. ``ESME_RINVCMDLEN``).
    """

    def __init__(
        self, message: str, *, command_id: int, sequence_number: int, command_status: int
    ) -> None:
        super().__init__(message, command_status=command_status)
        self.command_id = command_id
        self.sequence_number = sequence_number


class FramingError(SmppCodecError):
    """The byte stream lost its framing (impossible command_length): the connection must close.

    After this no later byte can be trusted to start a PDU, so there is nothing to answer.
    """

    command_status = ESME_RINVCMDLEN


# --- session (local misuse, not peer behaviour) ---------------------------------------------
class NotBound(SmppError):
    """A command needs a bind state the session is not in (e.g. submit before Bound)."""

    command_status = ESME_RINVBNDSTS


class WindowFull(SmppError):
    """Every window slot holds an unanswered request; wait for a response before submitting."""

    command_status = ESME_RMSGQFUL


class LocalProtocolError(SmppError):
    """The session's owner asked for something the protocol forbids (e.g. a double ack)."""


# --- client ---------------------------------------------------------------------------------
class SubmitNotSent(SmppError):
    """The submit_sm was never written (connection lost or client closing): safe to requeue."""


class SubmitUncertain(SmppError):
    """The submit_sm was written but no response came (timeout or connection lost).

    The SMSC may have accepted it: resending risks a duplicate, not resending risks a loss.
    The caller decides; the receipt, if one comes, cannot be correlated to a message id.
    """


class BindRefused(SmppError):
    """The SMSC answered our bind with an error status (bad credentials, already bound...)."""

    def __init__(self, command_status: int) -> None:
        super().__init__(
            f"bind refused with {status_name(command_status)}", command_status=command_status
        )


class QueryUnanswered(SmppError):
    """A query_sm got no answer (timeout, connection lost, or no bind could send it); nothing
    is known of the message's state: ask again later."""
