"""``smsgw sim`` / ``python -m carriers.sim``: run the SMSC simulator until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
from collections.abc import Sequence

from carriers.sim.control import start_control
from carriers.sim.rules import Rule, parse_rule
from carriers.sim.server import Simulator, SimulatorConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smsgw sim",
        description="SMPP 3.4 SMSC simulator: accepts binds, answers submit_sm, sends receipts.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=2775, help="TCP port (0: any free port)")
    parser.add_argument("--system-id", default="smsgw", help="system_id binds must use")
    parser.add_argument("--password", default="secret", help="password binds must use")
    parser.add_argument(
        "--receipt-delay", type=float, default=0.05, help="seconds before each delivery receipt"
    )
    parser.add_argument("--no-receipts", action="store_true", help="never send delivery receipts")
    parser.add_argument(
        "--message-id-format", choices=("hex", "decimal"), default="hex",
        help="how submit_sm_resp message ids look",
    )  # fmt: skip
    parser.add_argument(
        "--receipt-id-format", choices=("hex", "decimal"),
        help="write the id in receipts in this base, text only (default: as in the response)",
    )  # fmt: skip
    parser.add_argument(
        "--max-rate", type=float, metavar="N",
        help="answer ESME_RTHROTTLED past N accepted submits per second",
    )  # fmt: skip
    parser.add_argument(
        "--tls-cert", metavar="PEM", help="serve SMPP over TLS with this certificate (chain)"
    )
    parser.add_argument("--tls-key", metavar="PEM", help="its private key (if not in --tls-cert)")
    parser.add_argument(
        "--rule", action="append", default=[], metavar="PATTERN=OUTCOME", type=_rule,
        help="what happens to submits to destinations matching PATTERN (shell wildcards): "
        "delivered, undelivered, expired, rejected, deleted, unknown, no-receipt, no-response, "
        "error:STATUS, delay:SECONDS; repeatable, the first match wins",
    )  # fmt: skip
    parser.add_argument(
        "--receipts-first", action="store_true",
        help="send each receipt before the submit_sm_resp it belongs to",
    )  # fmt: skip
    parser.add_argument(
        "--disconnect-every", type=int, default=0, metavar="N",
        help="drop the connection after answering every Nth submit (0: never)",
    )  # fmt: skip
    parser.add_argument(
        "--control-port", type=int, metavar="N",
        help="serve HTTP on N: POST /mo (source, destination, text) injects an MO, GET /stats",
    )  # fmt: skip
    parser.add_argument(
        "--owed-file", metavar="PATH",
        help="keep unacknowledged receipts and MO here, delivered again after a restart",
    )  # fmt: skip
    return parser


def _rule(text: str) -> Rule:
    try:
        return parse_rule(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def server_context(cert: str, key: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def serve_forever(config: SimulatorConfig, control_port: int | None = None) -> None:
    """Run a simulator until SIGINT/SIGTERM (or cancellation), then stop it cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals
            pass
    try:
        async with Simulator(config) as sim:
            print(f"SMSC simulator listening on {config.host}:{sim.port}", flush=True)
            control = None
            if control_port is not None:
                control = await start_control(sim, config.host, control_port)
                print(f"control: POST http://{config.host}:{control_port}/mo, GET …/stats",
                      flush=True)  # fmt: skip
            try:
                await stop.wait()
            finally:
                if control is not None:
                    await control.cleanup()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tls_key and not args.tls_cert:
        parser.error("--tls-key needs --tls-cert")
    try:
        tls = server_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    except (OSError, ssl.SSLError) as exc:
        parser.error(f"--tls-cert {args.tls_cert}: cannot load the certificate and key: {exc}")
    config = SimulatorConfig(
        host=args.host,
        port=args.port,
        system_id=args.system_id,
        password=args.password,
        receipt_delay=args.receipt_delay,
        send_receipts=not args.no_receipts,
        message_id_format=args.message_id_format,
        receipt_id_format=args.receipt_id_format,
        max_submit_rate=args.max_rate,
        record_submits=False,  # nobody can inspect them from a command line; memory would grow
        ssl=tls,
        owed_path=args.owed_file,
        rules=tuple(args.rule),
        receipts_first=args.receipts_first,
        disconnect_every=args.disconnect_every,
    )
    asyncio.run(serve_forever(config, args.control_port))
    return 0
