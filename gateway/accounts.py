"""Accounts by SID, cached for a few seconds.

Every API request authenticates and every status callback is signed with its account's token;
a store round trip for each would cost more than the work itself. A token rotated or an account
closed takes effect within the cache lifetime.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from store.models import Account

AccountLookup = Callable[[str], Awaitable[Account | None]]


class AccountCache:
    def __init__(
        self, lookup: AccountLookup, cache_seconds: float = 5.0, clock=time.monotonic
    ) -> None:
        self._lookup = lookup
        self._cache: dict[str, tuple[float, Account | None]] = {}
        self._cache_seconds = cache_seconds
        self._clock = clock

    def cached(self, sid: str) -> tuple[bool, Account | None]:
        """(True, the account or None) while a lookup of `sid` is fresh, else (False, None):
        the hot paths skip a coroutine per call when the answer is at hand."""
        cached = self._cache.get(sid)
        if cached and cached[0] > self._clock():
            return True, cached[1]
        return False, None

    async def get(self, sid: str) -> Account | None:
        known, account = self.cached(sid)
        if known:
            return account
        now = self._clock()
        account = await self._lookup(sid)
        if len(self._cache) > 10_000:  # bounded: a flood of unknown SIDs cannot grow it
            self._cache.clear()
        self._cache[sid] = (now + self._cache_seconds, account)
        return account
