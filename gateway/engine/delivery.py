"""The delivery engine: joins the store and a carrier's SMPP bind.

One `CarrierLane` per carrier claims due messages from the store (leasing them to this process),
keeps the bind's window full, and turns each submit_sm_resp and delivery receipt into a store
command. What a carrier's answer means — retry, fail, how long to wait, whether it spends the retry
budget — is the policy's (`gateway.engine.policy`); what it does to the message is the lifecycle's
(`store.lifecycle`). The lane holds at most two windows of messages in memory, so a backlog stays in
the store, where it is durable.

A store that cannot commit (disk full, database locked) never kills the lane: claiming pauses and
resumes with backoff, and an answer the carrier already gave is kept in memory and written again
until it is durable — a submit the carrier accepted must not be sent twice because a write failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import structlog

from carriers.smpp.client import ClientClosed, SmppClient
from carriers.smpp.errors import SubmitNotSent, SubmitUncertain
from carriers.smpp.inbound import e164_or_as_is, read_inbound
from carriers.smpp.message_ids import message_id_key
from carriers.smpp.pdus import DeliverSm, SubmitSm
from carriers.smpp.pool import BindPool
from carriers.smpp.receipts import parse_receipt
from carriers.smpp.submits import build_submits
from carriers.smpp.text import message_text
from carriers.smpp.times import validity_field
from gateway.clock import utc_now
from gateway.config import DeliveryConfig
from gateway.engine.inbound import InboundOwners, record_command
from gateway.engine.policy import (
    CarrierPolicy,
    SubmitDecision,
    SubmitOutcome,
    SubmitVerdict,
    backoff_delay,
    classify_receipt,
    classify_submit,
    decide_submit_failure,
    decide_uncertain_submit,
)
from routing.numbers import stored_address
from routing.text import plan_text
from store.base import Store
from store.commands import (
    Claim,
    Command,
    RecordReceipt,
    RecordSubmitAccepted,
    RecordSubmitFailed,
    Requeue,
)
from store.errors import StoreError, StoreUnavailable, UnknownAccount
from store.models import Message, SmppAddress, StoredRoute
from store.states import Status

log = structlog.get_logger("gateway.delivery")

R = TypeVar("R")

STORE_RETRY_MAX = 5.0
"""Longest pause between tries of a write the store could not commit."""


class CarrierLane:
    """Moves one carrier's queued messages through its bind, and its receipts back to the store."""

    def __init__(
        self,
        *,
        carrier: str,
        client: SmppClient | BindPool,
        store: Store,
        config: DeliveryConfig,
        policy: CarrierPolicy,
        owner: str,
        window: int,
        receipt_id_format: str = "auto",
        inbound: InboundOwners | None = None,
        default_data_coding: int = 0,
        validity_format: str = "relative",
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self.carrier = carrier
        self._id_format = receipt_id_format  # submit response and receipt ids as one key
        self._inbound = inbound if inbound is not None else InboundOwners({})
        self._validity_format = validity_format  # how submit_sm writes validity_period
        self._default_data_coding = default_data_coding  # GSM-7 as 0x00 or, for some, 0x01
        self._client = client
        self._store = store
        self._config = config
        self._policy = policy
        self._owner = owner
        self._capacity = max(2 * window, 2)
        self._clock = clock
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._stopping = False
        self._inflight: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._throttles = 0  # throttled answers in a row on this carrier
        self.store_failures = 0  # writes that had to be tried again

    def wake(self) -> None:
        """New work may be due (a message was accepted): look at the store now."""
        self._wake.set()

    async def run(self) -> None:
        pause = 0
        while not self._stopping:
            if not self._client.bound:
                try:
                    await self._wait_for(self._client.wait_bound(), 1.0)
                except ClientClosed:
                    return  # stopping while the carrier was down: nothing is in flight
                continue
            # Claim in batches: wait while more than a window's worth is still in flight, then
            # top up to two windows at once (one store transaction per batch, not per message).
            if len(self._inflight) > self._capacity // 2:
                self._slot_freed.clear()
                await self._wait_for(self._slot_freed.wait(), 1.0)
                continue
            self._wake.clear()
            try:
                claimed = await self._store.write(
                    Claim(
                        self.carrier,
                        min(self._capacity - len(self._inflight), self._config.batch),
                        self._owner,
                        self._config.lease_seconds,
                        self._clock(),
                    )
                )
            except StoreError as exc:
                pause += 1
                delay = backoff_delay(pause, 0.2, STORE_RETRY_MAX, self._rng)
                log.warning("lane.paused", carrier=self.carrier, error=str(exc), retry_in=delay)
                await self._wait_for(asyncio.Event().wait(), delay)
                continue
            if pause:
                log.warning("lane.resumed", carrier=self.carrier)
                pause = 0
            if claimed:
                for message in claimed:
                    task = asyncio.create_task(self._deliver_guarded(message))
                    self._inflight.add(task)
                    task.add_done_callback(self._finished)
                continue
            timeout = await self._idle_timeout()  # before the wait's coroutine exists
            await self._wait_for(self._wake.wait(), timeout)

    async def _idle_timeout(self) -> float:
        """Sleep until the next retry falls due, a new message wakes us, or a second passes."""
        try:
            due = await self._store.next_due_at(self.carrier)
        except StoreError:
            return 1.0
        if due is None:
            return 1.0
        return min(1.0, max(0.01, (due - self._clock()).total_seconds()))

    @staticmethod
    async def _wait_for(awaitable, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(awaitable, timeout)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery.unrecorded", carrier=self.carrier, error=repr(task.exception()))

    async def stop(self, timeout: float) -> None:
        """Stop claiming; give in-flight submits `timeout` seconds to get their responses."""
        self._stopping = True
        self._wake.set()
        self._slot_freed.set()
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=timeout)

    async def drain(self, timeout: float) -> None:
        """After the bind is closed: let the remaining tasks record requeues, then cancel."""
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=timeout)
            for task in pending:
                task.cancel()

    async def _durably(self, command: Command[R]) -> R:
        """Write `command`, trying again while the store cannot commit: what the carrier already
        answered must reach the store, or the message would be sent twice."""
        failures = 0
        while True:
            try:
                return await self._store.write(command)
            except StoreUnavailable as exc:
                failures += 1
                self.store_failures += 1
                if self._stopping and failures > 3:
                    raise
                delay = backoff_delay(failures, 0.1, STORE_RETRY_MAX, self._rng)
                log.warning(
                    "store.write_retried",
                    carrier=self.carrier,
                    command=type(command).__name__,
                    error=str(exc),
                    retry_in=round(delay, 3),
                )
                await asyncio.sleep(delay)

    # -- one message ----------------------------------------------------------------------

    def _submits(self, message: Message) -> list[SubmitSm]:
        route = message.route or _legacy_route(message)
        source, destination = route.source, route.destination
        return build_submits(
            source_addr=source.addr,
            source_ton=source.ton,
            source_npi=source.npi,
            destination_addr=destination.addr,
            dest_ton=destination.ton,
            dest_npi=destination.npi,
            parts=route.parts,
            encoding=message.encoding,
            reference=concat_reference(message.sid),
            long_messages=route.long_messages,
            default_data_coding=self._default_data_coding,
            validity_period=validity_field(
                message.validity_until, self._clock(), self._validity_format
            ),
        )

    async def _deliver_guarded(self, message: Message) -> None:
        """Deliver, and never leave a message stuck in `sending` because of a bug or a surprise:
        an unexpected error is logged with its traceback and the message retried later."""
        try:
            await self._deliver(message)
        except asyncio.CancelledError:
            raise
        except StoreUnavailable as exc:
            if not self._stopping:
                raise  # pragma: no cover - `_durably` only gives up while stopping
            # Stopping while the store still cannot commit: what the carrier said is lost with
            # this process; the message's lease returns it to the queue at the next start.
            log.warning(
                "delivery.unrecorded_at_stop",
                sid=message.sid,
                carrier=self.carrier,
                error=str(exc),
                then="queued again when its lease runs out (a duplicate submit is possible)",
            )
        except Exception as exc:
            log.exception("delivery.crashed", sid=message.sid, carrier=self.carrier)
            await self._not_accepted(message, None, None, f"internal error: {exc!r}")

    async def _deliver(self, message: Message) -> None:
        sid = message.sid
        for index, pdu in enumerate(self._submits(message)):
            if index in message.accepted_parts:
                continue  # taken by the carrier on an earlier attempt: never sent twice
            try:
                result = await self._client.submit(pdu)
            except SubmitNotSent as exc:
                await self._durably(Requeue(sid, f"not sent: {exc}", self._clock()))
                log.info("submit.requeued", sid=sid, carrier=self.carrier, reason=str(exc))
                self.wake()
                return
            except SubmitUncertain as exc:
                decision = decide_uncertain_submit(
                    attempts=message.attempts,
                    policy=self._policy,
                    now=self._clock(),
                    rng=self._rng,
                    reason=str(exc),
                )
                # The history says so: the SMSC may have taken this submit.
                await self._record_failure(
                    message, None, decision, throttled=False, reason="submit_uncertain"
                )
                return
            outcome = classify_submit(result.command_status)
            if outcome.verdict is not SubmitVerdict.ACCEPTED:
                await self._not_accepted(
                    message, result.command_status, outcome, None, bind=result.bind
                )
                return
            self._throttles = 0
            raw = result.message_id or ""
            key = message_id_key(raw, self._id_format, "response")
            await self._durably(
                RecordSubmitAccepted(
                    sid,
                    index,
                    self.carrier,
                    key,
                    self._clock(),
                    raw if raw != key else None,  # kept for query_sm, which names it as written
                    result.bind,
                )
            )

    async def _not_accepted(
        self,
        message: Message,
        smpp_status: int | None,
        outcome: SubmitOutcome | None,
        reason: str | None,
        *,
        bind: str | None = None,
    ) -> None:
        now = self._clock()
        throttled = outcome is not None and outcome.verdict is SubmitVerdict.THROTTLED
        self._throttles = self._throttles + 1 if throttled else 0
        decision = decide_submit_failure(
            outcome,
            attempts=message.attempts,
            policy=self._policy,
            now=now,
            rng=self._rng,
            reason=reason,
            throttles=max(self._throttles, 1),
        )
        await self._record_failure(message, smpp_status, decision, throttled=throttled, bind=bind)

    async def _record_failure(
        self,
        message: Message,
        smpp_status: int | None,
        decision: SubmitDecision,
        *,
        throttled: bool,
        reason: str = "submit_failed",
        bind: str | None = None,
    ) -> None:
        now = self._clock()
        if not throttled:
            self._throttles = 0
        await self._durably(
            RecordSubmitFailed(
                message.sid,
                self.carrier,
                smpp_status,
                decision.error_code,
                decision.error_message,
                decision.retry_at,
                decision.counts_attempt,
                now,
                reason="throttled" if throttled else reason,
                dead_letter=decision.dead_letter,
                bind=bind,
            )
        )
        log.info(
            "submit.failed" if decision.permanent else "submit.retry_scheduled",
            sid=message.sid,
            carrier=self.carrier,
            smpp_status=smpp_status,
            attempt=message.attempts,
            counted=decision.counts_attempt,
            retry_at=None if decision.retry_at is None else decision.retry_at.isoformat(),
            reason=decision.error_message,
        )
        self.wake()  # the lane may be asleep for longer than this retry's delay

    # -- receipts and inbound messages ----------------------------------------------------

    async def _on_inbound(self, pdu: DeliverSm) -> None:
        """Store an inbound (MO) PDU durably (the client acknowledges it only after this); one
        that nobody owns is acknowledged and logged whole (gateway/engine/inbound.py: why)."""
        mo = read_inbound(pdu)
        to = e164_or_as_is(mo.destination_addr, mo.destination_ton)
        account = self._inbound.owner_of(to)
        if account is None:
            self._dropped(
                "inbound.unrouted", pdu, why="no account owns this number ([inbound] numbers or "
                "default_account)", data_coding=pdu.data_coding, esm_class=pdu.esm_class,
            )  # fmt: skip
            return
        command = record_command(
            self.carrier, mo, account, self._clock(), self._inbound.reassembly_seconds
        )
        try:
            outcome = await self._store.write(command)
        except UnknownAccount as exc:
            self._dropped("inbound.unrouted", pdu, why=str(exc), data_coding=pdu.data_coding)
            return
        log.info(
            "inbound.received" if outcome.status is Status.RECEIVED else "inbound.part_received",
            carrier=self.carrier,
            sid=outcome.message_sid,
            account_sid=account,
            source=command.from_addr,
            destination=command.to_addr,
            part=None if mo.concat is None else f"{mo.concat.seqnum}/{mo.concat.total}",
            duplicate=outcome.duplicate or None,
        )

    def _dropped(self, event: str, pdu: DeliverSm, **fields: Any) -> None:
        """A deliver_sm acknowledged without a trace in the store: logged whole instead."""
        log.warning(
            event,
            carrier=self.carrier,
            source=pdu.source_addr,
            destination=pdu.destination_addr,
            text=message_text(pdu.short_message, pdu.esm_class, pdu.data_coding),
            **fields,
        )

    async def on_deliver(self, pdu: DeliverSm, bind: str | None = None) -> None:
        """Record a delivery receipt durably; the client acknowledges the PDU only after this
        (if the store cannot commit, the error reaches the client, which answers the SMSC with a
        temporary error so it delivers the receipt again). `bind`: which bind brought it."""
        receipt = parse_receipt(pdu)
        if receipt is None:
            await self._on_inbound(pdu)
            return
        if not receipt.message_id:
            # Nothing can ever match it. Answering an error would make the SMSC deliver it again
            # and again; acknowledge it, and log it whole for whoever reads the carrier's logs.
            self._dropped("receipt.without_id", pdu, stat=receipt.stat, err=receipt.err)
            return
        verdict = classify_receipt(receipt.stat)
        outcome: Any = await self._store.write(
            RecordReceipt(
                self.carrier,
                message_id_key(receipt.message_id, self._id_format, "receipt"),
                receipt.stat,
                receipt.err,
                receipt.done_date,
                verdict.error_code,
                verdict.delivered,
                verdict.final,
                self._clock(),
                self._policy.receipt_window,
                bind,
            )
        )
        if not outcome.matched:
            log.info(
                "receipt.held",
                carrier=self.carrier,
                message_id=receipt.message_id,
                stat=receipt.stat,
            )


def concat_reference(sid: str) -> int:
    """The concatenation reference of a long message's parts: 8 bits, from its SID's random tail.

    8 bits because routing splits for the 6-octet UDH of an 8-bit reference (153 septets / 67
    UCS-2 units a part, `routing.text`): a 16-bit reference makes the UDH one octet longer, and
    every full part one octet too long for an SMS (`build_submits` refuses such a part). The
    reference only has to differ between long messages in flight to one handset at once.
    """
    return int(sid[-2:], 16)


def _legacy_route(message: Message) -> StoredRoute:
    """The route of a message stored before routes were kept (schema v1): planned again, once."""
    source = stored_address(message.from_addr)
    destination = stored_address(message.to_addr)
    return StoredRoute(
        SmppAddress(source.digits, int(source.ton), int(source.npi)),
        SmppAddress(destination.digits, int(destination.ton), int(destination.npi)),
        tuple(plan_text(message.body).parts),
    )
