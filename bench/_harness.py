"""Shared plumbing for the process-level benchmarks (e2e.py, backlog.py).

Children (simulator, daemon, Node load client and status sink, py-spy) each run in a process group
of their own, so stopping one stops everything it started; `Children` stops them all on every exit
path (normal end, exception, Ctrl-C, SIGTERM). Everything listens on and talks to 127.0.0.1 only.

No import from the project's packages: run as `python bench/x.py`, bench/ comes first on sys.path
and bench/store.py would shadow the `store` package. The daemon is driven only from the outside
(HTTP, its SQLite file read-only, /proc).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT.parent / "shared" / "bench"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(SystemExit):
    """A benchmark cannot go on; the message says why (exit status 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"bench: {message}")


# -- locating the tools -------------------------------------------------------------------------


def smsgw_command() -> list[str]:
    """The `smsgw` console script of the venv running this bench (or of the repo's .venv)."""
    for candidate in (Path(sys.executable).parent / "smsgw", ROOT / ".venv" / "bin" / "smsgw"):
        if candidate.exists():
            return [str(candidate)]
    found = shutil.which("smsgw")
    if found:
        return [found]
    return [sys.executable, "-m", "gateway"]


def node_command(override: str | None) -> str:
    node = override or shutil.which("node") or "/usr/bin/node"
    if not Path(node).exists() and not shutil.which(node):
        raise BenchError(f"node not found ({node}); pass --node PATH")
    return node


def shared_dir(override: str | None) -> Path:
    shared = Path(override) if override else DEFAULT_SHARED
    for name in ("twilio_load.js", "status_sink.js"):
        if not (shared / name).is_file():
            raise BenchError(f"{shared / name} is missing; pass --shared DIR")
    return shared


def pyspy_command() -> str | None:
    for candidate in (Path(sys.executable).parent / "py-spy", ROOT / ".venv" / "bin" / "py-spy"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("py-spy")


PYSPY_HINT = (
    "py-spy is not installed; install it into the venv with\n"
    f"    {ROOT / '.venv' / 'bin' / 'pip'} install py-spy\n"
    "(it attaches to the daemon with ptrace: run as root or with CAP_SYS_PTRACE)"
)


def use_source(src: str | None) -> str:
    """Run the children on the packages in `src` (e.g. a `git archive` export) instead of the
    installed ones: PYTHONPATH comes before the venv's editable-install finder. Returns a label
    of the code under test for the report."""
    if not src:
        return describe_tree(ROOT)
    path = Path(src).resolve()
    if not (path / "gateway" / "__init__.py").is_file():
        raise BenchError(f"--src {path}: no gateway/ package there")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(path), os.environ.get("PYTHONPATH", "")) if p
    )
    return describe_tree(path)


