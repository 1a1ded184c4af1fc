"""`smsgw messages show SM…`: one message as an operator reads it — its row, then a timeline of
every transition and receipt (intermediate ones included, with the raw SMPP values, carrier and
bind), its status callbacks, and its dead-letter entries."""

from __future__ import annotations

import argparse
import asyncio
import sys

from gateway.cli import render
from gateway.cli.common import DEFAULT_CONFIG, load, open_store
from store.models import DeadLetterFilter


def add_commands(commands: argparse._SubParsersAction) -> None:
    messages = commands.add_parser("messages", help="look at messages (any account's)")
    sub = messages.add_subparsers(dest="messages_command", required=True)
    show = sub.add_parser("show", help="a message and its whole history, as a timeline")
    show.add_argument("sid", help="the message SID (SM… or MM…)")
    show.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="TOML configuration file")
    show.add_argument("--json", action="store_true", help="print one JSON document")
    show.set_defaults(func=cmd_show)


def cmd_show(args) -> int:
    config = load(args.config)

    async def main():
        async with open_store(config) as store:
            message, events, callbacks = await render.load_timeline(store, args.sid)
            if message is None:
                return None
            dead = await store.dead_letters(
                DeadLetterFilter(message_sid=args.sid, include_replayed=True)
            )
            return message, events, callbacks, dead

    found = asyncio.run(main())
    if found is None:
        print(f"smsgw: no message {args.sid}", file=sys.stderr)
        return 1
    message, events, callbacks, dead = found
    if args.json:
        render.print_json(
            {"message": message, "events": events, "callbacks": callbacks, "dead_letters": dead}
        )
        return 0
    render.print_timeline(message, events, callbacks)
    if dead:
        print("\nDead-letter entries")
        for entry in dead:
            print("  " + render.dead_letter_line(entry))
    return 0
