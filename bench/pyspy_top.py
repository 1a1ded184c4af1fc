"""Summarise a py-spy raw profile (collapsed stacks): top functions by own time, per thread.

    .venv/bin/python bench/pyspy_top.py PROFILE.txt [--top 25] [--thread NAME] [--lines]

Input: `py-spy record --format raw [--threads]` output, one line per distinct stack,
`frame;frame;...;leaf COUNT`, frames written `function (file:line)`; with --threads the root frame
is `thread (TID): NAME` (older py-spy: `thread (0xADDR)`). Own time of a function = samples whose
leaf it is; total = samples with it anywhere on the stack (counted once per stack). Line numbers
are dropped so a function's lines add up (keep them with --lines). py-spy records only non-idle
samples unless run with --idle, so percentages are of the time a thread was busy.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

_THREAD = re.compile(r"^thread \((?P<tid>[^)]*)\)(?::\s*(?P<name>.*))?$")
_LINE = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


@dataclass
class ThreadProfile:
    samples: int = 0
    own: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    tids: set[str] = field(default_factory=set)


def frame_key(frame: str, keep_lines: bool) -> str:
    if keep_lines:
        return frame
    match = _LINE.match(frame)
    if not match:
        return frame
    return f"{match['func']} ({match['file']})"


def thread_group(name: str) -> str:
    """Pool threads ("smsgw-store-read_0", "asyncio_3", "ThreadPoolExecutor-0_1") as one."""
    return re.sub(r"[_-]\d+$", "_*", re.sub(r"-\d+_(\d+)$", "-*_\\1", name))


def parse(path: Path, keep_lines: bool = False, group_pools: bool = True):
    threads: dict[str, ThreadProfile] = defaultdict(ThreadProfile)
    for raw in path.read_text(errors="replace").splitlines():
        raw = raw.rstrip()
        if not raw:
            continue
        stack, _, count = raw.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        name, tid, process = "(all)", "", ""
        while frames and (frames[0].startswith("process ") or _THREAD.match(frames[0])):
            if "store.writer_process" in frames[0]:  # --subprocesses: the store's writer
                process = "writer-process/"
            match = _THREAD.match(frames[0])
            if match:
                tid = match["tid"]
                name = (match["name"] or "").strip() or f"thread {tid}"
            frames = frames[1:]
        name = process + name
        if group_pools:
            name = thread_group(name)
        profile = threads[name]
        profile.samples += n
        profile.tids.add(tid)
        if not frames:
            continue
        keys = [frame_key(f, keep_lines) for f in frames]
        profile.own[keys[-1]] += n
        for key in set(keys):
            profile.total[key] += n
    return dict(threads)


def report(
    threads: dict[str, ThreadProfile], top: int, only: str | None = None, by: str = "own"
) -> str:
    grand = sum(p.samples for p in threads.values()) or 1
    out: list[str] = []
    ordered = sorted(threads.items(), key=lambda item: -item[1].samples)
    out.append(f"{grand} samples; by thread (busy samples, share of all):")
    for name, profile in ordered:
        tids = f"{len(profile.tids)} threads" if len(profile.tids) > 1 else "1 thread"
        out.append(f"  {profile.samples:>8} {100 * profile.samples / grand:5.1f}%  {name} ({tids})")
    for name, profile in ordered:
        if only and only not in name:
            continue
        if profile.samples < grand * 0.005 and not only:
            continue
        out.append("")
        out.append(f"== {name}: {profile.samples} samples; top {top} by {by} time")
        out.append(f"  {'own%':>6} {'total%':>6}  function (file)")
        ranking = profile.own if by == "own" else profile.total
        for key, _ in ranking.most_common(top):
            own = 100 * profile.own[key] / profile.samples
            total = 100 * profile.total[key] / profile.samples
            out.append(f"  {own:5.1f}% {total:5.1f}%  {key}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", help="py-spy raw (collapsed stack) file")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--thread", help="only threads whose name contains this")
    parser.add_argument("--lines", action="store_true", help="keep line numbers in frames")
    parser.add_argument(
        "--by", choices=("own", "total"), default="own", help="rank by own or inclusive time"
    )
    parser.add_argument(
        "--no-group", action="store_true", help="keep pool threads (name_0, name_1) apart"
    )
    args = parser.parse_args(argv)
    path = Path(args.profile)
    if not path.is_file():
        print(f"pyspy_top: no such file {path}", file=sys.stderr)
        return 2
    threads = parse(path, keep_lines=args.lines, group_pools=not args.no_group)
    if not threads:
        print(f"pyspy_top: {path} has no samples (is it py-spy --format raw?)", file=sys.stderr)
        return 1
    print(report(threads, args.top, args.thread, args.by))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
