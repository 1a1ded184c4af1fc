"""The validity a message has left goes to the SMSC in submit_sm's validity_period, as each
carrier wants it written (SMPP 3.4 §7.1.1)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from carriers.smpp.times import absolute_time, relative_time, validity_field
from gateway.clock import utc_now
from tests.gateway.lane_kit import lane_rig

NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)


def test_relative_times_count_days_hours_minutes_seconds() -> None:
    assert relative_time(600) == "000000001000000R"
    assert relative_time(36000) == "000000100000000R"
    assert relative_time(90061) == "000001010101000R"
    assert relative_time(0.2) == "000000000001000R"  # never 0: that would mean "no validity"


def test_absolute_times_are_utc() -> None:
    local = datetime(2026, 12, 3, 13, 30, 5, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    assert absolute_time(local) == "261203133005000+"


@pytest.mark.parametrize(
    ("time_format", "expected"),
    [("relative", "000000001000000R"), ("absolute", "261203121000000+"), ("none", "")],
)
def test_the_field_as_each_carrier_wants_it(time_format: str, expected: str) -> None:
    assert validity_field(NOW + timedelta(seconds=600), NOW, time_format) == expected
    assert validity_field(None, NOW, time_format) == ""  # no validity of ours: the SMSC's


async def test_a_submit_carries_what_is_left_of_the_validity(tmp_path) -> None:
    async with lane_rig(tmp_path) as r:
        message = await r.send(validity_until=utc_now() + timedelta(seconds=600))
        assert (await r.status(message.sid)).status == "delivered"
        [submit] = list(r.smsc.stats.submitted)
        assert re.fullmatch(r"000000001000000R|00000000095\d000R", submit.validity_period)


async def test_an_absolute_carrier_gets_the_end_of_the_validity(tmp_path) -> None:
    until = utc_now().replace(microsecond=0) + timedelta(seconds=600)
    async with lane_rig(tmp_path, validity_format="absolute") as r:
        message = await r.send(validity_until=until)
        assert (await r.status(message.sid)).status == "delivered"
        [submit] = list(r.smsc.stats.submitted)
        assert submit.validity_period == absolute_time(until)
