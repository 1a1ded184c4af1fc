"""`smsgw dlq` and `smsgw messages` as an operator runs them (real processes on a real store
file, no daemon), and the pieces they are made of: `--since`, the progress bar, the purge
confirmation, the queue-cap configuration."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from gateway.cli import dlq, render
from gateway.cli.common import parse_since
from gateway.config import ConfigError, parse_config
from store.commands import Accept, Claim, CreateAccount, RecordSubmitFailed
from store.models import NewMessage
from store.sqlite import SqliteStore
from tests.e2e.harness import write_config
from tests.gateway.test_cli import smsgw

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
ACCOUNT = "AC" + "c" * 32


async def fill(db, count: int) -> None:
    """`count` messages of carrier `sim` that exhausted their retries (dead letters)."""
    async with SqliteStore(db, writer="thread") as store:
        await store.write(CreateAccount(ACCOUNT, "ops", "token", NOW))
        await asyncio.gather(
            *(
                store.write(
                    Accept(
                        NewMessage(
                            sid=f"SM{n:032x}",
                            account_sid=ACCOUNT,
                            from_addr="+15017122661",
                            to_addr=f"+1415555{n:04d}",
                            body=f"dead {n}",
                            num_segments=1,
                            encoding="gsm7",
                            carrier="sim",
                        ),
                        NOW,
                    )
                )
                for n in range(count)
            )
        )
        claimed = await store.write(Claim("sim", count, "owner", 60, NOW))
        await asyncio.gather(*(store.write(exhausted(m.sid)) for m in claimed))


def exhausted(sid: str) -> RecordSubmitFailed:
    return RecordSubmitFailed(
        sid,
        "sim",
        8,
        30008,
        "Retries exhausted after 1 attempt: x",
        None,
        True,
        NOW,
        dead_letter="retries_exhausted",
    )


def test_retry_of_many_shows_progress_and_replays_each_once(tmp_path) -> None:
    config = write_config(tmp_path)
    asyncio.run(fill(tmp_path / "smsgw.db", 150))
    listed = smsgw("dlq", "list", "-c", str(config), "--limit", "500", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 150
    text = smsgw("dlq", "list", "-c", str(config), "--limit", "2").stdout.splitlines()
    assert text[0].split()[:3] == ["ID", "ENTERED", "KIND"] and len(text) == 3
    refused = smsgw("dlq", "retry", "-c", str(config))
    assert refused.returncode == 2 and "--all" in refused.stderr
    replayed = smsgw("dlq", "retry", "--carrier", "sim", "-c", str(config))
    assert replayed.returncode == 0, replayed.stderr
    assert "150 replayed, 0 not." in replayed.stdout
    assert "replaying: 150/150 (100%)" in replayed.stderr  # no terminal: a line per tenth
    again = smsgw("dlq", "retry", "1", "-c", str(config))
    assert again.returncode == 1 and "twice" in again.stderr
    shown = smsgw("dlq", "show", "1", "-c", str(config), "--json")
    entry = json.loads(shown.stdout)
    assert entry["entry"]["replayed_to"] == "sim" and entry["message"]["status"] == "queued"
    assert [e["reason"] for e in entry["events"]] == ["accepted", "claimed", "submit_failed",
                                                      "replayed"]  # fmt: skip
    timeline = smsgw("messages", "show", entry["message"]["sid"], "-c", str(config))
    assert (
        "failed → queued" in timeline.stdout and "smpp=0x00000008 ESME_RSYSERR" in timeline.stdout
    )
    missing = smsgw("messages", "show", "SM" + "f" * 32, "-c", str(config))
    assert missing.returncode == 1 and "no message" in missing.stderr
    assert smsgw("dlq", "show", "9999", "-c", str(config)).returncode == 1


def test_purge_asks_on_a_terminal_and_takes_yes(tmp_path, monkeypatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    assert dlq._confirmed(3, stdin=Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: "")
    assert not dlq._confirmed(3, stdin=Terminal())  # the default is no
    assert not dlq._confirmed(3, stdin=io.StringIO())  # no terminal: --yes is needed
    config = write_config(tmp_path)
    asyncio.run(fill(tmp_path / "smsgw.db", 2))
    purged = smsgw("dlq", "purge", "1", "5", "-c", str(config), "--yes")
    assert purged.returncode == 1  # 5 does not exist: said, and the rest purged
    assert "1 dead letter(s) purged" in purged.stdout and "5: no such" in purged.stderr


def test_since_takes_a_time_ago_or_an_iso_time() -> None:
    assert parse_since("90s", NOW) == NOW - timedelta(seconds=90)
    assert parse_since("2h", NOW) == NOW - timedelta(hours=2)
    assert parse_since("7d", NOW) == NOW - timedelta(days=7)
    assert parse_since("2026-12-01T10:00:00Z", NOW) == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert parse_since("2026-12-01T10:00:00", NOW) == datetime(2026, 12, 1, 10, tzinfo=UTC)
    with pytest.raises(SystemExit, match="time ago"):
        parse_since("yesterday", NOW)


def test_progress_is_silent_for_few_and_draws_a_bar_on_a_terminal() -> None:
    quiet = io.StringIO()
    progress = render.Progress(10, "replaying", out=quiet)
    progress.update(10)
    assert quiet.getvalue() == ""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    bar = render.Progress(200, "replaying", out=screen)
    bar.update(100)
    bar.close()
    assert "\rreplaying [" + "#" * 15 + "." * 15 + "] 100/200  50%" in screen.getvalue()


CARRIERS = {"carriers": {"sim": {"system_id": "smsgw"}}}


def test_queue_caps_are_checked_at_start() -> None:
    with pytest.raises(ConfigError, match=r"delivery\.max_unsent: expected a count >= 0"):
        parse_config({"delivery": {"max_unsent": -1}, **CARRIERS})
    with pytest.raises(ConfigError, match=r"max_unsent_by_account\.nope: expected an account SID"):
        parse_config({"delivery": {"max_unsent_by_account": {"nope": 5}}, **CARRIERS})
    config = parse_config(
        {"delivery": {"max_unsent": 100, "max_unsent_by_account": {ACCOUNT: 0}}, **CARRIERS}
    )
    cap = config.queue_cap()
    assert cap.for_account("AC" + "d" * 32) == 100 and cap.for_account(ACCOUNT) is None
