"""HTTP Basic authentication against account SIDs and auth tokens.

Tokens are compared in constant time and never logged; accounts come from an `AccountCache`.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from gateway.accounts import AccountCache
from gateway.api.errors import unauthorized
from gateway.ids import ACCOUNT, is_sid
from store.models import Account


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
    def __init__(self, accounts: AccountCache) -> None:
        self._accounts = accounts

    async def authenticate(self, header: str | None, path_account_sid: str) -> Account:
        """The account the request acts as; raises ApiError 20003 (401) on any mismatch."""
        credentials = parse_basic(header)
        if credentials is None:
            raise unauthorized()
        username, password = credentials
        if not is_sid(username, ACCOUNT):
            raise unauthorized()
        account = await self._accounts.get(username)
        if account is None or account.status != "active":
            raise unauthorized()
        if not hmac.compare_digest(account.auth_token.encode(), password.encode()):
            raise unauthorized()
        if path_account_sid != account.sid:
            raise unauthorized()
        return account
