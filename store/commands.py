"""Every write the store accepts, as a value: one signature per operation, written once.

A command is a small frozen dataclass; `store.write(command)` returns an awaitable of its result
(`Command[R]` → `R`), durable when it completes. The backend applies commands **in batches**: all
commands of one kind that are waiting go through one handler call, which loads their rows with
one query, asks `store.lifecycle` what each happening changes, and writes every change with one
statement per table. So 64 concurrent accepts, or the 100 submit responses of a window, cost a
handful of SQL statements, not a handful each.

Ordering: commands of one kind are applied in the order they were written. Within one commit,
kinds are applied in causal order — accounts and other one-off operations first, then accept,
claim, submit outcomes, receipts, callbacks — and no result is given back before the commit, so a
caller can fire `RecordSubmitAccepted` and then `RecordReceipt` for the same id without awaiting
the first, and the receipt finds its part.

Times are tz-aware UTC datetimes; the store never reads a clock of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

import msgspec

from store.models import (
    Account,
    Callback,
    DeadLetter,
    InboundOutcome,
    Message,
    NewMessage,
    PurgedReceipt,
    ReceiptOutcome,
    StoredRoute,
)
from store.states import Status

R = TypeVar("R")


class Command(Generic[R]):
    """Base of every write command; `R` is what `store.write` resolves to."""

    __slots__ = ()


class CreateAccount(msgspec.Struct, Command[Account], frozen=True):
    """An active account. `AlreadyExists` if the sid is taken."""

    sid: str
    friendly_name: str
    auth_token: str
    now: datetime


class Accept(msgspec.Struct, Command[None], frozen=True):
    """Store a new outbound message as `queued`, due at `now`, with the route decided at accept.
    Resolves to None once durable: the message as stored is `message.stored(now)`.

    `UnknownAccount` if the account does not exist; `AlreadyExists` if the sid does;
    `QueueFull` if `max_unsent` is set and the account has that many unsent messages already
    (scheduled, queued or sending) — the cap the caller's configuration gives the account.
    """

    message: NewMessage
    now: datetime
    max_unsent: int | None = None


class RecordInbound(msgspec.Struct, Command[InboundOutcome], frozen=True):
    """Store one inbound (MO) PDU for `account_sid`, durably, before the SMSC is acknowledged.

    Whole (`concat` None): a new message `received`, sid `sid`. A part (`concat` = (ref, total,
    seqnum)): it joins the `receiving` message of the same carrier, sender, number, ref and
    total that got a part within `reassembly_seconds`, or starts one (sid `sid`); with its last
    part the octets are joined in order, read with `decode(data_coding, octets)` and the message
    is `received`. A part already stored is acknowledged and changes nothing. `decode` is the
    caller's because the store knows nothing of SMPP's data codings.
    """

    sid: str
    account_sid: str
    carrier: str
    from_addr: str
    to_addr: str
    data_coding: int
    payload: bytes
    concat: tuple[int, int, int] | None
    encoding: str
    decode: Callable[[int, bytes], str]
    now: datetime
    reassembly_seconds: float = 3600.0


class CompleteStaleInbound(msgspec.Struct, Command[list[str]], frozen=True):
    """Inbound messages still `receiving` with no part since `before`: the missing parts are not
    coming. Each becomes `received` with the parts it has, in order (its error_message names the
    missing ones), so the text that did arrive is not lost. Returns their sids."""

    before: datetime
    now: datetime
    decode: Callable[[int, bytes], str]
    limit: int = 1000


class Claim(msgspec.Struct, Command[list[Message]], frozen=True):
    """Move up to `limit` due queued messages of `carrier` to `sending`, in due order (next
    attempt time, then acceptance order), each counting an attempt and leased to `owner` until
    `now + lease_seconds`."""

    carrier: str
    limit: int
    owner: str
    lease_seconds: float
    now: datetime


class RecordSubmitAccepted(msgspec.Struct, Command[Status | None], frozen=True):
    """The carrier accepted part `part_index` (0-based) of `sid` and named it
    `carrier_message_id`. When every part is accepted the message is `sent`; receipts held for
    this id (they overtook the response) are applied. Resolves to the message's status after it
    (not the whole message: the delivery engine needs nothing back), None if `sid` is unknown."""

    sid: str
    part_index: int
    carrier: str
    carrier_message_id: str
    now: datetime
    raw_message_id: str | None = None  # as the SMSC wrote it, if it differs from the key
    bind: str | None = None  # which bind of the carrier answered, for the history


class RecordSubmitFailed(msgspec.Struct, Command[Message], frozen=True):
    """The carrier refused a submit or never answered it. The delivery engine's policy decided:
    `retry_at is None` fails the message now (`failed`, `error_code`), otherwise it is queued again
    at `retry_at`; `counts_attempt=False` gives the claimed attempt back (throttling)."""

    sid: str
    carrier: str
    smpp_status: int | None
    error_code: int | None
    error_message: str | None
    retry_at: datetime | None
    counts_attempt: bool
    now: datetime
    reason: str = "submit_failed"
    # When it fails now: why it goes to the dead-letter queue (None: it does not; see
    # `store.lifecycle`).
    dead_letter: str | None = None
    bind: str | None = None


class Requeue(msgspec.Struct, Command[Message], frozen=True):
    """Give back a claimed message whose PDU never left; it keeps its place in line and its
    attempt is not counted."""

    sid: str
    reason: str
    now: datetime


class RecordReceipt(msgspec.Struct, Command[ReceiptOutcome], frozen=True):
    """A delivery receipt for `carrier_message_id`. It matches only a part submitted within the
    last `window_seconds` (a carrier that restarts reissues ids; an old id must never settle a new
    message). Unmatched receipts are held and applied when the submit response is recorded.
    `final=False` (ENROUTE, ACCEPTD…) is history only."""

    carrier: str
    carrier_message_id: str
    stat: str | None
    err: str | None
    done_date: str | None
    error_code: int | None
    delivered: bool
    final: bool
    now: datetime
    window_seconds: float = 72 * 3600.0
    bind: str | None = None


class NoteQueried(msgspec.Struct, Command[int], frozen=True):
    """query_sm asked about these parts of `carrier` (by carrier message id key) and got no
    final answer: not asked again before the query interval. Returns how many parts were noted."""

    carrier: str
    carrier_message_ids: tuple[str, ...]
    now: datetime


class ReleaseScheduled(msgspec.Struct, Command[list[str]], frozen=True):
    """Scheduled messages whose SendAt has come by `now` join the queue (up to `limit`, soonest
    first). Returns their sids."""

    now: datetime
    limit: int = 1000


class Cancel(msgspec.Struct, Command[Message], frozen=True):
    """Cancel message `sid` of `account_sid`: allowed while `scheduled` or `queued` (not yet on
    a carrier), then `canceled`. `UnknownMessage` if the account has no such message;
    `NotCancelable` (with its status) otherwise. One writer orders it against the claim: either
    the cancel comes first and nothing is sent, or the claim does and the cancel is refused."""

    account_sid: str
    sid: str
    now: datetime


class ExpireValidity(msgspec.Struct, Command[list[str]], frozen=True):
    """Queued messages whose validity ran out by `now` become `failed` (30036), up to `limit`,
    soonest expired first. Returns their sids."""

    now: datetime
    limit: int = 1000


class FailGoneCarriers(msgspec.Struct, Command[list[str]], frozen=True):
    """Queued messages whose carrier is not in `configured` fail (30008) into the dead-letter
    queue, up to `limit`: nothing would ever send them. Returns their sids."""

    configured: tuple[str, ...]
    now: datetime
    limit: int = 1000


class ReplayDeadLetter(msgspec.Struct, Command[DeadLetter], frozen=True):
    """Replay dead letter `entry_id`, deliberately, recorded in the entry and the history.

    A message goes back to `queued` with a new attempt budget, due now (its validity starts
    again for as long as it first had); `to_carrier` with `route` (planned for that carrier by
    the caller: the store knows no routing) sends it elsewhere. A callback is due again with its
    attempts from zero. `UnknownDeadLetter` if there is no such entry; `AlreadyReplayed` if it
    was; `IllegalTransition` if the message is no longer `failed`."""

    entry_id: int
    now: datetime
    to_carrier: str | None = None
    route: StoredRoute | None = None


class PurgeDeadLetters(msgspec.Struct, Command[int], frozen=True):
    """Forget these dead-letter entries (the messages stay, `failed`); how many were removed."""

    entry_ids: tuple[int, ...]


class RecoverLeases(msgspec.Struct, Command[int], frozen=True):
    """Queue again messages in `sending` whose lease ran out — and, with `others_are_dead`, every
    lease not held by `owner` (one daemon per SQLite file: another owner is a dead process). A
    shared (PostgreSQL) backend recovers expired leases only. Returns how many were requeued."""

    owner: str
    now: datetime
    others_are_dead: bool = False


class CloseReceiptWindows(msgspec.Struct, Command[int], frozen=True):
    """Parts of `carrier` submitted more than `window_seconds` ago still waiting for a receipt:
    stop matching their ids and note in each message's history that no receipt came. Returns how
    many messages were noted."""

    carrier: str
    window_seconds: float
    now: datetime
    limit: int = 1000


class PurgeOrphanReceipts(msgspec.Struct, Command[list[PurgedReceipt]], frozen=True):
    """Forget held receipts received before `before`: their submit response is never coming.
    Returns what was forgotten (oldest first), for the warning an operator reads."""

    before: datetime


class ClaimCallbacks(msgspec.Struct, Command[list[Callback]], frozen=True):
    """Lease up to `limit` due status callbacks to `owner` for `lease_seconds`: at most one per
    message, its oldest pending one, so callbacks of one message go out in order. A callback
    leased to someone else is not due until its lease runs out."""

    owner: str
    limit: int
    lease_seconds: float
    now: datetime


class ReleaseCallbacks(msgspec.Struct, Command[None], frozen=True):
    """Give back leased callbacks unsent (the sender has no room, or they must wait behind an
    earlier callback of their message): due again at once, claimed in order."""

    callback_ids: tuple[int, ...]
    now: datetime


class CallbackDelivered(msgspec.Struct, Command[None], frozen=True):
    callback_id: int
    now: datetime


class CallbacksDelivered(msgspec.Struct, Command[tuple[int, ...]], frozen=True):
    """Many callbacks answered 2xx, in one command: the sender writes each loop turn's
    deliveries together (one write, one result, one frame entry instead of one per callback).
    Resolves to the ids that were not pending (settled already, or unknown): normally none.
    Never an error for those, so one stale id cannot hold back the others."""

    callback_ids: tuple[int, ...]
    now: datetime


class CallbackRetry(msgspec.Struct, Command[None], frozen=True):
    """Try again at `next_attempt_at`; the message's later callbacks wait behind it."""

    callback_id: int
    error: str
    next_attempt_at: datetime
    now: datetime


class CallbackSuperseded(msgspec.Struct, Command[None], frozen=True):
    """It failed while a newer status of its message is waiting behind it: not tried again
    (state `skipped`, with the error), and the newer one goes at once."""

    callback_id: int
    error: str
    now: datetime


class CallbackGiveUp(msgspec.Struct, Command[None], frozen=True):
    """Stop trying (state `failed`, into the dead-letter queue); the message's next callback
    becomes due."""

    callback_id: int
    error: str
    now: datetime
