"""Scheduled messages join the queue at their SendAt.

The scheduler sleeps until the earliest SendAt the store holds (one indexed read: it never scans
the scheduled messages to find the due ones), queues what is due in batches, and wakes the lanes.
A message scheduled sooner than what it sleeps for wakes it (`wake`). After a restart it queues
at once whatever came due while the daemon was down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

import structlog

from gateway.clock import utc_now
from store.base import Store
from store.commands import ReleaseScheduled
from store.errors import StoreError

log = structlog.get_logger("gateway.scheduler")

RELEASE_BATCH = 1000


class Scheduler:
    def __init__(
        self,
        store: Store,
        *,
        on_released: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utc_now,
        max_sleep: float = 60.0,
    ) -> None:
        self._store = store
        self._on_released = on_released
        self._clock = clock
        self._max_sleep = max_sleep
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self.released = 0

    def wake(self) -> None:
        """A message was scheduled: it may be due before the one the scheduler waits for."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                await self.release_due()
                delay = await self._until_next()
            except StoreError as exc:
                log.warning("scheduler.store_failed", error=str(exc), retry_in=1.0)
                delay = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def release_due(self) -> int:
        """Queue every scheduled message due now; returns how many."""
        total = 0
        while True:
            released = await self._store.write(ReleaseScheduled(self._clock(), RELEASE_BATCH))
            total += len(released)
            if len(released) < RELEASE_BATCH:
                break
        if total:
            self.released += total
            log.info("scheduled.released", count=total)
            self._on_released()
        return total

    async def _until_next(self) -> float:
        next_at = await self._store.next_scheduled_at()
        if next_at is None:
            return self._max_sleep
        seconds = (next_at - self._clock()).total_seconds()
        return min(max(seconds, 0.0), self._max_sleep)
