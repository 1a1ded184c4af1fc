"""Backlog benchmark: accept rate, drain rate and peak RSS with N messages already queued.

For each size N (--sizes, default 0,100000,1000000):
  1. prefill (N > 0): start the daemon with its carrier pointing at a closed port (nothing drains),
     accept one message through the API (with a StatusCallback to the sink, unless
     --no-callbacks), stop the daemon (SIGTERM), then copy that message N-1 times with sqlite3 in
     one INSERT … WITH RECURSIVE. Columns come from PRAGMA table_info, so the copy follows schema
     changes: every column is the template's value except the primary key `sid` (a fresh
     'SM' + 32 lowercase hex). Rows of tables that point at messages (a foreign key to messages,
     or a `message_sid` column: message_events, callbacks, …) are copied per new message the
     same way, with a fresh INTEGER PRIMARY KEY. The prefilled messages are older than the new
     ones, so they are claimed first.
  2. measure: start the simulator, status_sink.js and the daemon on that file, then run
     twilio_load.js for --count new messages (window --window, receipt delay --receipt-delay;
     every message carries a StatusCallback, as in the judged load, unless --no-callbacks).
     accept/s is twilio_load.js's figure; drain/s is the growth of the number of `delivered`
     messages in the store (polled once a second, read-only) from the first request until
     everything is final or --phase-seconds have passed (the cap, so the 1M case stays bounded);
     peak RSS is the daemon's VmHWM at the end of the phase. twilio_load.js also stops sending at
     the cap.

With --scheduled (a comma-separated list, default 0), each size runs once per count of
*scheduled* messages added to the prefill: copies of the template in status `scheduled`, due a day
later (so none comes due during the phase). The issue's case is `--sizes 100000 --scheduled
0,100000`: the drain of the queued messages must stay within 20 % of the run with none scheduled
(the `vs unsched` column). The scheduler's cost per due message is bench/scheduler.py's.

Targets (printed as ratios to the 0-backlog run): both rates within 20 % of the empty-queue rate,
daemon RSS < 250 MB. With an empty queue the drain rate is bounded by the arrival rate; with a
backlog the carrier lane always has work, so a drain ratio above 1 is expected, not a gain.

    .venv/bin/python bench/backlog.py [--sizes 0,100000,1000000] [--count 20000]
        [--phase-seconds 60] [--no-callbacks] [--scheduled 0,100000]
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import sqlite3
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import _harness as h

FINAL = ("delivered", "undelivered", "failed")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        default="0,100000,1000000",
        help="comma-separated backlog sizes (messages queued before the run)",
    )
    parser.add_argument("--count", type=int, default=20_000, help="new messages sent per size")
    parser.add_argument(
        "--scheduled",
        default="0",
        help="comma-separated counts of scheduled (not yet due) messages added to each prefill",
    )
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--receipt-delay", type=float, default=0.5)
    parser.add_argument(
        "--phase-seconds",
        type=float,
        default=60,
        help="cap on each measurement (load and drain) from the first request",
    )
    parser.add_argument(
        "--no-callbacks", action="store_true", help="messages without a StatusCallback"
    )
    parser.add_argument("--shared", help=f"the shared bench directory (default {h.DEFAULT_SHARED})")
    parser.add_argument("--node", help="the node binary (default: node on PATH)")
    parser.add_argument(
        "--src",
        help="run the daemon and simulator from the packages in this directory (e.g. a "
        "`git archive HEAD` export) instead of the installed working tree",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="S",
        help="before each size, wait up to S seconds for the machine to be < 15%% busy",
    )
    parser.add_argument("--dir", help="parent directory for the work directory (default: TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
        args.scheduled = [int(s.replace("_", "")) for s in args.scheduled.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes: expected comma-separated integers, got {args.sizes!r}")
    return args


# -- prefill ---------------------------------------------------------------------------------


def post_message(api_port: int, sid: str, token: str, callback: str | None) -> str:
    form = {"To": "+447900000099", "From": "+15005550006", "Body": "backlog"}
    if callback:
        form["StatusCallback"] = callback
    request = urllib.request.Request(
        f"http://{h.HOST}:{api_port}/2010-04-01/Accounts/{sid}/Messages.json",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Authorization": "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
        if response.status != 201:
            raise h.BenchError(f"template message refused: {response.status} {body}")
    return body["sid"]


def make_template(workdir: Path, db: Path, callback: str | None) -> None:
    """One message accepted through the API by a daemon whose carrier cannot be reached."""
    closed_port = h.free_port()  # nothing listens there: the message stays queued
    api_port = h.free_port()
    with h.Children() as children:
        config = h.config_text(db, api_port, closed_port, 100, reconnect_min=30.0)
        daemon = h.start_daemon(children, workdir, config, tag="-prefill")
        h.wait_http(f"http://{h.HOST}:{api_port}/healthz", daemon, "the daemon (prefill)")
        sid, token = h.demo_credentials(db, workdir / "daemon-prefill.out", daemon)
        post_message(api_port, sid, token, callback)
        if children.stop(daemon, timeout=30) != 0:
            raise h.BenchError(f"the prefill daemon exited with status {daemon.returncode}")


def _columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, bool]]:
    """(name, is the rowid alias) for each column; a rowid alias gets a fresh value on insert."""
    info = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
    pks = [row for row in info if row[5]]
    alias = len(pks) == 1 and pks[0][2].upper() == "INTEGER"
    return [(row[1], alias and row[5] > 0) for row in info]


def _dependents(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(table, column) pairs that hold a message sid: foreign keys to messages, or message_sid."""
    found: list[tuple[str, str]] = []
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    for table in tables:
        if table == "messages":
            continue
        columns = {name for name, _ in _columns(conn, table)}
        refs = {
            fk[3]
            for fk in conn.execute(f'PRAGMA foreign_key_list("{table}")')
            if fk[2] == "messages" and fk[4] in (None, "sid")
        }
        if "message_sid" in columns:
            refs.add("message_sid")
        found.extend((table, column) for column in sorted(refs))
    return found


