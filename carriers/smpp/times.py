"""SMPP's time fields (3.4 §7.1.1), for validity_period and schedule_delivery_time.

Absolute: ``YYMMDDhhmmsstnnp`` — tenths, the offset from UTC in quarter hours, ``+``/``-``; we
always write UTC (``000+``), so the SMSC's clock zone does not matter. Relative: the same
positions count years, months, days, hours, minutes and seconds from when the SMSC receives the
PDU, ending ``000R``: immune to a clock that differs from ours, but counted from arrival, not
from acceptance. Which one a carrier wants is its `validity_format`.
"""

from __future__ import annotations

from datetime import UTC, datetime

TIME_FORMATS = ("relative", "absolute", "none")


def absolute_time(moment: datetime) -> str:
    """``moment`` as an absolute SMPP time in UTC."""
    return moment.astimezone(UTC).strftime("%y%m%d%H%M%S") + "000+"


def relative_time(seconds: float) -> str:
    """``seconds`` from now as a relative SMPP time (whole seconds, at least 1, at most 99 days
    — validity periods are hours; years and months stay 0, a month being no fixed length)."""
    total = min(max(int(seconds), 1), 99 * 86400 + 86399)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"0000{days:02d}{hours:02d}{minutes:02d}{secs:02d}000R"


def validity_field(until: datetime | None, now: datetime, time_format: str) -> str:
    """The validity_period a submit_sm carries for a message valid until ``until`` (None: no
    limit of ours, the SMSC's default; "none": the carrier wants the field empty)."""
    if until is None or time_format == "none":
        return ""
    if time_format == "absolute":
        return absolute_time(until)
    return relative_time((until - now).total_seconds())
