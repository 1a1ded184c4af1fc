"""The wall clock every layer of the gateway reads through, so tests can pass another one in."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now, as a tz-aware UTC datetime (the store refuses naive ones)."""
    return datetime.now(UTC)
