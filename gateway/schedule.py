"""SendAt and ScheduleType, read as Twilio reads them: pure, so the API and tests share one rule.

Twilio schedules a message when `ScheduleType=fixed` and `SendAt` (ISO 8601) are given together,
at least 15 minutes and at most 35 days ahead (35114 / 35115 otherwise; 35111 when one of the two
is missing or malformed). Twilio also requires a MessagingServiceSid; smsgw schedules without one
(it has no messaging services), as its README says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MIN_AHEAD = timedelta(minutes=15)
MAX_AHEAD = timedelta(days=35)


@dataclass(frozen=True)
class ScheduleError(Exception):
    code: int
    message: str


def parse_schedule(
    schedule_type: str | None, send_at: str | None, now: datetime
) -> datetime | None:
    """When to send (UTC), or None to send now; ScheduleError with Twilio's code otherwise."""
    if schedule_type is None and send_at is None:
        return None
    if schedule_type != "fixed":
        if schedule_type is None:
            raise ScheduleError(35111, "ScheduleType=fixed is required with SendAt.")
        raise ScheduleError(35111, f"ScheduleType must be 'fixed', got {schedule_type!r}.")
    if not send_at:
        raise ScheduleError(35111, "SendAt is required with ScheduleType=fixed.")
    try:
        when = datetime.fromisoformat(send_at.strip())
    except ValueError:
        raise ScheduleError(
            35111, f"SendAt must be an ISO 8601 date-time (2026-12-24T09:00:00Z), got {send_at!r}."
        ) from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if when - now < MIN_AHEAD:
        raise ScheduleError(35114, "SendAt must be at least 15 minutes (900 s) in the future.")
    if when - now > MAX_AHEAD:
        raise ScheduleError(35115, "SendAt must be at most 35 days in the future.")
    return when
