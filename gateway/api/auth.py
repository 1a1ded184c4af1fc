"""HTTP Basic authentication against account SIDs and auth tokens.

Tokens are compared in constant time and never logged. Accounts are cached for a few seconds:
every API request authenticates, and a store round trip per request would cost more than the
request itself; a token rotated or an account closed takes effect within the cache lifetime.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Awaitable, Callable

from gateway.api.errors import unauthorized
from gateway.ids import ACCOUNT, is_sid
from store.models import Account

AccountLookup = Callable[[str], Awaitable[Account | None]]


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(username, password) from an `Authorization: Basic …` header, or None if malformed."""
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


class Authenticator:
    def __init__(self, lookup: AccountLookup, cache_seconds: float = 5.0, clock=time.monotonic):
        self._lookup = lookup
        self._cache: dict[str, tuple[float, Account | None]] = {}
        self._cache_seconds = cache_seconds
        self._clock = clock

    async def _account(self, sid: str) -> Account | None:
        now = self._clock()
        cached = self._cache.get(sid)
        if cached and cached[0] > now:
            return cached[1]
        account = await self._lookup(sid)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[sid] = (now + self._cache_seconds, account)
        return account

    async def authenticate(self, header: str | None, path_account_sid: str) -> Account:
        """The account the request acts as; raises ApiError 20003 (401) on any mismatch."""
        credentials = parse_basic(header)
        if credentials is None:
            raise unauthorized()
        username, password = credentials
        if not is_sid(username, ACCOUNT):
            raise unauthorized()
        account = await self._account(username)
        if account is None or account.status != "active":
            raise unauthorized()
        if not hmac.compare_digest(account.auth_token.encode(), password.encode()):
            raise unauthorized()
        if path_account_sid != account.sid:
            raise unauthorized()
        return account
