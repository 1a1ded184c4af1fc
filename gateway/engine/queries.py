"""query_sm, where the carrier needs it: asking about messages whose receipt does not come.

Some SMSCs send no delivery receipts at all (or only for some routes), so a message stays `sent`
for ever though the SMSC knows it was delivered. With `query_after` set for a carrier, each part
still waiting for its receipt that long after its submit is asked about with query_sm (named as
its submit_sm_resp named it, from the address it was sent from); a final answer is recorded
exactly as a receipt with that state would be (`RecordReceipt`, the same finality and Twilio codes),
and an answer that is not final yet (ENROUTE, ACCEPTED) — or none, or ESME_RQUERYFAIL — is noted,
and the part is asked again `query_interval` later, until its receipt window closes.

What an answer means is decided by `read_answer`, free of I/O; `ReceiptQuerier` only fetches due
parts, asks, and writes what the answers say.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from carriers.smpp import constants as c
from carriers.smpp.errors import QueryUnanswered, SmppError
from carriers.smpp.pdus import QuerySm
from carriers.smpp.results import QueryResult
from gateway.clock import utc_now
from gateway.engine.policy import CarrierPolicy, classify_receipt, receipt_cutoff
from routing.numbers import stored_address
from store.base import Store
from store.commands import NoteQueried, RecordReceipt
from store.errors import StoreError
from store.models import PartToQuery

log = structlog.get_logger("gateway.queries")


class CanQuery(Protocol):
    async def query(self, pdu: QuerySm) -> QueryResult: ...


@dataclass(frozen=True, slots=True)
class QueriedState:
    """What a query_sm answer says, in a receipt's words: `stat` (DELIVRD, UNDELIV…), `err`
    (the network error code, 3 digits), `done_date` (YYMMDDhhmm, as receipt text writes it)."""

    stat: str
    err: str
    done_date: str | None


def read_answer(result: QueryResult) -> QueriedState | None:
    """The state a query_sm_resp reports, or None if it reports none (refused: ESME_RQUERYFAIL,
    the SMSC does not know the message; or a message_state no version of SMPP defines)."""
    if not result.ok or result.message_state is None:
        return None
    stat = c.MESSAGE_STATE_STAT.get(result.message_state)
    if stat is None:
        return None
    done = result.final_date[:10] or None  # YYMMDDhhmm of the absolute time YYMMDDhhmmsstnnp
    return QueriedState(stat, f"{result.error_code:03d}", done)


def query_for(part: PartToQuery) -> QuerySm:
    source = part.source
    if source is None:  # stored before routes were kept: classify the stored sender again
        address = stored_address(part.from_addr)
        return QuerySm(
            message_id=part.query_id,
            source_addr_ton=int(address.ton),
            source_addr_npi=int(address.npi),
            source_addr=address.digits,
        )
    return QuerySm(
        message_id=part.query_id,
        source_addr_ton=source.ton,
        source_addr_npi=source.npi,
        source_addr=source.addr,
    )


class ReceiptQuerier:
    """query_sm for one carrier's parts that wait too long for a receipt (see module doc)."""

    def __init__(
        self,
        carrier: str,
        client: CanQuery,
        store: Store,
        policy: CarrierPolicy,
        *,
        query_after: float,
        query_interval: float,
        clock: Callable[[], datetime] = utc_now,
        batch: int = 200,
        concurrency: int = 8,
    ) -> None:
        self.carrier = carrier
        self._client = client
        self._store = store
        self._policy = policy
        self._after = timedelta(seconds=query_after)
        self._interval = timedelta(seconds=query_interval)
        self._clock = clock
        self._batch = batch
        self._room = asyncio.Semaphore(concurrency)
        # How often to look: often enough that a part is asked about soon after it is due.
        self._period = min(max(min(query_after, query_interval) / 4, 0.05), 30.0)
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                asked = await self.sweep()
            except StoreError as exc:  # the store cannot answer now: look again next period
                log.warning("query.sweep_failed", carrier=self.carrier, error=str(exc))
                asked = 0
            if asked < self._batch:  # a full batch: more are due, go on at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self._period)

    def stop(self) -> None:
        self._stop.set()

    async def sweep(self) -> int:
        """Ask about every part due now (up to one batch); returns how many were asked."""
        now = self._clock()
        due = await self._store.parts_to_query(
            self.carrier,
            submitted_before=now - self._after,
            not_before=receipt_cutoff(now, self._policy),
            queried_before=now - self._interval,
            limit=self._batch,
        )
        if not due:
            return 0
        answers = await asyncio.gather(*(self._ask(part) for part in due))
        settled, waiting = [], []
        for part, state in zip(due, answers, strict=True):
            verdict = None if state is None else classify_receipt(state.stat)
            if state is None or verdict is None or not verdict.final:
                waiting.append(part.carrier_message_id)
                continue
            settled.append(
                self._store.write(
                    RecordReceipt(
                        self.carrier,
                        part.carrier_message_id,
                        state.stat,
                        state.err,
                        state.done_date,
                        verdict.error_code,
                        verdict.delivered,
                        verdict.final,
                        self._clock(),
                        self._policy.receipt_window,
                    )
                )
            )
        writes: list[Any] = list(settled)
        if waiting:
            writes.append(
                self._store.write(NoteQueried(self.carrier, tuple(waiting), self._clock()))
            )
        await asyncio.gather(*writes)
        log.info(
            "query.swept", carrier=self.carrier, asked=len(due), settled=len(settled),
            waiting=len(waiting),
        )  # fmt: skip
        return len(due)

    async def _ask(self, part: PartToQuery) -> QueriedState | None:
        async with self._room:
            try:
                result = await self._client.query(query_for(part))
            except QueryUnanswered as exc:
                log.info("query.unanswered", carrier=self.carrier, sid=part.message_sid,
                         message_id=part.query_id, reason=str(exc))  # fmt: skip
                return None
            except SmppError as exc:  # an id or address the codec cannot put in a query_sm
                log.warning("query.not_sent", carrier=self.carrier, sid=part.message_sid,
                            message_id=part.query_id, reason=str(exc))  # fmt: skip
                return None
        state = read_answer(result)
        if state is None:
            status = c.status_name(result.command_status)
            log.info("query.refused", carrier=self.carrier, sid=part.message_sid,
                     message_id=part.query_id, status=status)  # fmt: skip
        return state
