"""SendAt/ScheduleType as Twilio reads them, and the scheduler queuing due messages from a real
store at their time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from gateway.clock import utc_now
from gateway.engine.scheduler import Scheduler
from gateway.ids import ACCOUNT, MESSAGE, new_auth_token, new_sid
from gateway.schedule import ScheduleError, parse_schedule
from store.commands import Accept, CreateAccount
from store.models import NewMessage
from store.sqlite import SqliteStore
from store.states import Status

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_no_schedule_means_now() -> None:
    assert parse_schedule(None, None, NOW) is None


@pytest.mark.parametrize(
    ("send_at", "expected"),
    [
        ("2026-12-03T12:15:00Z", datetime(2026, 12, 3, 12, 15, tzinfo=UTC)),
        ("2026-12-03T14:15:00+02:00", datetime(2026, 12, 3, 12, 15, tzinfo=UTC)),
        ("2026-12-03T12:30:00", datetime(2026, 12, 3, 12, 30, tzinfo=UTC)),  # no zone: UTC
        ("2027-01-07T12:00:00Z", datetime(2027, 1, 7, 12, tzinfo=UTC)),  # 35 days
    ],
)
def test_send_at_in_iso_8601_within_15_minutes_to_35_days(send_at, expected) -> None:
    assert parse_schedule("fixed", send_at, NOW) == expected


@pytest.mark.parametrize(
    ("schedule_type", "send_at", "code", "words"),
    [
        (None, "2026-12-04T12:00:00Z", 35111, "ScheduleType=fixed is required"),
        ("fixed", None, 35111, "SendAt is required"),
        ("fixed", "", 35111, "SendAt is required"),
        ("later", "2026-12-04T12:00:00Z", 35111, "must be 'fixed'"),
        ("fixed", "tomorrow", 35111, "ISO 8601"),
        ("fixed", "2026-12-03T12:14:59Z", 35114, "at least 15 minutes"),
        ("fixed", "2026-11-03T12:00:00Z", 35114, "at least 15 minutes"),
        ("fixed", "2027-01-07T12:00:01Z", 35115, "at most 35 days"),
    ],
)
def test_what_twilio_refuses(schedule_type, send_at, code, words) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_schedule(schedule_type, send_at, NOW)
    assert info.value.code == code and words in info.value.message


async def test_the_scheduler_queues_a_message_at_its_time(tmp_path) -> None:
    async with SqliteStore(tmp_path / "s.db") as store:
        account = await store.write(CreateAccount(new_sid(ACCOUNT), "t", new_auth_token(), NOW))
        woken = asyncio.Event()
        scheduler = Scheduler(store, on_released=woken.set, max_sleep=30.0)
        task = asyncio.create_task(scheduler.run())
        try:
            send_at = utc_now() + timedelta(seconds=0.4)
            new = NewMessage(
                sid=new_sid(MESSAGE), account_sid=account.sid, from_addr="+15017122661",
                to_addr="+14155552671", body="later", num_segments=1, encoding="gsm7",
                carrier="sim", send_at=send_at,
            )  # fmt: skip
            await store.write(Accept(new, utc_now()))
            message = await store.find_message(new.sid)
            assert message.status is Status.SCHEDULED
            scheduler.wake()  # as the API does: the scheduler was asleep for 30 s
            await asyncio.wait_for(woken.wait(), 5)
            assert utc_now() >= send_at
            stored = await store.get_message(account.sid, message.sid)
            assert stored is not None and stored.status is Status.QUEUED
            assert scheduler.released == 1
        finally:
            scheduler.stop()
            await task
