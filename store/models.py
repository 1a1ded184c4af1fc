"""Values that cross the store's boundary: small frozen values, never rows or dicts.

They are msgspec Structs rather than frozen dataclasses because every message's values are built,
and cross the writer process's channel, several times: a frozen slots dataclass spends ~1.6 µs in
`__init__` on `object.__setattr__` per field (8 fields; a Struct: 0.13 µs), and pickles 5x slower
than a Struct even with a hand-written reducer. Measured with `bench/store.py --callbacks`:
full lifecycles/s 1,181 and 1,102 → 1,486 and 1,450 (+29 %), interleaved runs. The same holds
for the lifecycle's, the SMPP session's and routing's values (STYLE.md allows either).

Times are tz-aware UTC `datetime`s on this side of the boundary; how a backend stores them is its
own business. Callers never get a live database object, so nothing they hold can go stale or be
used from the wrong thread.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from store.states import Status

OUTBOUND_API = "outbound-api"
INBOUND = "inbound"


class Account(msgspec.Struct, frozen=True):
    sid: str
    friendly_name: str
    auth_token: str
    status: str
    date_created: datetime
    date_updated: datetime


class SmppAddress(msgspec.Struct, frozen=True):
    """An address as the carrier gets it: digits (or alphanumeric text) with its TON and NPI."""

    addr: str
    ton: int
    npi: int


class StoredRoute(msgspec.Struct, frozen=True):
    """The route decided once, at accept, and stored with the message: the delivery engine reads it
    instead of planning again, so a change of routing rules never changes a message in flight."""

    source: SmppAddress
    destination: SmppAddress
    parts: tuple[str, ...]  # the body split into segments, in the message's `encoding`
    long_messages: str = "udh"  # how the parts go: udh | udh16 | sar | payload (routing.text)


class NewMessage(msgspec.Struct, frozen=True):
    """An outbound message as the API accepted and routing planned it, before it is stored."""

    sid: str
    account_sid: str
    from_addr: str
    to_addr: str
    body: str
    num_segments: int
    encoding: str
    carrier: str
    status_callback: str | None = None
    route: StoredRoute | None = None
    # Not submitted by then: `failed` 30036 (ValidityPeriod). None: no limit (older messages).
    validity_until: datetime | None = None
    # SendAt: stored `scheduled`, queued at this time. None: queued at once.
    send_at: datetime | None = None

    def stored(self, now: datetime) -> Message:
        """The message as `Accept` at `now` stores it: what the API answers with, built here
        instead of read back (or sent back by the writer)."""
        return Message(
            sid=self.sid,
            account_sid=self.account_sid,
            direction=OUTBOUND_API,
            from_addr=self.from_addr,
            to_addr=self.to_addr,
            body=self.body,
            status=Status.QUEUED if self.send_at is None else Status.SCHEDULED,
            num_segments=self.num_segments,
            encoding=self.encoding,
            carrier=self.carrier,
            status_callback=self.status_callback,
            error_code=None,
            error_message=None,
            attempts=0,
            date_created=now,
            date_updated=now,
            date_sent=None,
            route=self.route,
            validity_until=self.validity_until,
        )


class Message(msgspec.Struct, frozen=True):
    sid: str
    account_sid: str
    direction: str
    from_addr: str
    to_addr: str
    body: str
    status: Status
    num_segments: int
    encoding: str
    carrier: str
    status_callback: str | None
    error_code: int | None
    error_message: str | None
    attempts: int
    date_created: datetime
    date_updated: datetime
    date_sent: datetime | None
    route: StoredRoute | None = None  # None only for messages stored before routes were kept
    validity_until: datetime | None = None  # None only for messages stored before it was kept
    # Parts (0-based) the carrier already accepted: a claim of a message sent before in part
    # says which, and a retry submits only the others. Filled by Claim only.
    accepted_parts: tuple[int, ...] = ()


class MessageEvent(msgspec.Struct, frozen=True):
    """One line of a message's history.

    `to_status is None` means the event changed no status: a receipt for one part of several, an
    intermediate or duplicate receipt, a receipt that arrived after the message was final, a submit
    response for a message no longer in `sending`. Raw carrier values (`smpp_status`, receipt
    `stat`/`err`) are kept here even when they were mapped to a Twilio error code on the message.
    """

    id: int
    message_sid: str
    at: datetime
    from_status: Status | None
    to_status: Status | None
    reason: str
    carrier: str | None
    smpp_status: int | None
    receipt_stat: str | None
    receipt_err: str | None
    attempt: int | None
    bind: str | None = None  # which bind of the carrier sent the submit or brought the receipt


class DeadLetter(msgspec.Struct, frozen=True):
    """An entry of the dead-letter queue: a message that failed for want of a send (`kind`
    "message": retries exhausted, no answer, validity run out, carrier gone), or a status
    callback that never got through ("callback", `callback_id`). `replayed_at` is set once an
    operator replayed it (then `replayed_to` names the carrier, for a message)."""

    id: int
    kind: str
    message_sid: str
    callback_id: int | None
    account_sid: str
    carrier: str
    reason: str
    error_code: int | None
    error_message: str | None
    attempts: int
    entered_at: datetime
    replayed_at: datetime | None = None
    replayed_to: str | None = None


class CallbackRecord(msgspec.Struct, frozen=True):
    """One status callback of a message as the outbox holds it, for the operator's timeline:
    `state` pending, done, failed (in the dead-letter queue) or skipped (superseded)."""

    id: int
    status: Status
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class DeadLetterFilter(msgspec.Struct, frozen=True):
    """Which dead letters a listing (or a bulk replay or purge) covers; None: any."""

    carrier: str | None = None
    account_sid: str | None = None
    error_code: int | None = None
    since: datetime | None = None
    kind: str | None = None
    message_sid: str | None = None
    include_replayed: bool = False
    limit: int = 1000
    after_id: int = 0  # keyset paging: entries with a larger id


class Callback(msgspec.Struct, frozen=True):
    """A status-callback delivery that is due, joined with what the webhook form needs.

    `status` and `error_code` are those of the transition being reported (not the message's current
    status, which may have moved on); `raw_done_date` is the receipt's `done date` (YYMMDDhhmm) when
    the transition came from a receipt that carried one. `after` is the id of the message's
    previous callback still pending when this one was written (it must go out first), or None
    when this one is first in line.
    """

    id: int
    message_sid: str
    account_sid: str
    url: str
    status: Status
    error_code: int | None
    raw_done_date: str | None
    attempts: int
    from_addr: str
    to_addr: str
    after: int | None = None


class ReceiptOutcome(msgspec.Struct, frozen=True):
    """What a delivery receipt did.

    `matched=False`: no submitted part carries this carrier message id (yet); the receipt was held
    as an orphan and will be applied when the submit response is recorded. `new_status` is the
    status the message moved to, or None when the receipt changed no status.
    """

    message_sid: str | None
    new_status: Status | None
    matched: bool


class InboundOutcome(msgspec.Struct, frozen=True):
    """What an inbound PDU did: the message it belongs to, that message's status now
    (`receiving` or `received`), and whether the PDU was a part already stored."""

    message_sid: str
    status: Status
    duplicate: bool = False


class PurgedReceipt(msgspec.Struct, frozen=True):
    """A held receipt forgotten because no submit response ever carried its id."""

    carrier: str
    carrier_message_id: str
    stat: str | None
    received_at: datetime


class PartToQuery(msgspec.Struct, frozen=True):
    """A submitted part still waiting for its receipt, due for a query_sm: its carrier message id
    as the SMSC wrote it (`query_id`), the key receipts match (`carrier_message_id`), and the
    source address it was submitted from (None for a message stored before routes were kept:
    its `from_addr` is then all there is)."""

    message_sid: str
    part_index: int
    carrier_message_id: str
    query_id: str
    source: SmppAddress | None
    from_addr: str
    submitted_at: datetime


class WriterStats(msgspec.Struct, frozen=True):
    """Counters of the group-commit writer, for tests, benchmarks and metrics."""

    commits: int
    ops: int
    failed_ops: int
    failed_commits: int
    largest_batch: int
