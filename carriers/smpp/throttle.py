"""Spacing submits to a carrier's contracted throughput (messages per second).

Carriers enforce throughput per bind, usually by answering ESME_RTHROTTLED past the limit, and some
suspend binds that keep exceeding it. So the client paces itself *below* the limit rather than
reacting to throttling: each submit reserves the next free send slot ``1/rate`` seconds after the
previous one (a virtual schedule, GCRA without burst). No burst on purpose: carriers commonly
count per second on their own clock, and a burst of ``rate`` messages at the edge of their second
lands in one of their seconds twice over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Throttle:
    """Paces callers of :meth:`acquire` to at most ``rate`` per second (fractional allowed).

    Concurrent callers each get their own slot without a lock: the reservation is taken
    synchronously before sleeping. ``rate=None`` means unlimited and costs nothing.
    """

    def __init__(self, rate: float | None, *, clock: Callable[[], float] = time.monotonic):
        if rate is not None and rate <= 0:
            raise ValueError(f"throughput must be positive (messages/s) or None, got {rate}")
        self.rate = rate
        self._interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._next_slot = 0.0

    def reserve(self) -> float:
        """Take the next slot; returns how many seconds to wait before using it (0 if none)."""
        if self.rate is None:
            return 0.0
        now = self._clock()
        slot = self._next_slot if self._next_slot > now else now
        self._next_slot = slot + self._interval
        return slot - now

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
