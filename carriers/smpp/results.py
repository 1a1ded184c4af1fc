"""Plain data the client hands back: the outcome of one submit, and running counters."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from carriers.smpp.constants import ESME_ROK, status_name


class SubmitResult(msgspec.Struct, frozen=True):
    """The SMSC's answer to one submit_sm. A carrier error is a result, not an exception:
    ``command_status`` says what (ESME_RTHROTTLED, ESME_RINVDSTADR...) and the caller decides
    whether to retry."""

    command_status: int
    message_id: str | None
    bind: str | None = None  # which bind of the carrier answered (BindPool's label), if known

    @property
    def ok(self) -> bool:
        return self.command_status == ESME_ROK

    @property
    def status_name(self) -> str:
        return status_name(self.command_status)


class QueryResult(msgspec.Struct, frozen=True):
    """The SMSC's answer to one query_sm: ``message_state`` (SMPP 3.4 §5.2.28, None when the
    query was refused: ESME_RQUERYFAIL, the SMSC does not know the message), ``final_date``
    ("" while not final) and the network ``error_code``."""

    command_status: int
    message_state: int | None
    final_date: str = ""
    error_code: int = 0

    @property
    def ok(self) -> bool:
        return self.command_status == ESME_ROK


@dataclass(slots=True)
class ClientStats:
    """Counters since the client was created (for metrics; never reset by reconnects)."""

    submitted: int = 0  # submit_sm written to a connection
    accepted: int = 0  # answered ESME_ROK
    rejected: int = 0  # answered with an error status
    uncertain: int = 0  # written, never answered (timeout or connection lost)
    receipts: int = 0  # deliver_sm that were delivery receipts
    inbound: int = 0  # deliver_sm that were MO messages
    reconnects: int = 0  # connections lost after a successful bind
    bind_refusals: int = 0  # binds the SMSC refused
    queries: int = 0  # query_sm written
