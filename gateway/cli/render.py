"""How the admin CLI prints what it read: plain text for a person at 3 a.m., `--json` for a
script (one JSON document on stdout, times in ISO 8601 UTC), progress on stderr."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from enum import Enum
from typing import Any, TextIO

import msgspec

from carriers.smpp.constants import status_name
from store.models import CallbackRecord, DeadLetter, Message, MessageEvent


def plain(value: Any) -> Any:
    """Store values (msgspec Structs), enums and datetimes as JSON values, recursively."""
    if isinstance(value, msgspec.Struct):
        return {name: plain(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def print_json(value: Any, out: TextIO = sys.stdout) -> None:
    json.dump(plain(value), out, ensure_ascii=False, indent=2)
    out.write("\n")


def when(at: datetime | None) -> str:
    return "-" if at is None else at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def dead_letter_line(entry: DeadLetter) -> str:
    what = (
        entry.message_sid
        if entry.kind == "message"
        else f"{entry.message_sid} cb#{entry.callback_id}"
    )
    code = "-" if entry.error_code is None else str(entry.error_code)
    replayed = f"  replayed {when(entry.replayed_at)}" if entry.replayed_at else ""
    return (
        f"{entry.id:>7}  {when(entry.entered_at)}  {entry.kind:<8} {what}  {entry.carrier:<12} "
        f"{entry.reason:<18} {code:>5}  {entry.error_message or ''}{replayed}"
    )


DEAD_LETTER_HEADER = (
    f"{'ID':>7}  {'ENTERED':<23}  {'KIND':<8} {'MESSAGE':<34}  {'CARRIER':<12} "
    f"{'REASON':<18} {'ERROR':>5}  DETAIL"
)


def event_line(event: MessageEvent) -> str:
    """One line of a message's timeline: when, the move (or `·` for history only), why, and what
    the carrier said, raw."""
    if event.to_status is None:
        move = "·"
    elif event.from_status is None:
        move = f"→ {event.to_status}"
    else:
        move = f"{event.from_status} → {event.to_status}"
    said = []
    if event.carrier:
        said.append(f"carrier={event.carrier}")
    if event.bind:
        said.append(f"bind={event.bind}")
    if event.attempt:
        said.append(f"attempt={event.attempt}")
    if event.smpp_status is not None:
        said.append(f"smpp=0x{event.smpp_status:08X} {status_name(event.smpp_status)}")
    if event.receipt_stat is not None or event.receipt_err is not None:
        said.append(f"stat={event.receipt_stat} err={event.receipt_err}")
    return f"{when(event.at)}  {move:<24} {event.reason}" + (
        "  [" + " ".join(said) + "]" if said else ""
    )


def message_header(message: Message) -> list[str]:
    lines = [
        f"Message {message.sid}  ({message.direction}, account {message.account_sid})",
        f"  status     {message.status}"
        + (f"  error {message.error_code}: {message.error_message}" if message.error_code else ""),
        f"  from → to  {message.from_addr} → {message.to_addr}",
        f"  carrier    {message.carrier}  {message.num_segments} segment(s), {message.encoding}",
        f"  attempts   {message.attempts}",
        f"  created    {when(message.date_created)}   sent {when(message.date_sent)}"
        f"   valid until {when(message.validity_until)}",
    ]
    if message.status_callback:
        lines.append(f"  callback   {message.status_callback}")
    return lines


def callback_line(record: CallbackRecord) -> str:
    tries = f"{record.attempts} attempt" + ("" if record.attempts == 1 else "s")
    error = f"  last error: {record.last_error}" if record.last_error else ""
    return (
        f"{when(record.created_at)}  callback #{record.id} {record.status}: {record.state} "
        f"after {tries} ({when(record.updated_at)}){error}"
    )


async def load_timeline(store, sid: str):
    """What a timeline shows of message `sid`: (message, events, callbacks), the message None
    if it does not exist."""
    message = await store.find_message(sid)
    if message is None:
        return None, [], []
    return message, await store.message_events(sid), await store.message_callbacks(sid)


def print_timeline(
    message: Message | None,
    events: list[MessageEvent],
    callbacks: list[CallbackRecord],
    out: TextIO | None = None,
) -> None:
    """A message, then everything that happened to it and every status callback, oldest first."""
    out = out or sys.stdout
    if message is None:
        out.write("(the message no longer exists)\n")
        return
    for line in message_header(message):
        out.write(line + "\n")
    out.write("\nTimeline\n")
    for event in events:
        out.write("  " + event_line(event) + "\n")
    if callbacks:
        out.write("\nStatus callbacks\n")
        for record in callbacks:
            out.write("  " + callback_line(record) + "\n")


class Progress:
    """A progress bar on stderr for long runs (a carriage-return bar on a terminal, a line per
    tenth elsewhere); silent for runs of fewer than `threshold` items."""

    def __init__(
        self, total: int, what: str, *, out: TextIO = sys.stderr, threshold: int = 100
    ) -> None:
        self.total = total
        self.what = what
        self.out = out
        self.shown = total >= threshold
        self.tty = out.isatty()
        self._last_tenth = -1

    def update(self, done: int) -> None:
        if not self.shown:
            return
        fraction = done / self.total if self.total else 1.0
        if self.tty:
            filled = round(30 * fraction)
            bar = "#" * filled + "." * (30 - filled)
            self.out.write(f"\r{self.what} [{bar}] {done}/{self.total} {fraction:4.0%}")
            self.out.flush()
            return
        tenth = int(fraction * 10)
        if tenth != self._last_tenth:
            self._last_tenth = tenth
            self.out.write(f"{self.what}: {done}/{self.total} ({fraction:.0%})\n")
            self.out.flush()

    def close(self) -> None:
        if self.shown and self.tty:
            self.out.write("\n")
            self.out.flush()
