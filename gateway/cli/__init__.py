"""`smsgw` — the command line: run the daemon, run the simulator, manage accounts, inspect
messages and the dead-letter queue."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from gateway.cli import dlq, messages
from gateway.cli.common import DEFAULT_CONFIG, load, open_store
from gateway.logs import configure_logging


def _run_async(main) -> int:
    """Run a coroutine on uvloop (measured faster: ../shared/DECISIONS.md)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported OS
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def cmd_run(args) -> int:
    from gateway.daemon import DaemonError, serve

    config = load(args.config)
    configure_logging(config.log.format, config.log.level)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await serve(config, stop)
        except DaemonError as exc:
            print(f"smsgw: {exc}", file=sys.stderr)
            return 1
        return 0

    return _run_async(main())


def cmd_sim(argv: list[str]) -> int:
    from carriers.sim.cli import main as sim_main

    return sim_main(argv) or 0


def cmd_accounts_create(args) -> int:
    from gateway.clock import utc_now
    from gateway.ids import ACCOUNT, new_auth_token, new_sid
    from store.commands import CreateAccount

    config = load(args.config)

    async def main():
        async with open_store(config) as store:
            return await store.write(
                CreateAccount(new_sid(ACCOUNT), args.name, new_auth_token(), utc_now())
            )

    account = asyncio.run(main())
    print(f"AccountSid: {account.sid}\nAuthToken:  {account.auth_token}")
    return 0


def cmd_accounts_list(args) -> int:
    config = load(args.config)

    async def main():
        async with open_store(config) as store:
            return await store.list_accounts()

    for account in asyncio.run(main()):
        print(f"{account.sid}  {account.status:<9} {account.friendly_name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsgw", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the gateway daemon")
    run.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="TOML configuration file")
    run.set_defaults(func=cmd_run)

    sim = commands.add_parser(
        "sim", help="run the SMSC simulator (see `smsgw sim --help`)", add_help=False
    )
    sim.add_argument("sim_args", nargs=argparse.REMAINDER)
    sim.set_defaults(func=cmd_sim)

    accounts = commands.add_parser("accounts", help="manage accounts")
    account_commands = accounts.add_subparsers(dest="accounts_command", required=True)
    create = account_commands.add_parser("create", help="create an account, print SID and token")
    create.add_argument("--name", required=True)
    create.add_argument("-c", "--config", default=DEFAULT_CONFIG)
    create.set_defaults(func=cmd_accounts_create)
    listing = account_commands.add_parser("list", help="list accounts")
    listing.add_argument("-c", "--config", default=DEFAULT_CONFIG)
    listing.set_defaults(func=cmd_accounts_list)
    dlq.add_commands(commands)
    messages.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sim"]:
        return cmd_sim(argv[1:])
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
