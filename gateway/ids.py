"""Twilio-style typed identifiers: two-letter prefix + 32 lowercase hex (128 bits, CSPRNG)."""

from __future__ import annotations

import re
import secrets

ACCOUNT = "AC"
MESSAGE = "SM"
_SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def is_sid(value: str, prefix: str) -> bool:
    """True when `value` is a well-formed SID of that type (checked before any lookup)."""
    return len(value) == 34 and value.startswith(prefix) and _SID.match(value) is not None


def new_auth_token() -> str:
    return secrets.token_hex(16)