def prefill(db: Path, total: int, scheduled: int = 0) -> dict[str, int]:
    """Grow the one message in `db` (and its dependent rows) to `total` messages, and add
    `scheduled` copies of it in status `scheduled`, due a day after it (messages only)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # a bench fixture; checkpointed below
        conn.execute("PRAGMA cache_size = -524288")  # 512 MiB: random-key index inserts
        conn.execute("PRAGMA temp_store = MEMORY")
        info = _columns(conn, "messages")
        pks = [row[1] for row in conn.execute("PRAGMA table_info(messages)") if row[5]]
        if pks != ["sid"]:
            raise h.BenchError(f"messages' primary key is {pks}, this prefill expects ['sid']")
        templates = conn.execute("SELECT rowid, * FROM messages").fetchall()
        if len(templates) != 1:
            raise h.BenchError(f"expected 1 template message, found {len(templates)}")
        _rowid, *values = templates[0]
        names = [name for name, _ in info]
        row = dict(zip(names, values, strict=True))
        template_sid = row["sid"]
        copies = total - 1
        added = {"messages": copies}
        conn.execute("BEGIN")
        if scheduled > 0:
            later = {
                "status": "scheduled",
                "next_attempt_at": row["next_attempt_at"] + 86_400_000_000,
            }
            quoted = ", ".join(f'"{n}"' for n in names)
            fresh = ", ".join(
                "'SM' || lower(hex(randomblob(16)))" if n == "sid" else "?" for n in names
            )
            conn.execute(
                f"""INSERT INTO messages ({quoted})
                    WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?)
                    SELECT {fresh} FROM seq""",
                [scheduled, *(later.get(n, row[n]) for n in names if n != "sid")],
            )
            added["scheduled"] = scheduled
        if copies <= 0:
            conn.execute("COMMIT")
            return added
        selects = ", ".join(
            "'SM' || lower(hex(randomblob(16)))" if name == "sid" else "?" for name in names
        )
        params = [row[name] for name in names if name != "sid"]
        quoted = ", ".join(f'"{n}"' for n in names)
        conn.execute(
            f"""INSERT INTO messages ({quoted})
                WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?)
                SELECT {selects} FROM seq""",
            [copies, *params],
        )
        first_copy = conn.execute("SELECT MAX(rowid) FROM messages").fetchone()[0] - copies
        for table, column in _dependents(conn):
            cols = [(name, alias) for name, alias in _columns(conn, table) if not alias]
            col_names = [name for name, _ in cols]
            quoted = ", ".join(f'"{n}"' for n in col_names)
            for dep in conn.execute(
                f'SELECT {quoted} FROM "{table}" WHERE "{column}" = ?',
                (template_sid,),
            ).fetchall():
                dep_values = dict(zip(col_names, dep, strict=True))
                selects = ", ".join("m.sid" if name == column else "?" for name in col_names)
                conn.execute(
                    f"""INSERT INTO "{table}" ({quoted})
                        SELECT {selects} FROM messages AS m WHERE m.rowid > ? ORDER BY m.rowid""",
                    [*(dep_values[n] for n in col_names if n != column), first_copy],
                )
                added[table] = added.get(table, 0) + copies
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return added
    finally:
        conn.close()


# -- measurement ----------------------------------------------------------------------------------


def count_final(db: Path) -> tuple[int, int]:
    """(delivered, final) message counts, through the status index (final ones only)."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        counts = dict(
            conn.execute(
                f"SELECT status, count(*) FROM messages WHERE status IN {FINAL!r} GROUP BY status"
            )
        )
    finally:
        conn.close()
    return counts.get("delivered", 0), sum(counts.values())


