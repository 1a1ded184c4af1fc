"""Housekeeping while the daemon runs: expired leases back to the queue, receipt windows closed,
held receipts forgotten, inbound messages whose missing parts never came received as they are,
messages past their validity or routed to a carrier no longer configured into the dead-letter
queue.

Why periodic and not only at start: a lease can run out while the daemon that took it is alive
(a bind stuck past its timeouts, a bug), and with several daemons on one database the owner of a
lease may die while the others keep running. Receipt windows close as time passes, not at events.
Each pass is a few bounded store commands; a store that cannot commit only delays the next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import structlog

from carriers.smpp.text import decode_text
from gateway.clock import utc_now
from gateway.engine.policy import CarrierPolicy
from store.base import Store
from store.commands import (
    CloseReceiptWindows,
    CompleteStaleInbound,
    ExpireValidity,
    FailGoneCarriers,
    PurgeOrphanReceipts,
    RecoverLeases,
)
from store.errors import StoreError
from store.lifecycle import ORPHAN_HOLD_SECONDS
from store.models import PurgedReceipt

log = structlog.get_logger("gateway.sweeper")


class Sweeper:
    def __init__(
        self,
        store: Store,
        policies: Mapping[str, CarrierPolicy],
        *,
        interval: float = 30.0,
        clock: Callable[[], datetime] = utc_now,
        on_recovered: Callable[[], None] = lambda: None,
        reassembly_timeout: float = 3600.0,
    ) -> None:
        self._reassembly_timeout = timedelta(seconds=reassembly_timeout)
        self._store = store
        self._policies = policies
        self._interval = interval
        self._clock = clock
        self._on_recovered = on_recovered
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)
            if not self._stop.is_set():
                await self.sweep()

    def stop(self) -> None:
        self._stop.set()

    async def sweep(self) -> None:
        """One pass; returns quietly if the store cannot commit (the next pass tries again)."""
        now = self._clock()
        try:
            recovered = await self._store.write(RecoverLeases(self._store.owner, now))
            if recovered:
                log.warning("leases.recovered", count=recovered, why="lease ran out")
                self._on_recovered()
            for carrier, policy in self._policies.items():
                closed = await self._store.write(
                    CloseReceiptWindows(carrier, policy.receipt_window, now)
                )
                if closed:
                    log.info("receipts.window_closed", carrier=carrier, messages=closed)
            await self._expire_validity(now)
            await self._fail_gone_carriers(now)
            purged = await self._store.write(
                PurgeOrphanReceipts(now - timedelta(seconds=ORPHAN_HOLD_SECONDS))
            )
            _warn_purged(purged)
            completed = await self._store.write(
                CompleteStaleInbound(now - self._reassembly_timeout, now, decode_text)
            )
            if completed:
                log.warning(
                    "inbound.incomplete",
                    sids=completed,
                    why="parts of these inbound messages never arrived; kept what did",
                )
        except StoreError as exc:
            log.warning("sweep.skipped", error=str(exc))

    async def _expire_validity(self, now: datetime) -> None:
        """Queued messages past their ValidityPeriod fail (30036): a carrier that is down claims
        nothing, and its messages must not stay queued past it."""
        await self._fail_all(
            lambda: ExpireValidity(now, EXPIRE_BATCH),
            "messages.validity_expired",
            "not submitted within their ValidityPeriod (error 30036)",
        )

    async def _fail_gone_carriers(self, now: datetime) -> None:
        """Queued messages routed to a carrier no longer configured fail into the dead-letter
        queue (30008), where an operator replays them to a carrier that exists."""
        await self._fail_all(
            lambda: FailGoneCarriers(tuple(self._policies), now, EXPIRE_BATCH),
            "messages.carrier_gone",
            "their carrier is no longer configured; see `smsgw dlq list`",
        )

    async def _fail_all(self, command, event: str, why: str) -> None:
        """Write `command()` in batches until a batch comes back short, warning for each."""
        while failed := await self._store.write(command()):
            log.warning(event, count=len(failed), sids=failed[:PURGED_IDS_LOGGED], why=why)
            if len(failed) < EXPIRE_BATCH:
                return


EXPIRE_BATCH = 1000
PURGED_IDS_LOGGED = 20


def _warn_purged(purged: list[PurgedReceipt]) -> None:
    """One warning per carrier for receipts that never matched: an id format mismatch
    (`receipt_id_format`), or an SMSC reporting messages this gateway never sent, shows here."""
    by_carrier: dict[str, list[PurgedReceipt]] = {}
    for receipt in purged:
        by_carrier.setdefault(receipt.carrier, []).append(receipt)
    for carrier, receipts in by_carrier.items():
        log.warning(
            "receipts.orphans_purged",
            carrier=carrier,
            count=len(receipts),
            message_ids=[r.carrier_message_id for r in receipts[:PURGED_IDS_LOGGED]],
            held_seconds=ORPHAN_HOLD_SECONDS,
            why="no submit response carried these ids; check receipt_id_format",
        )