def describe_tree(path: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        if head.returncode != 0:
            return str(path)
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        return f"{path} @ {head.stdout.strip()}{' + uncommitted changes' if dirty else ''}"
    except (OSError, subprocess.TimeoutExpired):
        return str(path)


# -- ports and readiness ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_port(port: int, child: subprocess.Popen, name: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise BenchError(f"{name} exited with status {child.returncode} before listening")
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise BenchError(f"{name} did not listen on {HOST}:{port} within {timeout:.0f}s")


def wait_http(url: str, child: subprocess.Popen, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise BenchError(f"{name} exited with status {child.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (OSError, urllib.error.HTTPError):
            time.sleep(0.1)
    raise BenchError(f"{url} did not answer within {timeout:.0f}s")


def get_json(url: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


# -- the judged load's shape ---------------------------------------------------------------------


def add_load_arguments(parser, window_help: str = "carrier window (submit_sm)") -> None:
    """The options every end-to-end bench shares: the judged load's shape (shared/bench)."""
    parser.add_argument("--count", type=int, default=20_000, help="messages to send")
    parser.add_argument("--concurrency", type=int, default=64, help="HTTP requests in flight")
    parser.add_argument("--window", type=int, default=100, help=window_help)
    parser.add_argument(
        "--receipt-delay", type=float, default=0.5, help="simulator: seconds before each receipt"
    )


def load_figures(args, load: dict, at_final: dict, stats: dict) -> dict:
    """The figures every end-to-end bench reports, as the shared README defines them: final
    callbacks/s = unique final ids at the last final callback ÷ (that callback − first accept).
    `at_final` is the sink's stats then; `stats`, read a little later, adds late duplicates."""
    span_s = (at_final["last_final_ms"] - load["first_accept_ms"]) / 1000
    return {
        "count": args.count,
        "concurrency": args.concurrency,
        "window": args.window,
        "receipt_delay": args.receipt_delay,
        "accepted": load["accepted"],
        "http_status": load.get("status"),
        "client_errors": load.get("errors"),
        "accepted_per_s": load.get("accepted_per_s"),
        "final_callbacks_per_s": round(at_final["unique_final_ids"] / span_s, 1),
        "unique_final_ids": at_final["unique_final_ids"],
        "dup_final": stats["dup_final"],
        "callbacks_by_status": stats["by_status"],
        "first_accept_to_last_final_s": round(span_s, 2),
    }


def wait_final(sink_port: int, expected: int, timeout: float, watched) -> dict:
    """Poll the sink until `expected` unique final ids (its stats then); fail loudly after
    `timeout` seconds, or as soon as one of `watched` ((name, child) pairs) exits."""
    url = f"http://{HOST}:{sink_port}/stats"
    deadline = time.monotonic() + timeout
    last_report = time.monotonic()
    stats = get_json(url)
    while stats["unique_final_ids"] < expected:
        for name, child in watched:
            if child.poll() is not None:
                raise BenchError(f"{name} exited with status {child.returncode} mid-run")
        now = time.monotonic()
        if now > deadline:
            raise BenchError(
                f"only {stats['unique_final_ids']} of {expected} accepted messages had a final "
                f"callback after {timeout:.0f}s; sink stats: {json.dumps(stats)}"
            )
        if now - last_report >= 10:
            print(
                f"  ... {stats['unique_final_ids']}/{expected} final, "
                f"{stats['callbacks']} callbacks {stats['by_status']}",
                file=sys.stderr,
            )
            last_report = now
        time.sleep(0.2)
        stats = get_json(url)
    return stats


@contextlib.contextmanager
def work_directory(prefix: str, parent: str | None, keep: bool):
    """A new directory for one run's files (logs, databases): removed at the end, kept (and
    named on stderr) with `keep`, or when the run failed or was interrupted — the evidence."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    except BaseException:
        keep = True
        raise
    finally:
        if keep:
            print(f"kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


# -- child processes ----------------------------------------------------------------------------


class Children:
    """Start children in their own process groups; `stop_all` ends every one of them.

    Use as a context manager. SIGTERM to the bench is turned into SystemExit so that the
    `finally` clauses (and this class's `__exit__`) run then too.
    """

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self._old_term = None

    def __enter__(self) -> Children:
        def on_term(signum, frame):
            raise SystemExit(f"bench: stopped by signal {signum}")

        self._old_term = signal.signal(signal.SIGTERM, on_term)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.stop_all()
        finally:
            signal.signal(signal.SIGTERM, self._old_term or signal.SIG_DFL)

    def start(self, name: str, argv: list[str], *, stdout=None, stderr=None, cwd=ROOT, **kw):
        child = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdout if stdout is not None else subprocess.DEVNULL,
            stderr=stderr if stderr is not None else subprocess.DEVNULL,
            start_new_session=True,  # its own process group: killpg reaches its children too
            **kw,
        )
        self.procs.append((name, child))
        return child

    def stop(self, child: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal the child's process group, wait, then SIGKILL the group if it lingers."""
        if child.poll() is not None:
            return child.returncode  # reaped: its pid (and group id) may already be reused
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, sig)
        try:
            return child.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"bench: pid {child.pid} ignored {sig!r} for {timeout:.0f}s, killing its group",
                  file=sys.stderr)  # fmt: skip
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(10)
        return child.returncode

    def stop_all(self) -> None:
        # Newest first: the load client and py-spy before the daemon, the daemon before the SMSC.
        for _name, child in reversed(self.procs):
            sig = signal.SIGINT if _name == "py-spy" else signal.SIGTERM
            self.stop(child, sig, timeout=20.0)
        self.procs.clear()


# -- /proc ----------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; fields[0] is state
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_tree(pid: int) -> list[int]:
    """`pid` and every live process under it (the daemon and its store writer process)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in (task / "children").read_text().split())
    return tree


def tree_cpu_seconds(pid: int, exclude: tuple[int, ...] = ()) -> float:
    """CPU seconds of `pid` and the processes under it (but `exclude`), live ones."""
    total = 0.0
    for member in process_tree(pid):
        if member not in exclude:
            with contextlib.suppress(OSError):
                total += cpu_seconds(member)
    return total


def system_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


class NoiseMeter:
    """How much CPU the rest of the machine used while the bench ran: busy CPU seconds of the
    whole machine minus those of this bench and its children (live ones read from /proc, finished
    ones from os.times()). Other engineers' test runs on a shared 2-core box show up here."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.wall0 = time.monotonic()
        self.busy0 = system_busy_seconds()
        self.ours0 = self._ours()
        self.loadavg0 = os.getloadavg()[0]

    def _ours(self) -> float:
        t = os.times()
        total = t.user + t.system + t.children_user + t.children_system
        members = {member for pid in self.pids for member in process_tree(pid)}
        for pid in members:
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total

    def stop(self) -> dict:
        wall = time.monotonic() - self.wall0
        busy = system_busy_seconds() - self.busy0
        other = max(0.0, busy - (self._ours() - self.ours0))
        return {
            "wall_s": round(wall, 1),
            "machine_busy_cpu_s": round(busy, 1),
            "other_processes_cpu_s": round(other, 1),
            "other_share_of_machine": round(other / (wall * (os.cpu_count() or 1)), 3),
            "loadavg1_before": round(self.loadavg0, 2),
        }


def wait_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """Wait (up to max_wait s) until the machine is mostly idle; return the busy share seen."""
    deadline = time.monotonic() + max_wait
    cores = os.cpu_count() or 1
    while True:
        busy0 = system_busy_seconds()
        time.sleep(2.0)
        share = (system_busy_seconds() - busy0) / (2.0 * cores)
        if share <= threshold or time.monotonic() >= deadline:
            return share
        print(f"bench: machine {share:.0%} busy, waiting for it to calm down", file=sys.stderr)


def status_kb(pid: int, key: str) -> int | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def peak_rss_mb(pid: int) -> float:
    kb = status_kb(pid, "VmHWM")
    return kb / 1024 if kb is not None else float("nan")


def tree_peak_rss_mb(pid: int) -> float:
    """The sum of each process's peak RSS in the tree: an upper bound of the tree's peak."""
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            total += peak_rss_mb(member)
    return total


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (utime + stime) per thread id, of `pid` and the processes under it."""
    out: dict[int, float] = {}
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{member}/task").iterdir():
                try:
                    stat = (task / "stat").read_text()
                except OSError:
                    continue
                fields = stat[stat.rindex(")") + 2 :].split()
                out[int(task.name)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def thread_names(pid: int, pyspy: str | None) -> dict[int, str]:
    """Python thread names by thread id, from `py-spy dump` (Python 3.11 leaves the OS thread
    names alone, so /proc shows one name for all); the main thread is always known."""
    names = {pid: "MainThread"}
    for member in process_tree(pid)[1:]:
        with contextlib.suppress(OSError):
            if b"store.writer_process" in Path(f"/proc/{member}/cmdline").read_bytes():
                names[member] = "writer-process"
    if pyspy is None:
        return names
    try:
        dump = subprocess.run(
            [pyspy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return names
    for match in re.finditer(r'^Thread (0x[0-9A-Fa-f]+|\d+) \([^)]*\): "(.*)"$', dump, re.M):
        tid = match[1]
        if tid.isdigit():
            names[int(tid)] = match[2]
    return names


def cpu_by_thread(
    before: dict[int, float], after: dict[int, float], names: dict[int, str]
) -> dict[str, float]:
    """CPU seconds spent per thread between two `thread_cpu` readings, busiest first."""
    spent = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    out: dict[str, float] = {}
    for tid, cpu in sorted(spent.items(), key=lambda item: -item[1]):
        if cpu < 0.01:
            continue
        label = names.get(tid, f"tid {tid}")
        out[label if label not in out else f"{label} ({tid})"] = round(cpu, 2)
    return out


# -- the daemon -----------------------------------------------------------------------------------


def config_text(
    db: Path,
    api_port: int,
    carrier_port: int,
    window: int,
    *,
    log_level: str = "warning",
    reconnect_min: float = 1.0,
) -> str:
    return f"""# generated by bench/
[http]
host = "{HOST}"
port = {api_port}

[store]
path = "{db}"

[log]
format = "json"
level = "{log_level}"

[demo]
enabled = true
account_name = "demo"

[carriers.sim]
host = "{HOST}"
port = {carrier_port}
system_id = "smsgw"
password = "secret"
window = {window}
reconnect_min = {reconnect_min}
"""


def demo_credentials(db: Path, banner: Path, child: subprocess.Popen, timeout: float = 20.0):
    """The demo account's (sid, token): from the accounts table, else from the start-up banner."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise BenchError(f"the daemon exited with status {child.returncode}")
        with contextlib.suppress(sqlite3.Error):
            conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
            try:
                row = conn.execute(
                    "SELECT sid, auth_token FROM accounts WHERE friendly_name = 'demo' "
                    "ORDER BY date_created LIMIT 1"
                ).fetchone()
            finally:
                conn.close()
            if row:
                return row[0], row[1]
        sid = token = None
        with contextlib.suppress(OSError):
            for line in banner.read_text(errors="replace").splitlines():
                if "demo AccountSid:" in line:
                    sid = line.split(":", 1)[1].strip()
                if "demo AuthToken:" in line:
                    token = line.split(":", 1)[1].strip()
        if sid and token:
            return sid, token
        time.sleep(0.1)
    raise BenchError("no demo account in the store nor in the daemon's banner")


def start_simulator(children: Children, workdir: Path, receipt_delay: float, tag: str = ""):
    port = free_port()
    child = children.start(
        "simulator",
        [
            *smsgw_command(),
            "sim",
            "--host",
            HOST,
            "--port",
            str(port),
            "--receipt-delay",
            str(receipt_delay),
        ],
        stdout=(workdir / f"sim{tag}.out").open("wb"),
        stderr=(workdir / f"sim{tag}.err").open("wb"),
    )
    wait_port(port, child, "the SMPP simulator")
    return child, port


def start_daemon(children: Children, workdir: Path, config: str, tag: str = ""):
    path = workdir / f"smsgw{tag}.toml"
    path.write_text(config)
    child = children.start(
        "daemon",
        [*smsgw_command(), "run", "-c", str(path)],
        stdout=(workdir / f"daemon{tag}.out").open("wb"),  # the banner
        stderr=(workdir / f"daemon{tag}.log").open("wb"),  # JSON log lines
    )
    return child


def start_sink(children: Children, node: str, shared: Path, workdir: Path, tag: str = ""):
    port = free_port()
    child = children.start(
        "status sink",
        [node, str(shared / "status_sink.js"), f"--port={port}"],
        stdout=(workdir / f"sink{tag}.out").open("wb"),
        stderr=(workdir / f"sink{tag}.err").open("wb"),
    )
    wait_port(port, child, "status_sink.js")
    return child, port


def start_load(
    children: Children,
    node: str,
    shared: Path,
    workdir: Path,
    *,
    api_port: int,
    sid: str,
    token: str,
    count: int,
    concurrency: int,
    callback: str,
    max_seconds: float,
    tag: str = "",
) -> subprocess.Popen:
    """Start twilio_load.js; `finish_load` waits for it and returns its JSON line."""
    return children.start(
        "load client",
        [
            node,
            str(shared / "twilio_load.js"),
            f"--port={api_port}",
            f"--sid={sid}",
            f"--token={token}",
            f"--count={count}",
            f"--concurrency={concurrency}",
            f"--callback={callback}",
            f"--maxSeconds={max_seconds:g}",
        ],
        stdout=(workdir / f"load{tag}.out").open("wb"),
        stderr=(workdir / f"load{tag}.err").open("wb"),
    )


def finish_load(child: subprocess.Popen, workdir: Path, max_seconds: float, tag: str = "") -> dict:
    try:
        child.wait(max_seconds + 60)
    except subprocess.TimeoutExpired:
        raise BenchError(f"twilio_load.js still running after {max_seconds + 60:.0f}s") from None
    out_path = workdir / f"load{tag}.out"
    lines = [line for line in out_path.read_text().splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        err = (workdir / f"load{tag}.err").read_text(errors="replace")[-2000:]
        raise BenchError(f"twilio_load.js failed (status {child.returncode}): {err}")
    return json.loads(lines[-1])


def run_load(children: Children, node: str, shared: Path, workdir: Path, **kw) -> dict:
    """Run twilio_load.js to the end and return its JSON line."""
    child = start_load(children, node, shared, workdir, **kw)
    return finish_load(child, workdir, kw["max_seconds"], kw.get("tag", ""))


def log_summary(path: Path, limit: int = 12) -> list[str]:
    """The daemon's log condensed: JSON events counted by (level, event), other lines sampled."""
    events: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], str] = {}
    other: list[str] = []
    other_count = 0
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                other_count += 1
                if len(other) < limit:
                    other.append(line[:200])
                continue
            if not isinstance(record, dict):
                continue
            key = (str(record.get("level", "?")), str(record.get("event", "?")))
            events[key] += 1
            if key not in examples:
                extra = {
                    k: v for k, v in record.items() if k not in ("level", "event", "timestamp")
                }
                examples[key] = json.dumps(extra)[:160]
    out = [
        f"{n:>7} {level:<8} {event}  {examples[(level, event)]}"
        for (level, event), n in events.most_common(limit)
    ]
    if other_count:
        out.append(f"{other_count:>7} non-JSON lines, first ones:")
        out.extend(f"          {line}" for line in other)
    return out


def rows_by_status(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        return dict(conn.execute("SELECT status, count(*) FROM messages GROUP BY status"))
    finally:
        conn.close()


# -- py-spy ---------------------------------------------------------------------------------------


def profile_format(path: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    suffix = Path(path).suffix.lower()
    return {".json": "speedscope", ".svg": "flamegraph"}.get(suffix, "raw")


def start_pyspy(
    children: Children,
    pyspy: str,
    pid: int,
    out: str,
    fmt: str,
    rate: int,
    log: Path,
    native: bool = False,
    gil: bool = False,
):
    child = children.start(
        "py-spy",
        [
            pyspy,
            "record",
            "--pid",
            str(pid),
            "--output",
            out,
            "--format",
            fmt,
            "--threads",  # one root frame per thread: "thread (TID): NAME"
            "--subprocesses",  # the store's writer process too
            *(["--native"] if native else []),  # C frames too: SQLite, syscalls, GIL waits
            *(["--gil"] if gil else []),  # only the GIL holder: what one process serializes
            "--rate",
            str(rate),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    # Let it attach before the load starts (it prints "Sampling process ..." once attached).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and child.poll() is None:
        if "Sampling" in log.read_text(errors="replace"):
            break
        time.sleep(0.05)
    if child.poll() is not None:
        raise BenchError(f"py-spy exited at once: {log.read_text(errors='replace')[-1000:]}")
    return child


def stop_pyspy(children: Children, child: subprocess.Popen, out: str, log: Path) -> None:
    """py-spy writes its output when interrupted (SIGINT, like Ctrl-C)."""
    children.stop(child, signal.SIGINT, timeout=60.0)
    if not Path(out).exists():
        raise BenchError(f"py-spy wrote no {out}: {log.read_text(errors='replace')[-1000:]}")


# -- accept latency probe -------------------------------------------------------------------------


class LatencyProbe:
    """Accept latency as the load sees it, sampled: twilio_load.js reports no per-request times.

    One extra keep-alive client posts a message every `interval` seconds (no StatusCallback, so the
    sink's figure is untouched) while the load runs, and times each 201 from request to response.
    Its messages are a small extra load (1/interval per second), reported beside the figures.
    `LatencyProbe.kannel` does the same through Kannel's sendsms (no dlr-url), timing each 202.
    """

    def __init__(self, port: int, interval: float, request, accepted_status: int) -> None:
        """`request(n)` gives the n-th probe's (method, path, body, headers)."""
        self._port, self._interval = port, interval
        self._request, self._accepted_status = request, accepted_status
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="latency-probe", daemon=True)
        self.latencies_ms: list[float] = []
        self.failures: Counter[str] = Counter()

    @classmethod
    def twilio(cls, port: int, sid: str, token: str, interval: float = 0.05) -> LatencyProbe:
        """The probe for smsgw: POST …/Messages.json, accepted with 201."""
        auth = base64.b64encode(f"{sid}:{token}".encode()).decode()
        headers = {
            "Authorization": f"Basic {auth}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        path = f"/2010-04-01/Accounts/{sid}/Messages.json"

        def twilio(n: int) -> tuple[str, str, str | None, dict[str, str]]:
            form = {"To": f"+1415555{n % 10_000:04d}", "From": "+15017122661", "Body": "probe"}
            return "POST", path, urllib.parse.urlencode(form), headers

        return cls(port, interval, twilio, 201)

    @classmethod
    def kannel(cls, port: int, user: str, password: str, interval: float = 0.05) -> LatencyProbe:
        """The same probe for Kannel's smsbox: GET /cgi-bin/sendsms, accepted with 202."""

        def sendsms(n: int) -> tuple[str, str, str | None, dict[str, str]]:
            query = {"username": user, "password": password, "from": "+15017122661",
                     "to": f"+1415555{n % 10_000:04d}", "text": "probe"}  # fmt: skip
            return "GET", "/cgi-bin/sendsms?" + urllib.parse.urlencode(query), None, {}

        return cls(port, interval, sendsms, 202)

    def __enter__(self) -> LatencyProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        conn = http.client.HTTPConnection(HOST, self._port, timeout=10)
        n = 0
        while not self._stop.wait(self._interval):
            n += 1
            method, path, body, headers = self._request(n)
            start = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.failures[type(exc).__name__] += 1
                conn.close()
                conn = http.client.HTTPConnection(HOST, self._port, timeout=10)
                continue
            if response.status == self._accepted_status:
                self.latencies_ms.append((time.perf_counter() - start) * 1000)
            else:
                self.failures[f"HTTP {response.status}"] += 1
        conn.close()

    def percentile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)
