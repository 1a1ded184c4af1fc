"""End-to-end benchmark under exactly the load the project is judged by (../shared/bench/README.md).

Processes, all on 127.0.0.1, each in its own process group:
  - the SMPP simulator (`smsgw sim`), answering submit_sm at once, receipts after --receipt-delay;
  - the daemon (`smsgw run`, carrier window --window, JSON logs at level warning, demo account);
  - status_sink.js (the StatusCallback receiver) and twilio_load.js (the HTTP load), both from the
    shared bench directory, run with Node.

The figure, as the shared README defines it: final callbacks/s = unique final ids seen by the sink
÷ (last final callback − first accepted request). Also printed: accepted/s (twilio_load.js's own
figure), the daemon's CPU seconds (utime+stime from /proc, from just before the load to the last
final callback) and CPU µs per accepted message, and its peak RSS (VmHWM). twilio_load.js reports
no per-request latency, so accept p50/p99 come from a probe: one more keep-alive client posting a
message every --probe-interval seconds (20/s by default, ~2 % extra load, without a
StatusCallback so the sink's figure is untouched) and timing each 201.

    .venv/bin/python bench/e2e.py [--count 20000] [--concurrency 64] [--window 100]
        [--receipt-delay 0.5] [--profile FILE [--profile-format raw] [--profile-top 25]
        [--profile-native] [--profile-gil]]

--profile runs `py-spy record --threads` on the daemon for the duration of the load (first request
to last final callback); with the raw format the top functions by own time are printed per thread
(the same as `bench/pyspy_top.py FILE`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import _harness as h
import pyspy_top


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    h.add_load_arguments(parser)
    parser.add_argument("--shared", help=f"the shared bench directory (default {h.DEFAULT_SHARED})")
    parser.add_argument("--node", help="the node binary (default: node on PATH)")
    parser.add_argument(
        "--src",
        help="run the daemon and simulator from the packages in this directory (e.g. a "
        "`git archive HEAD` export) instead of the installed working tree",
    )
    parser.add_argument(
        "--max-seconds", type=float, default=240, help="twilio_load.js stops sending after this"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300,
        help="seconds to wait, after the load, for every accepted message's final callback",
    )
    parser.add_argument(
        "--probe-interval",
        type=float,
        default=0.05,
        help="seconds between the latency probe's requests (an extra client, no callback)",
    )
    parser.add_argument("--profile", metavar="FILE", help="py-spy record the daemon into FILE")
    parser.add_argument(
        "--profile-format",
        choices=("raw", "speedscope", "flamegraph"),
        help="py-spy output format (default by FILE: .json speedscope, .svg flamegraph, else raw)",
    )
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="py-spy --gil: sample only the thread holding the GIL (what one process serializes)",
    )
    parser.add_argument(
        "--profile-native",
        action="store_true",
        help="py-spy --native: C frames too (SQLite, syscalls, waits for the GIL)",
    )
    parser.add_argument(
        "--profile-top",
        type=int,
        default=25,
        metavar="N",
        help="after a raw profile, print the top N functions by own time per thread (0: don't)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="S",
        help="first wait up to S seconds for the machine to be < 15%% busy (shared machines)",
    )
    parser.add_argument("--dir", help="parent directory for the work directory (default: TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, db)")
    parser.add_argument("--json-only", action="store_true", help="print only the JSON line")
    # Every message now carries a StatusCallback (the judged load); kept so old commands still run.
    parser.add_argument("--callbacks", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    code = h.use_source(args.src)
    shared = h.shared_dir(args.shared)
    node = h.node_command(args.node)
    pyspy = None
    if args.profile:
        pyspy = h.pyspy_command()
        if pyspy is None:
            raise h.BenchError(h.PYSPY_HINT)
    fmt = h.profile_format(args.profile, args.profile_format) if args.profile else None

    if args.wait_quiet:
        h.wait_quiet(args.wait_quiet)
    with h.work_directory("smsgw-e2e-", args.dir, args.keep) as workdir:
        db = workdir / "smsgw.db"
        result: dict = {}
        try:
            with h.Children() as children:
                sim, sim_port = h.start_simulator(children, workdir, args.receipt_delay)
                api_port = h.free_port()
                daemon = h.start_daemon(
                    children, workdir, h.config_text(db, api_port, sim_port, args.window)
                )
                h.wait_http(f"http://{h.HOST}:{api_port}/healthz", daemon, "the daemon")
                sid, token = h.demo_credentials(db, workdir / "daemon.out", daemon)
                sink, sink_port = h.start_sink(children, node, shared, workdir)
                time.sleep(1.0)  # let the bind settle: no start-up work in the measured window

                spy = None
                if args.profile:
                    spy = h.start_pyspy(
                        children,
                        pyspy,
                        daemon.pid,
                        args.profile,
                        fmt,
                        args.profile_rate,
                        workdir / "py-spy.log",
                        native=args.profile_native,
                        gil=args.profile_gil,
                    )
                ours = [daemon.pid, sim.pid, sink.pid] + ([spy.pid] if spy else [])
                noise = h.NoiseMeter(ours)
                cpu0, threads0 = h.tree_cpu_seconds(daemon.pid), h.thread_cpu(daemon.pid)
                sim_cpu0, sink_cpu0 = h.cpu_seconds(sim.pid), h.cpu_seconds(sink.pid)
                with h.LatencyProbe.twilio(api_port, sid, token, args.probe_interval) as probe:
                    load = h.run_load(
                        children,
                        node,
                        shared,
                        workdir,
                        api_port=api_port,
                        sid=sid,
                        token=token,
                        count=args.count,
                        concurrency=args.concurrency,
                        callback=f"http://{h.HOST}:{sink_port}/status",
                        max_seconds=args.max_seconds,
                    )
                accepted = load["accepted"]
                at_final = h.wait_final(sink_port, accepted, args.timeout, [("the daemon", daemon)])
                cpu1, threads1 = h.tree_cpu_seconds(daemon.pid), h.thread_cpu(daemon.pid)
                sim_cpu1, sink_cpu1 = h.cpu_seconds(sim.pid), h.cpu_seconds(sink.pid)
                rss = h.tree_peak_rss_mb(daemon.pid)
                machine = noise.stop()
                if spy is not None:
                    h.stop_pyspy(children, spy, args.profile, workdir / "py-spy.log")
                names = h.thread_names(daemon.pid, h.pyspy_command())
                time.sleep(0.5)  # stragglers: duplicate or late callbacks
                stats = h.get_json(f"http://{h.HOST}:{sink_port}/stats")
                by_status = h.rows_by_status(db)
                children.stop(daemon)
                daemon_exit = daemon.returncode

            # The figure is taken when the last accepted message's final callback came in; `stats`,
            # read 0.5 s later, only adds duplicates and late callbacks.
            cpu = cpu1 - cpu0
            result = {
                "bench": "e2e",
                "code": code,
                "profiled": bool(args.profile),
                **h.load_figures(args, load, at_final, stats),
                # Sampled by the probe (twilio_load.js reports no per-request latency).
                "accept_p50_ms": probe.percentile(0.50),
                "accept_p99_ms": probe.percentile(0.99),
                "accept_max_ms": probe.percentile(1.0),
                "probe_requests": len(probe.latencies_ms),
                "probe_failures": dict(probe.failures),
                "daemon_cpu_s": round(cpu, 2),
                "daemon_cpu_us_per_msg": round(cpu / accepted * 1e6, 1) if accepted else None,
                "daemon_cpu_by_thread_s": h.cpu_by_thread(threads0, threads1, names),
                "simulator_cpu_s": round(sim_cpu1 - sim_cpu0, 2),
                # The sink's work grows with the callbacks it is sent (three per message here).
                "sink_cpu_s": round(sink_cpu1 - sink_cpu0, 2),
                "load_client_cpu_pct": load.get("client_cpu_pct"),
                "daemon_peak_rss_mb": round(rss, 1),
                "messages_by_status": by_status,
                "daemon_exit_status": daemon_exit,
                "machine": machine,
            }
            if not args.json_only:
                print_table(result)
                print("\ndaemon log (warning and above), by event:")
                for line in h.log_summary(workdir / "daemon.log") or ["        (empty)"]:
                    print(line)
                if args.profile and fmt == "raw" and args.profile_top > 0:
                    print(f"\npy-spy profile {args.profile} (own time per thread):")
                    print(pyspy_top.report(pyspy_top.parse(Path(args.profile)), args.profile_top))
            print(json.dumps(result))
            return result
        except BaseException:
            # Failed or interrupted: keep the evidence (children are already stopped).
            print("\ndaemon log (warning and above), by event:", file=sys.stderr)
            for line in h.log_summary(workdir / "daemon.log") or ["        (empty)"]:
                print(line, file=sys.stderr)
            raise


def print_table(r: dict) -> None:
    m = r["machine"]
    rows = [
        ("code", r["code"]),
        (
            "load",
            f"{r['count']} msgs, concurrency {r['concurrency']}, window {r['window']}, "
            f"receipt delay {r['receipt_delay']}s"
            + (", PROFILED (py-spy)" if r["profiled"] else ""),
        ),
        ("accepted", f"{r['accepted']}  (HTTP {r['http_status']}, errors {r['client_errors']})"),
        ("accepted/s", f"{r['accepted_per_s']}"),
        ("final callbacks/s", f"{r['final_callbacks_per_s']:,.1f}"),
        (
            "  unique final ids",
            f"{r['unique_final_ids']} (dup finals {r['dup_final']}) in "
            f"{r['first_accept_to_last_final_s']}s; callbacks {r['callbacks_by_status']}",
        ),
        (
            "accept p50 / p99",
            f"{r['accept_p50_ms']} / {r['accept_p99_ms']} ms (max {r['accept_max_ms']}), sampled "
            f"by {r['probe_requests']} probe requests (failures {r['probe_failures'] or 'none'})",
        ),
        ("daemon CPU", f"{r['daemon_cpu_s']} s  ({r['daemon_cpu_us_per_msg']} µs/msg)"),
        ("  by thread", ", ".join(f"{k} {v}" for k, v in r["daemon_cpu_by_thread_s"].items())),
        (
            "simulator CPU",
            f"{r['simulator_cpu_s']} s; status sink CPU {r['sink_cpu_s']} s; "
            f"load client CPU {r['load_client_cpu_pct']}%",
        ),
        ("daemon peak RSS", f"{r['daemon_peak_rss_mb']} MB"),
        ("messages in store", f"{r['messages_by_status']}"),
        (
            "other load",
            f"{m['other_processes_cpu_s']} CPU s by other processes during the "
            f"{m['wall_s']}s run ({m['other_share_of_machine']:.0%} of the machine)"
            + ("  <- NOISY, rerun on a quiet machine" if m["other_share_of_machine"] > 0.1 else ""),
        ),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def main(argv=None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
