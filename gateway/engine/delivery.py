"""The delivery engine: joins the store and a carrier's SMPP bind.

One `CarrierLane` per carrier claims due messages from the store (leasing them to this process),
keeps the bind's window full, and turns each submit_sm_resp and delivery receipt into a state
transition in the store. It never holds more than a couple of windows of messages in memory, so
a large backlog stays in the store, where it is durable. Every transition the lane causes may
have a status callback waiting in the store's outbox: the lane pokes the webhook sender after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from carriers.smpp.client import ClientClosed, SmppClient
from carriers.smpp.errors import SubmitNotSent, SubmitUncertain
from carriers.smpp.pdus import DeliverSm
from carriers.smpp.receipts import parse_receipt
from carriers.smpp.submits import build_submits
from carriers.smpp.text import message_text
from gateway.clock import utc_now
from gateway.config import DeliveryConfig
from gateway.engine.backoff import backoff_delay
from gateway.engine.outcomes import SubmitVerdict, classify_receipt, classify_submit
from routing.numbers import stored_address
from routing.text import plan_text
from store.models import Message

log = structlog.get_logger("gateway.delivery")


class CarrierLane:
    """Moves one carrier's queued messages through its bind, and its receipts back to the store."""

    def __init__(
        self,
        *,
        carrier: str,
        client: SmppClient,
        store,
        config: DeliveryConfig,
        owner: str,
        window: int,
        on_transition: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self.carrier = carrier
        self._client = client
        self._store = store
        self._config = config
        self._owner = owner
        self._capacity = max(2 * window, 2)
        self._on_transition = on_transition
        self._clock = clock
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._stopping = False
        self._inflight: set[asyncio.Task] = set()
        self._slot_freed = asyncio.Event()

    def wake(self) -> None:
        """New work may be due (a message was accepted): look at the store now."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            if not self._client.bound:
                try:
                    await self._wait_for(self._client.wait_bound(), 1.0)
                except ClientClosed:
                    return  # stopping while the carrier was down: nothing is in flight
                continue
            # Claim in batches: wait while more than a window's worth is still in flight, then
            # top up to two windows at once. Claiming each freed slot separately cost one store
            # transaction per message (a third of the writer thread in a profile).
            if len(self._inflight) > self._capacity // 2:
                self._slot_freed.clear()
                await self._wait_for(self._slot_freed.wait(), 1.0)
                continue
            self._wake.clear()
            claimed = await self._store.claim_due(
                self.carrier,
                limit=min(self._capacity - len(self._inflight), self._config.batch),
                owner=self._owner,
                lease_seconds=self._config.lease_seconds,
                now=self._clock(),
            )
            if claimed:
                self._on_transition()
                for message in claimed:
                    task = asyncio.create_task(self._deliver_guarded(message))
                    self._inflight.add(task)
                    task.add_done_callback(self._finished)
                continue
            timeout = await self._idle_timeout()
            await self._wait_for(self._wake.wait(), timeout)

    async def _idle_timeout(self) -> float:
        """Sleep until the next retry falls due, a new message wakes us, or a second passes."""
        due = await self._store.next_due_at(self.carrier)
        if due is None:
            return 1.0
        return min(1.0, max(0.01, (due - self._clock()).total_seconds()))

    async def _wait_for(self, awaitable, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(awaitable, timeout)

    def _finished(self, task: asyncio.Task) -> None:
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

    # -- one message ----------------------------------------------------------------------

    def _submits(self, message: Message):
        source = stored_address(message.from_addr)
        destination = stored_address(message.to_addr)
        text = plan_text(message.body)
        return build_submits(
            source_addr=source.digits,
            source_ton=int(source.ton),
            source_npi=int(source.npi),
            destination_addr=destination.digits,
            dest_ton=int(destination.ton),
            dest_npi=int(destination.npi),
            parts=text.parts,
            encoding=text.encoding,
            reference=int(message.sid[-4:], 16),
        )

    async def _deliver_guarded(self, message: Message) -> None:
        """Deliver, and never leave a message stuck in `sending` because of a bug or a surprise:
        an unexpected error is logged with its traceback and the message retried later."""
        try:
            await self._deliver(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("delivery.crashed", sid=message.sid, carrier=self.carrier)
            await self._retry(message, None, f"internal error: {exc!r}", 30008)

    async def _deliver(self, message: Message) -> None:
        sid = message.sid
        for index, pdu in enumerate(self._submits(message)):
            try:
                result = await self._client.submit(pdu)
            except SubmitNotSent as exc:
                await self._store.requeue(sid, reason=f"not sent: {exc}", now=self._clock())
                log.info("submit.requeued", sid=sid, carrier=self.carrier, reason=str(exc))
                self._on_transition()
                self.wake()
                return
            except SubmitUncertain as exc:
                await self._retry(message, None, f"uncertain, duplicate possible: {exc}", None)
                return
            outcome = classify_submit(result.command_status)
            if outcome.verdict is SubmitVerdict.ACCEPTED:
                await self._store.record_submit_accepted(
                    sid, index, self.carrier, result.message_id, self._clock()
                )
                log.debug(
                    "submit.accepted",
                    sid=sid,
                    carrier=self.carrier,
                    part=index,
                    message_id=result.message_id,
                )
                continue
            if outcome.verdict is SubmitVerdict.FAILED:
                await self._fail(message, result.command_status, outcome)
            else:
                await self._retry(
                    message, result.command_status, outcome.error_message, outcome.error_code
                )
            return
        self._on_transition()

    async def _fail(self, message: Message, smpp_status: int, outcome) -> None:
        await self._store.record_submit_failed(
            message.sid,
            carrier=self.carrier,
            smpp_status=smpp_status,
            error_code=outcome.error_code,
            error_message=outcome.error_message,
            permanent=True,
            retry_at=None,
            now=self._clock(),
        )
        log.warning(
            "submit.failed",
            sid=message.sid,
            carrier=self.carrier,
            smpp_status=smpp_status,
            error_code=outcome.error_code,
        )
        self._on_transition()

    async def _retry(self, message: Message, smpp_status, reason: str, error_code) -> None:
        now = self._clock()
        exhausted = message.attempts >= self._config.max_attempts
        delay = backoff_delay(
            message.attempts, self._config.retry_base, self._config.retry_max, self._rng
        )
        await self._store.record_submit_failed(
            message.sid,
            carrier=self.carrier,
            smpp_status=smpp_status,
            error_code=error_code or 30008,
            error_message=(
                f"Retries exhausted after {message.attempts} attempts: {reason}"
                if exhausted
                else reason
            ),
            permanent=exhausted,
            retry_at=None if exhausted else now + timedelta(seconds=delay),
            now=now,
        )
        log.info(
            "submit.retry_scheduled" if not exhausted else "submit.failed",
            sid=message.sid,
            carrier=self.carrier,
            smpp_status=smpp_status,
            attempt=message.attempts,
            delay=round(delay, 3),
            reason=reason,
        )
        self._on_transition()
        self.wake()  # the lane may be asleep for longer than this retry's delay

    # -- receipts -------------------------------------------------------------------------

    async def on_deliver(self, pdu: DeliverSm) -> None:
        """Record a delivery receipt durably; the client acknowledges the PDU only after this."""
        receipt = parse_receipt(pdu)
        if receipt is None:
            # Inbound (MO) messages have no owner or webhook yet (a later issue). Acknowledge it so
            # the SMSC does not redeliver forever, and log everything needed to recover it.
            log.warning(
                "inbound.unrouted",
                carrier=self.carrier,
                source=pdu.source_addr,
                destination=pdu.destination_addr,
                data_coding=pdu.data_coding,
                esm_class=pdu.esm_class,
                text=message_text(pdu.short_message, pdu.esm_class, pdu.data_coding),
            )
            return
        verdict = classify_receipt(receipt.stat)
        if not verdict.final:
            log.info(
                "receipt.intermediate",
                carrier=self.carrier,
                message_id=receipt.message_id,
                stat=receipt.stat,
            )
            return
        outcome = await self._store.record_receipt(
            self.carrier,
            receipt.message_id,
            stat=receipt.stat,
            err=receipt.err,
            done_date=receipt.done_date,
            error_code=verdict.error_code,
            delivered=verdict.delivered,
            now=self._clock(),
        )
        log.debug(
            "receipt.recorded",
            carrier=self.carrier,
            message_id=receipt.message_id,
            stat=receipt.stat,
            sid=outcome.message_sid,
            matched=outcome.matched,
        )
        self._on_transition()
