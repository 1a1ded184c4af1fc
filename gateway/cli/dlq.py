"""`smsgw dlq list|show|retry|purge`: the operator's hands on the dead-letter queue.

Every command runs beside a live daemon: reads see what the daemon committed, and a replay is a
store write like the daemon's own, ordered by SQLite's lock against its claims (the daemon's
lanes look for due messages at least once a second, so a replayed message goes out within one).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import msgspec

from gateway.cli import render
from gateway.cli.common import DEFAULT_CONFIG, load, open_store, parse_since
from gateway.clock import utc_now
from gateway.config import Config
from gateway.routes import route_table, stored_route
from routing.errors import RoutingError
from routing.plan import plan
from store.commands import PurgeDeadLetters, ReplayDeadLetter
from store.errors import StoreError
from store.models import DeadLetter, DeadLetterFilter

PAGE = 1000
WRITES_IN_FLIGHT = 200  # replays handed to the writer at once (it commits them in batches)


def add_commands(commands: argparse._SubParsersAction) -> None:
    dlq = commands.add_parser("dlq", help="inspect, replay and purge the dead-letter queue")
    sub = dlq.add_subparsers(dest="dlq_command", required=True)

    listing = sub.add_parser("list", help="list dead letters, oldest first")
    _filters(listing)
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="one dead letter with its message's whole history")
    show.add_argument("entry_id", type=int)
    _common(show)
    show.set_defaults(func=cmd_show)

    retry = sub.add_parser(
        "retry", help="replay dead letters (named, or every one a filter matches)"
    )
    retry.add_argument("entry_ids", type=int, nargs="*", metavar="ID")
    _filters(retry)
    retry.add_argument(
        "--to-carrier", help="send the messages through this configured carrier instead"
    )
    retry.set_defaults(func=cmd_retry)

    purge = sub.add_parser("purge", help="forget dead letters (their messages stay failed)")
    purge.add_argument("entry_ids", type=int, nargs="*", metavar="ID")
    _filters(purge)
    purge.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(func=cmd_purge)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="TOML configuration file")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def _filters(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--carrier", help="only this carrier's")
    parser.add_argument("--account", help="only this account's (AC…)")
    parser.add_argument("--error", type=int, help="only this error code (e.g. 30001)")
    parser.add_argument("--since", help="only entered since: 30m, 2h, 7d, or an ISO 8601 time")
    parser.add_argument("--kind", choices=("message", "callback"), help="messages or callbacks")
    parser.add_argument(
        "--all", action="store_true", help="every entry (with retry/purge and no filter)"
    )
    parser.add_argument(
        "--include-replayed", action="store_true", help="also entries already replayed"
    )


def _filter(args, limit: int = PAGE) -> DeadLetterFilter:
    return DeadLetterFilter(
        carrier=args.carrier,
        account_sid=args.account,
        error_code=args.error,
        since=None if args.since is None else parse_since(args.since, utc_now()),
        kind=args.kind,
        include_replayed=args.include_replayed,
        limit=limit,
    )


def _has_filter(args) -> bool:
    return any(
        value is not None
        for value in (args.carrier, args.account, args.error, args.since, args.kind)
    )


async def _matching(store, which: DeadLetterFilter, at_most: int | None) -> list[DeadLetter]:
    """Every entry `which` matches (page by page), up to `at_most`."""
    found: list[DeadLetter] = []
    after = 0
    while at_most is None or len(found) < at_most:
        page = await store.dead_letters(msgspec.structs.replace(which, after_id=after))
        found.extend(page)
        if len(page) < which.limit:
            break
        after = page[-1].id
    return found if at_most is None else found[:at_most]


async def _chosen(store, args) -> tuple[list[DeadLetter], list[str]]:
    """The entries a retry or purge names (IDs), or that its filter matches; and the IDs not
    found."""
    if args.entry_ids:
        entries, missing = [], []
        for entry_id in dict.fromkeys(args.entry_ids):
            entry = await store.dead_letter(entry_id)
            if entry is None:
                missing.append(f"{entry_id}: no such dead letter")
            else:
                entries.append(entry)
        return entries, missing
    return await _matching(store, _filter(args), None), []


def _refuse_everything_by_default(args, verb: str) -> None:
    if not args.entry_ids and not _has_filter(args) and not args.all:
        print(
            f"smsgw: dlq {verb}: name entries (IDs), a filter (--carrier, --account, --error, "
            "--since, --kind), or --all",
            file=sys.stderr,
        )
        raise SystemExit(2)


# -- list / show ------------------------------------------------------------------------------


def cmd_list(args) -> int:
    config = load(args.config)

    async def main() -> list[DeadLetter]:
        async with open_store(config) as store:
            return await _matching(store, _filter(args, min(args.limit, PAGE)), args.limit)

    entries = asyncio.run(main())
    if args.json:
        render.print_json(entries)
        return 0
    if not entries:
        print(
            "The dead-letter queue is empty" + (" for that filter." if _has_filter(args) else ".")
        )
        return 0
    print(render.DEAD_LETTER_HEADER)
    for entry in entries:
        print(render.dead_letter_line(entry))
    return 0


def cmd_show(args) -> int:
    config = load(args.config)

    async def main():
        async with open_store(config) as store:
            entry = await store.dead_letter(args.entry_id)
            if entry is None:
                return None
            return (entry, *await render.load_timeline(store, entry.message_sid))

    found = asyncio.run(main())
    if found is None:
        print(f"smsgw: no dead letter {args.entry_id}", file=sys.stderr)
        return 1
    entry, message, events, callbacks = found
    if args.json:
        render.print_json(
            {"entry": entry, "message": message, "events": events, "callbacks": callbacks}
        )
        return 0
    print(render.DEAD_LETTER_HEADER)
    print(render.dead_letter_line(entry))
    print()
    render.print_timeline(message, events, callbacks)
    return 0


# -- retry / purge ----------------------------------------------------------------------------


def cmd_retry(args) -> int:
    _refuse_everything_by_default(args, "retry")
    config = load(args.config)
    if args.to_carrier is not None and args.to_carrier not in config.carriers:
        known = ", ".join(config.carriers) or "none"
        print(
            f"smsgw: dlq retry: carrier {args.to_carrier!r} is not configured (configured: "
            f"{known})",
            file=sys.stderr,
        )
        return 2

    async def main() -> tuple[list[DeadLetter], list[str]]:
        async with open_store(config) as store:
            entries, failed = await _chosen(store, args)
            progress = render.Progress(len(entries), "replaying")
            replayed: list[DeadLetter] = []
            for start in range(0, len(entries), WRITES_IN_FLIGHT):
                chunk = entries[start : start + WRITES_IN_FLIGHT]
                commands = [await _replay_command(store, config, args, e) for e in chunk]
                pending = [
                    (entry, store.write(command) if not isinstance(command, str) else command)
                    for entry, command in zip(chunk, commands, strict=True)
                ]
                for entry, outcome in pending:
                    if isinstance(outcome, str):
                        failed.append(f"{entry.id}: {outcome}")
                        continue
                    try:
                        replayed.append(await outcome)
                    except StoreError as exc:
                        failed.append(f"{entry.id}: {exc}")
                progress.update(start + len(chunk))
            progress.close()
            return replayed, failed

    replayed, failed = asyncio.run(main())
    if args.json:
        render.print_json({"replayed": replayed, "failed": failed})
    else:
        for entry in replayed:
            target = f" to {entry.replayed_to}" if entry.replayed_to else ""
            print(f"replayed {entry.id} ({entry.kind} {entry.message_sid}){target}")
        for line in failed:
            print(f"not replayed {line}", file=sys.stderr)
        print(f"{len(replayed)} replayed, {len(failed)} not.")
    return 1 if failed else 0


async def _replay_command(store, config: Config, args, entry: DeadLetter):
    """The replay of `entry`, or why it cannot be (a message that cannot be routed there)."""
    now = utc_now()
    if args.to_carrier is None or entry.kind != "message":
        return ReplayDeadLetter(entry.id, now)
    message = await store.find_message(entry.message_sid)
    if message is None:
        return "its message no longer exists"
    try:
        route = plan(
            route_table(config, only=args.to_carrier),
            to=message.to_addr,
            from_=message.from_addr,
            body=message.body,
        )
    except RoutingError as exc:
        return f"cannot be routed to {args.to_carrier}: {exc.message}"
    return ReplayDeadLetter(entry.id, now, args.to_carrier, stored_route(route))


def cmd_purge(args) -> int:
    _refuse_everything_by_default(args, "purge")
    config = load(args.config)

    async def chosen() -> tuple[list[DeadLetter], list[str]]:
        async with open_store(config) as store:
            return await _chosen(store, args)

    entries, missing = asyncio.run(chosen())
    for line in missing:
        print(f"not purged {line}", file=sys.stderr)
    if not entries:
        print("Nothing to purge.")
        return 1 if missing else 0
    if not args.yes and not _confirmed(len(entries)):
        print("Nothing purged.", file=sys.stderr)
        return 1

    async def purge() -> int:
        async with open_store(config) as store:
            ids = [e.id for e in entries]
            return sum(
                [
                    await store.write(PurgeDeadLetters(tuple(ids[i : i + PAGE])))
                    for i in range(0, len(ids), PAGE)
                ]
            )

    purged = asyncio.run(purge())
    if args.json:
        render.print_json({"purged": purged, "missing": missing})
    else:
        print(f"{purged} dead letter(s) purged; their messages stay failed.")
    return 1 if missing else 0


def _confirmed(count: int, stdin=None) -> bool:
    stdin = stdin or sys.stdin
    if not stdin.isatty():
        print(
            f"smsgw: dlq purge would forget {count} dead letter(s); confirm with --yes "
            "(no terminal to ask on)",
            file=sys.stderr,
        )
        return False
    answer = input(f"Forget {count} dead letter(s)? Their messages stay failed. [y/N] ")
    return answer.strip().lower() in ("y", "yes")
