"""Spacing submits to a carrier's throughput, and slowing down when the carrier says so.

Carriers enforce throughput per bind, usually by answering ESME_RTHROTTLED (or ESME_RMSGQFUL) past
the limit, and some suspend binds that keep exceeding it. So the client paces itself: each submit
reserves the next free send slot ``1/rate`` seconds after the previous one (a virtual schedule,
GCRA without burst). No burst on purpose: carriers commonly count per second on their own clock,
and a burst of ``rate`` messages at the edge of their second lands in one of their seconds twice.

The contracted rate is often unknown or wrong, so the pace also adapts, as TCP's does (AIMD):

* a throttling answer halves the pace (from the rate actually sent at, when no limit is set), at
  most once per ``settle`` seconds — the answers to submits already in flight say nothing new;
* every ``recover_every`` seconds without one, the pace grows by a tenth (at least one message
  per second), back up to the configured limit; with no limit, back to unpaced once it is twice
  the rate that was throttled.

So a carrier that caps a bind at 50/s sees the bind settle just under 50/s, not a stream of
refusals; the messages refused are retried by the delivery engine, which never counts throttling
against their retry budget.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

FLOOR = 1.0  # messages/s: never slower than this, however often the carrier throttles


class Throttle:
    """Paces callers of :meth:`acquire` to at most ``rate`` per second (fractional allowed).

    Concurrent callers each get their own slot without a lock: the reservation is taken
    synchronously before sleeping. ``rate=None`` means unlimited and costs nothing until the
    carrier throttles.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        settle: float = 0.5,
        recover_every: float = 1.0,
    ):
        if rate is not None and rate <= 0:
            raise ValueError(f"throughput must be positive (messages/s) or None, got {rate}")
        self.limit = rate  # what the configuration allows
        self.rate = rate  # the pace now: the limit, or less after throttling
        self._interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._settle = settle
        self._recover_every = recover_every
        self._next_slot = 0.0
        self._sent: deque[float] = deque()  # send times in the last second, while unpaced
        self._changed_at = float("-inf")
        self._throttled_at_rate = 0.0  # the pace (or observed rate) that was last throttled

    def reserve(self) -> float:
        """Take the next slot; returns how many seconds to wait before using it (0 if none)."""
        now = self._clock()
        if self.rate is None:
            self._sent.append(now)
            while self._sent and self._sent[0] <= now - 1.0:
                self._sent.popleft()
            return 0.0
        slot = self._next_slot if self._next_slot > now else now
        self._next_slot = slot + self._interval
        return slot - now

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    def throttled(self) -> bool:
        """The carrier refused a submit for throughput. True if the pace was lowered."""
        now = self._clock()
        if now - self._changed_at < self._settle:
            return False
        current = self.rate if self.rate is not None else float(max(len(self._sent), 1))
        self._throttled_at_rate = current
        self._set(max(FLOOR, current / 2), now)
        return True

    def accepted(self) -> bool:
        """The carrier accepted a submit. True if the pace was raised."""
        if self.rate is None or self.rate == self.limit:
            return False
        now = self._clock()
        if now - self._changed_at < self._recover_every:
            return False
        faster = max(self.rate * 1.1, self.rate + 1.0)
        if self.limit is not None:
            self._set(min(faster, self.limit), now)
        elif faster >= 2 * self._throttled_at_rate:
            self._set(None, now)
        else:
            self._set(faster, now)
        return True

    def _set(self, rate: float | None, now: float) -> None:
        self.rate = rate
        self._interval = 1.0 / rate if rate else 0.0
        self._changed_at = now
        self._sent.clear()
        if rate is not None and self._next_slot < now:
            self._next_slot = now
