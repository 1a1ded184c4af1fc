"""A/B of two code trees under the judged load: bench/e2e.py run alternately on each, medians.

Why: this machine's speed drifts by up to 2x from minute to minute (a 10M-iteration Python loop took
0.30 to 0.70 s within one session, and one tree measured 878 and 1,223 µs of daemon CPU per message
in back-to-back runs), so a single run of each side says nothing about a 10 % change. Runs of the
two sides alternate (A B A B …) so drift hits both alike, and the report is the median of each
side and the median of the per-pair ratios (B ÷ A of neighbouring runs).

    .venv/bin/python bench/ab.py --base REV [--new REV|--new-dir DIR] [--pairs 5] [e2e options]
    .venv/bin/python bench/ab.py --kannel [--new REV|--new-dir DIR] [--pairs 5] [-- options]

With `--kannel`, side A is Kannel 1.4.5 under the same load (bench/kannel_e2e.py, its store file
on) instead of a tree: issue 11's target is a ratio to Kannel on this machine, and only runs
alternated within the same minutes can state it. Options after `--` then go to both benches, so
only the ones they share (--count, --concurrency, --window, --receipt-delay).

`--base`/`--new` are git revisions exported with `git archive` (the new side defaults to the
working tree as it is, uncommitted changes included). Options after `--` go to every e2e run,
e.g. `-- --count 10000`. Each pair takes ~1.5 minutes under the default load.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = (
    ("final_callbacks_per_s", "final callbacks/s", "{:,.0f}"),
    ("accepted_per_s", "accepted/s", "{:,.0f}"),
    ("accept_p50_ms", "accept p50 ms", "{:.1f}"),
    ("accept_p99_ms", "accept p99 ms", "{:.1f}"),
    ("daemon_cpu_us_per_msg", "daemon CPU µs/msg", "{:,.0f}"),
    ("main_cpu_s", "main thread CPU s", "{:.2f}"),
    ("writer_cpu_s", "writer process CPU s", "{:.2f}"),
    ("daemon_peak_rss_mb", "peak RSS MB", "{:.1f}"),
)


def parse_args(argv=None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", help="git revision of side A")
    parser.add_argument(
        "--kannel", action="store_true", help="side A is Kannel (bench/kannel_e2e.py), not a tree"
    )
    parser.add_argument("--new", help="git revision of side B (default: the working tree)")
    parser.add_argument("--new-dir", help="a directory holding side B's packages instead")
    parser.add_argument("--pairs", type=int, default=5, help="A/B pairs to run (default 5)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    args = parser.parse_args(argv)
    if bool(args.base) == args.kannel:
        parser.error("give exactly one of --base REV and --kannel")
    return args, extra


def export(revision: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def working_tree(into: Path) -> Path:
    """The working tree's files as they are (tracked and new, not ignored; edits included)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            target = into / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return into


def one_run(src: Path | None, extra: list[str]) -> dict:
    """One bench/e2e.py run on the tree `src`, or one bench/kannel_e2e.py run when `src` is None."""
    bench, source = ("kannel_e2e.py", []) if src is None else ("e2e.py", ["--src", str(src)])
    argv = [sys.executable, str(ROOT / "bench" / bench), "--json-only", *source, *extra]
    done = subprocess.run(argv, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = done.stdout[-2000:] + done.stderr[-2000:]
        raise SystemExit(f"bench/{bench} failed on {src or 'Kannel'}:\n{tail}")
    result = json.loads(lines[-1])
    if src is None:  # Kannel's figures under the names the table reads (it has no threads of ours)
        result["daemon_cpu_us_per_msg"] = result["kannel_cpu_us_per_msg"]
        result["daemon_peak_rss_mb"] = result["kannel_peak_rss_mb"]
    else:
        threads = result.get("daemon_cpu_by_thread_s", {})
        result["main_cpu_s"] = threads.get("MainThread", 0.0)
        result["writer_cpu_s"] = threads.get("writer-process", 0.0)
    return result


def summary(a_runs: list[dict], b_runs: list[dict]) -> dict:
    out = {}
    for key, _, _ in FIGURES:
        a = [r.get(key) for r in a_runs]
        b = [r.get(key) for r in b_runs]
        if None in a or None in b:  # Kannel has no threads or writer process of ours
            continue
        ratios = [y / x for x, y in zip(a, b, strict=True) if x]
        out[key] = {
            "a_median": statistics.median(a),
            "b_median": statistics.median(b),
            "pair_ratio_median": statistics.median(ratios) if ratios else None,
            "a": a,
            "b": b,
        }
    return out


def main(argv=None) -> int:
    args, extra = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="smsgw-ab-"))
    try:
        side_a = None if args.kannel else export(args.base, work / "a")
        if args.new_dir:
            side_b = Path(args.new_dir).resolve()
        elif args.new:
            side_b = export(args.new, work / "b")
        else:
            side_b = working_tree(work / "b")
        a_runs, b_runs = [], []
        for pair in range(1, args.pairs + 1):
            for runs, src, label in ((a_runs, side_a, "A"), (b_runs, side_b, "B")):
                result = one_run(src, extra)
                runs.append(result)
                print(
                    f"pair {pair} {label}: {result['final_callbacks_per_s']:,.0f} callbacks/s, "
                    f"{result['daemon_cpu_us_per_msg']:,.0f} µs/msg",
                    file=sys.stderr,
                    flush=True,
                )
        table = summary(a_runs, b_runs)
        a_name = "Kannel 1.4.5" if args.kannel else args.base
        b_name = args.new or args.new_dir or "working tree"
        print(f"A = {a_name}, B = {b_name}; {args.pairs} interleaved pairs, medians")
        print(f"{'figure':<24}{'A':>12}{'B':>12}{'B/A (pairs)':>14}")
        for key, label, fmt in FIGURES:
            if key not in table:
                continue
            row = table[key]
            ratio = row["pair_ratio_median"]
            print(
                f"{label:<24}{fmt.format(row['a_median']):>12}{fmt.format(row['b_median']):>12}"
                f"{'' if ratio is None else f'{ratio:.3f}':>14}"
            )
        if args.json:
            print(json.dumps({"bench": "ab", "a": a_name, "b": b_name, "figures": table}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
