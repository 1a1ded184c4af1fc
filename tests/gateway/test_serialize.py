from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from gateway.api.serialize import rfc2822

MOMENT = datetime(2023, 8, 24, 5, 1, 45, 123_456, tzinfo=UTC)


def test_dates_are_rfc2822_in_utc_without_fractions():
    assert rfc2822(MOMENT) == "Thu, 24 Aug 2023 05:01:45 +0000"
    assert rfc2822(None) is None


def test_a_remembered_second_never_leaks_into_the_next():
    assert rfc2822(MOMENT) == "Thu, 24 Aug 2023 05:01:45 +0000"
    assert rfc2822(MOMENT + timedelta(seconds=1)) == "Thu, 24 Aug 2023 05:01:46 +0000"
    assert rfc2822(MOMENT - timedelta(days=400)) == "Wed, 20 Jul 2022 05:01:45 +0000"
    assert rfc2822(MOMENT.replace(microsecond=999_999)) == "Thu, 24 Aug 2023 05:01:45 +0000"


def test_other_offsets_are_written_as_utc():
    two_hours_ahead = MOMENT.astimezone(timezone(timedelta(hours=2)))
    assert rfc2822(two_hours_ahead) == "Thu, 24 Aug 2023 05:01:45 +0000"