def sink_finals(port: int | None) -> int:
    return h.get_json(f"http://{h.HOST}:{port}/stats")["unique_final_ids"] if port else 0


def measure(args, size: int, workdir: Path, shared: Path, node: str, scheduled: int = 0) -> dict:
    db = workdir / "smsgw.db"
    result: dict = {"backlog": size, "scheduled": scheduled}
    with h.Children() as children:
        sink_port = _sink = None
        if not args.no_callbacks:
            _sink, sink_port = h.start_sink(children, node, shared, workdir)
        callback = f"http://{h.HOST}:{sink_port}/status" if sink_port else None
        if size > 0 or scheduled > 0:
            began = time.monotonic()
            make_template(workdir, db, callback)
            added = prefill(db, max(size, 1), scheduled)
            result["prefill_s"] = round(time.monotonic() - began, 1)
            result["prefill_rows"] = added
            print(f"  prefilled {added} in {result['prefill_s']}s", file=sys.stderr)

        if args.wait_quiet:
            h.wait_quiet(args.wait_quiet)
        sim, sim_port = h.start_simulator(children, workdir, args.receipt_delay)
        api_port = h.free_port()
        spawned = time.monotonic()
        daemon = h.start_daemon(
            children, workdir, h.config_text(db, api_port, sim_port, args.window)
        )
        h.wait_http(f"http://{h.HOST}:{api_port}/healthz", daemon, "the daemon", timeout=180)
        result["startup_s"] = round(time.monotonic() - spawned, 2)
        sid, token = h.demo_credentials(db, workdir / "daemon.out", daemon)

        noise = h.NoiseMeter([daemon.pid, sim.pid] + ([_sink.pid] if sink_port else []))
        cpu0 = h.tree_cpu_seconds(daemon.pid)
        delivered0, _ = count_final(db)
        sink0 = sink_finals(sink_port)
        t0 = time.monotonic()
        load_child = h.start_load(
            children,
            node,
            shared,
            workdir,
            api_port=api_port,
            sid=sid,
            token=token,
            count=args.count,
            concurrency=args.concurrency,
            callback=callback or "http://127.0.0.1:9/none",
            max_seconds=args.phase_seconds,
        )
        load = None
        delivered, final = delivered0, 0
        timeline: list[tuple[float, int]] = []
        drained = False
        while True:
            time.sleep(1.0)
            if daemon.poll() is not None:
                raise h.BenchError(f"the daemon exited with status {daemon.returncode} mid-run")
            delivered, final = count_final(db)
            elapsed = time.monotonic() - t0
            timeline.append((round(elapsed, 1), delivered - delivered0))
            if load is None and load_child.poll() is not None:
                load = h.finish_load(load_child, workdir, args.phase_seconds)
            expected = max(size, 1 if scheduled else 0) + (load["accepted"] if load else args.count)
            if load is not None and final >= expected:
                drained = True
                break
            if elapsed >= args.phase_seconds:
                break
        t_end = time.monotonic()
        if load is None:
            load = h.finish_load(load_child, workdir, args.phase_seconds)
        cpu = h.tree_cpu_seconds(daemon.pid) - cpu0
        rss = h.tree_peak_rss_mb(daemon.pid)
        sink1 = sink_finals(sink_port)
        machine = noise.stop()
        children.stop(daemon)

    span = t_end - t0
    result.update(
        {
            "accepted": load["accepted"],
            "http_status": load.get("status"),
            "client_errors": load.get("errors"),
            "accepted_per_s": load.get("accepted_per_s"),
            "delivered_in_window": delivered - delivered0,
            "window_s": round(span, 1),
            "drained": drained,
            "drain_per_s": round((delivered - delivered0) / span, 1),
            "final_callbacks_in_window": sink1 - sink0 if sink_port else None,
            "daemon_cpu_s": round(cpu, 2),
            "daemon_peak_rss_mb": round(rss, 1),
            "machine": machine,
            "log": h.log_summary(workdir / "daemon.log", limit=6),
            "timeline": timeline[:: max(1, len(timeline) // 12)],
        }
    )
    return result


def _versus(result: dict, unscheduled: dict | None) -> str:
    """Drain with scheduled messages waiting, as a ratio to the same backlog without them."""
    if not result["scheduled"] or not unscheduled or not unscheduled["drain_per_s"]:
        return "-"
    return f"{result['drain_per_s'] / unscheduled['drain_per_s']:.2f}"


def main(argv=None) -> int:
    args = parse_args(argv)
    code = h.use_source(args.src)
    shared = h.shared_dir(args.shared)
    node = h.node_command(args.node)
    top = Path(tempfile.mkdtemp(prefix="smsgw-backlog-", dir=args.dir))
    results: list[dict] = []
    began = time.monotonic()
    try:
        for size, scheduled in ((s, k) for s in args.sizes for k in args.scheduled):
            print(f"backlog {size:,}, scheduled {scheduled:,}: ...", file=sys.stderr)
            workdir = top / f"n{size}-s{scheduled}"
            workdir.mkdir()
            try:
                result = measure(args, size, workdir, shared, node, scheduled)
            except BaseException:
                for name in ("daemon-prefill.log", "daemon.log"):
                    lines = h.log_summary(workdir / name)
                    if lines:
                        print(f"{name} (warning and above), by event:", file=sys.stderr)
                        print("\n".join(lines), file=sys.stderr)
                raise
            results.append(result)
            print(
                f"  accept/s {result['accepted_per_s']}, drain/s {result['drain_per_s']} "
                f"({result['delivered_in_window']} in {result['window_s']}s, "
                f"drained={result['drained']}; final callbacks in that window "
                f"{result['final_callbacks_in_window']}), RSS {result['daemon_peak_rss_mb']} MB, "
                f"start-up {result['startup_s']}s",
                file=sys.stderr,
            )
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
    except BaseException:
        args.keep = True  # failed or interrupted: keep the logs and databases
        raise
    finally:
        if args.keep:
            print(f"kept {top}", file=sys.stderr)
        else:
            shutil.rmtree(top, ignore_errors=True)

    base = next((r for r in results if r["backlog"] == 0 and r["scheduled"] == 0), None)
    unscheduled = {r["backlog"]: r for r in results if r["scheduled"] == 0}
    print(f"\ncode: {code}")
    print(
        f"{args.count} new messages per size, concurrency {args.concurrency}, window "
        f"{args.window}, receipt delay {args.receipt_delay}s, callbacks "
        f"{'off' if args.no_callbacks else 'on'}, each phase capped at {args.phase_seconds:g}s; "
        f"total {time.monotonic() - began:.0f}s"
    )
    header = (
        f"{'backlog':>9} {'accept/s':>9} {'ratio':>6} {'drain/s':>8} {'ratio':>6} "
        f"{'drained':>8} {'window':>7} {'RSS MB':>7} {'CPU s':>6} {'start s':>7} {'other':>6} "
        f"{'scheduled':>9} {'vs unsched':>10}"
    )
    print(header)
    for r in results:
        acc_ratio = drain_ratio = "-"
        if base and base["accepted_per_s"] and base["drain_per_s"]:
            acc_ratio = f"{r['accepted_per_s'] / base['accepted_per_s']:.2f}"
            drain_ratio = f"{r['drain_per_s'] / base['drain_per_s']:.2f}"
        rss_flag = "" if r["daemon_peak_rss_mb"] < 250 else " (!)"
        print(
            f"{r['backlog']:>9,} {r['accepted_per_s']:>9} {acc_ratio:>6} {r['drain_per_s']:>8} "
            f"{drain_ratio:>6} {('yes' if r['drained'] else 'no'):>8} {r['window_s']:>6}s "
            f"{r['daemon_peak_rss_mb']:>6}{rss_flag} {r['daemon_cpu_s']:>6} {r['startup_s']:>7} "
            f"{r['machine']['other_share_of_machine']:>6.0%} {r['scheduled']:>9,} "
            f"{_versus(r, unscheduled.get(r['backlog'])):>10}"
        )
    print("target: ratios within 0.80-1.20 of the empty queue (drain above 1 is expected, see")
    print("--help), peak RSS < 250 MB. other: share of the machine's CPU used by processes")
    print("outside this bench during the phase (> 10 %: the figures are noisy)")
    for r in results:
        if r["log"]:
            print(f"\ndaemon log at backlog {r['backlog']:,} (warning and above):")
            for line in r["log"]:
                print(line)
    summary = {
        "bench": "backlog",
        "code": code,
        "args": vars(args),
        "results": [{k: v for k, v in r.items() if k != "log"} for r in results],
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
