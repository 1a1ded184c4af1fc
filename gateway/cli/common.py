"""What every admin command shares: the configuration, the store it names, time arguments."""

from __future__ import annotations

import os
import re
import sys
from datetime import UTC, datetime, timedelta

from gateway.config import Config, ConfigError, load_config

DEFAULT_CONFIG = os.environ.get("SMSGW_CONFIG", "conf/smsgw.toml")


def load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"smsgw: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def open_store(config: Config):
    """The daemon's store, opened beside it (SQLite in WAL mode takes a second writer; its writes
    wait for the daemon's commits). The CLI writes through a thread: one process is enough for
    an operator's commands."""
    from store.sqlite import SqliteStore

    return SqliteStore(str(config.resolve(config.store.path)), writer="thread")


_AGO = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, now: datetime) -> datetime:
    """`--since`: a time ago (`90s`, `30m`, `2h`, `7d`) or an ISO 8601 time (UTC if no zone)."""
    ago = _AGO.fullmatch(text.strip())
    if ago:
        return now - timedelta(**{_UNITS[ago.group(2)]: float(ago.group(1))})
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(
            f"smsgw: --since {text!r}: expected a time ago (30m, 2h, 7d) or an ISO 8601 time"
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
