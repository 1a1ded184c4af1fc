"""The account cache: a lookup's answer, fresh for its lifetime, at hand without a coroutine."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.accounts import AccountCache
from store.models import Account

T = datetime(2026, 12, 4, tzinfo=UTC)
ACCOUNT = Account("AC" + "a" * 32, "demo", "t" * 32, "active", T, T)


async def test_a_fresh_answer_is_at_hand_and_a_stale_one_is_looked_up_again() -> None:
    now = [100.0]
    lookups: list[str] = []

    async def lookup(sid: str) -> Account | None:
        lookups.append(sid)
        return ACCOUNT if sid == ACCOUNT.sid else None

    cache = AccountCache(lookup, 5.0, clock=lambda: now[0])
    assert cache.cached(ACCOUNT.sid) == (False, None)  # never looked up
    assert await cache.get(ACCOUNT.sid) == ACCOUNT
    assert cache.cached(ACCOUNT.sid) == (True, ACCOUNT)
    assert await cache.get("AC" + "0" * 32) is None
    assert cache.cached("AC" + "0" * 32) == (True, None)  # "no such account" is an answer too
    now[0] += 5.0
    assert cache.cached(ACCOUNT.sid) == (False, None)  # its lifetime is over
    assert await cache.get(ACCOUNT.sid) == ACCOUNT
    assert lookups == [ACCOUNT.sid, "AC" + "0" * 32, ACCOUNT.sid]
