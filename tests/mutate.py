"""A small, dependency-free AST mutation tester (a script, not a test module).

Usage::

    .venv/bin/python tests/mutate.py carriers/smpp/receipts.py \\
        --tests tests/carriers/test_receipts.py tests/gateway/test_policy.py \\
        [--sample 60] [--seed 1] [--timeout 60] [--strings] [--json out.json]

The module is parsed with :mod:`ast`; every mutation site is enumerated (comparison operators,
``and``/``or``, ``not x``, ``+``/``-``, ``*``/``//``, integer constants, ``True``/``False``,
``return X``, ``if`` conditions and, with ``--strings``, non-empty string constants), skipping
docstrings, annotations and ``if TYPE_CHECKING:`` blocks. ``--sample`` sites are drawn with
``--seed`` (all of them when there are fewer). Each mutant is written (``ast.unparse``) over the
module in a throw-away copy of the repository under the temp directory (``/work/main`` itself is
never touched) and ``python -m pytest -x -q -p no:cacheprovider TESTS`` runs there, with the copy
first on ``PYTHONPATH``. A mutant is *killed* when pytest exits non-zero or times out.

Before any mutant runs, the tool checks that the copy is the code under test: the module and its
top-level package must import from the copy, the tests must pass on the copy (as is, and with the
module merely re-unparsed), and a canary (the module raising on import) must make them fail.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_SWAP_CMP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_SWAP_BIN: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.FloorDiv: ast.Mult,
}
_SYMBOL: dict[type[ast.AST], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.And: "and",
    ast.Or: "or",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.FloorDiv: "//",
}


@dataclass
class Site:
    """One possible mutation: where it is and what it does (``apply`` is for the fresh tree)."""

    index: int
    line: int
    description: str
    apply: Any  # a zero-argument callable mutating the tree it was enumerated from


def _short(node: ast.AST, limit: int = 40) -> str:
    text = ast.unparse(node).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _replace_child(parent: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for field, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, field, new)
            return
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item is old:
                    value[i] = new
                    return
    raise ValueError(f"{old!r} is not a child of {parent!r}")


class _Enumerator:
    """Walks a tree in a fixed order and lists its mutation sites (with closures over its nodes).

    Enumerating the same source twice gives the same sites in the same order, so a site chosen
    on one parse is applied to a fresh parse by its index.
    """

    def __init__(self, strings: bool) -> None:
        self.strings = strings
        self.sites: list[Site] = []
        self.skip_ids: set[int] = set()  # docstring constants
        self.fstring_depth = 0
        self.parent_of: dict[int, ast.AST | None] = {}

    def add(self, node: ast.AST, description: str, apply: Any) -> None:
        line = getattr(node, "lineno", 0)
        self.sites.append(Site(len(self.sites), line, f"L{line}: {description}", apply))

    # -- traversal ------------------------------------------------------------------------

    def visit(self, node: ast.AST, parent: ast.AST | None = None) -> None:
        self.parent_of[id(node)] = parent
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and _is_docstring(body[0]):
                self.skip_ids.add(id(body[0].value))
        handler = getattr(self, f"visit_{type(node).__name__}", None)
        if handler is not None:
            handler(node)
        else:
            self.generic(node)

    def generic(self, node: ast.AST) -> None:
        self.mutate(node)
        for child in ast.iter_child_nodes(node):
            self.visit(child, node)

    # Annotations are skipped: they are strings under ``from __future__ import annotations``
    # and mean nothing at run time.
    def visit_arg(self, node: ast.arg) -> None:
        return

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator, node)
        self.visit(node.args, node)  # visit_arg skips each annotation; defaults are visited
        for stmt in node.body:
            self.visit(stmt, node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value, node)

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for stmt in node.orelse:
                self.visit(stmt, node)
            return
        for value in (True, False):

            def apply(node: ast.If = node, value: bool = value) -> None:
                node.test = ast.Constant(value)

            self.add(node, f"if {_short(node.test)} -> if {value}", apply)
        self.generic(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        # The literal parts of an f-string cannot become "" (ast.unparse needs str parts).
        self.fstring_depth += 1
        self.generic(node)
        self.fstring_depth -= 1

    # -- the mutations --------------------------------------------------------------------

    def mutate(self, node: ast.AST) -> None:
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                new = _SWAP_CMP[type(op)]

                def apply(node: ast.Compare = node, i: int = i, new: type = new) -> None:
                    node.ops[i] = new()

                self.add(node, f"{_SYMBOL[type(op)]} -> {_SYMBOL[new]}", apply)
        elif isinstance(node, ast.BoolOp):
            new = ast.Or if isinstance(node.op, ast.And) else ast.And

            def apply(node: ast.BoolOp = node, new: type = new) -> None:
                node.op = new()

            self.add(
                node,
                f"{_SYMBOL[type(node.op)]} -> {_SYMBOL[new]} in {_short(node)}",
                apply,
            )
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self._replace_not(node)
        elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _SWAP_BIN:
            new = _SWAP_BIN[type(node.op)]

            def apply(node: ast.BinOp | ast.AugAssign = node, new: type = new) -> None:
                node.op = new()

            augmented = "=" if isinstance(node, ast.AugAssign) else ""
            self.add(
                node,
                f"{_SYMBOL[type(node.op)]}{augmented} -> {_SYMBOL[new]}{augmented}"
                f" in {_short(node)}",
                apply,
            )
        elif isinstance(node, ast.Constant):
            self._mutate_constant(node)
        elif isinstance(node, ast.Return):
            value = node.value
            if value is not None and not (isinstance(value, ast.Constant) and value.value is None):

                def apply(node: ast.Return = node) -> None:
                    node.value = ast.Constant(None)

                self.add(node, f"return {_short(value)} -> return None", apply)

    def _replace_not(self, node: ast.UnaryOp) -> None:
        parent = self.parent_of[id(node)]

        def apply(node: ast.UnaryOp = node, parent: ast.AST = parent) -> None:
            _replace_child(parent, node, node.operand)

        self.add(node, f"not x -> x in {_short(node)}", apply)

    def _mutate_constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool):

            def apply(node: ast.Constant = node) -> None:
                node.value = not node.value

            self.add(node, f"{value} -> {not value}", apply)
        elif isinstance(value, int):

            def apply(node: ast.Constant = node) -> None:
                node.value = node.value + 1

            self.add(node, f"{value} -> {value + 1}", apply)
        elif (
            self.strings
            and isinstance(value, str)
            and value
            and id(node) not in self.skip_ids
            and not self.fstring_depth
        ):

            def apply(node: ast.Constant = node) -> None:
                node.value = ""

            self.add(node, f"{_short(node)} -> ''", apply)


def enumerate_sites(source: str, strings: bool) -> tuple[ast.Module, list[Site]]:
    tree = ast.parse(source)
    enumerator = _Enumerator(strings)
    enumerator.visit(tree)
    return tree, enumerator.sites


def mutant_source(source: str, index: int, strings: bool) -> str:
    tree, sites = enumerate_sites(source, strings)
    sites[index].apply()
    ast.fix_missing_locations(tree)
    return ast.unparse(tree) + "\n"


# --- the copy of the repository -------------------------------------------------------------


def repo_root(start: Path) -> Path:
    out = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],
        cwd=start,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def copy_repo(root: Path, dest: Path) -> int:
    """Copy the working tree's tracked and untracked-but-not-ignored files into ``dest``."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    )
    count = 0
    for name in sorted(set(out.stdout.decode().split("\0"))):
        if not name:
            continue
        source = root / name
        if not source.is_file():  # deleted in the working tree, or a submodule
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        count += 1
    return count


def child_env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy)
    # No bytecode: a mutant of the same size written within the same second as the last one
    # would otherwise be served from a stale .pyc.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def run_pytest(copy: Path, tests: list[str], timeout: float) -> tuple[str, int | None, float]:
    """('passed' | 'failed' | 'timeout', exit code, seconds)."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=copy,
        env=child_env(copy),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so a timeout ends all it started
    )
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return "timeout", None, time.monotonic() - started
    return ("passed" if code == 0 else "failed"), code, time.monotonic() - started


def check_imports(copy: Path, dotted: str) -> None:
    top = dotted.split(".")[0]
    probe = (
        "import importlib, sys\n"
        f"top = importlib.import_module({top!r})\n"
        f"mod = importlib.import_module({dotted!r})\n"
        "print(top.__file__)\n"
        "print(mod.__file__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=copy,
        env=child_env(copy),
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(f"mutate.py: cannot import {dotted} in the copy:\n{out.stderr}")
    for line in out.stdout.split():
        path = Path(line).resolve()
        if not path.is_relative_to(copy.resolve()):
            sys.exit(
                f"mutate.py: {dotted} resolves to {path}, outside the copy {copy}: mutants would "
                "not be the code under test (is the package shadowed by an installed copy?)"
            )


# --- main -----------------------------------------------------------------------------------


@dataclass
class Result:
    index: int
    line: int
    description: str
    outcome: str  # killed | survived
    reason: str  # failed | timeout | passed
    seconds: float


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("module", help="the module to mutate, relative to the repository root")
    parser.add_argument("--tests", nargs="+", required=True, help="pytest paths to run")
    parser.add_argument("--sample", type=int, default=60, help="mutants to run (default 60)")
    parser.add_argument("--seed", type=int, default=1, help="sampling seed (default 1)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per pytest run")
    parser.add_argument(
        "--strings", action="store_true", help='also mutate non-empty string constants to ""'
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--list", action="store_true", help="list the mutation sites and exit")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = repo_root(Path(__file__).resolve().parent)
    module = Path(args.module)
    if module.is_absolute():
        module = module.resolve().relative_to(root)
    if not (root / module).is_file() or module.suffix != ".py":
        sys.exit(f"mutate.py: {args.module} is not a Python file in {root}")
    dotted = ".".join(module.with_suffix("").parts)
    if dotted.endswith(".__init__"):
        dotted = dotted[: -len(".__init__")]

    source = (root / module).read_text()
    _, sites = enumerate_sites(source, args.strings)
    if args.list:
        for site in sites:
            print(f"#{site.index} {site.description}")
        print(f"{len(sites)} sites")
        return 0
    if len(sites) <= args.sample:
        chosen = list(range(len(sites)))
    else:
        chosen = sorted(random.Random(args.seed).sample(range(len(sites)), args.sample))
    for index in chosen:  # fail before any test runs if a mutant would not even unparse
        compile(mutant_source(source, index, args.strings), str(module), "exec")

    work = Path(tempfile.mkdtemp(prefix="smsgw-mutate-"))
    copy = work / "repo"
    copy.mkdir()
    try:
        copied = copy_repo(root, copy)
        target = copy / module
        original = target.read_text()
        print(f"{module}: {len(sites)} sites, running {len(chosen)} (seed {args.seed})")
        print(f"copy: {copy} ({copied} files)", file=sys.stderr)
        check_imports(copy, dotted)

        outcome, code, seconds = run_pytest(copy, args.tests, args.timeout)
        if outcome != "passed":
            sys.exit(f"mutate.py: the tests do not pass on the unmutated copy ({outcome}, {code})")
        print(f"baseline: passed in {seconds:.1f}s", file=sys.stderr)
        target.write_text(ast.unparse(ast.parse(original)) + "\n")
        outcome, code, _ = run_pytest(copy, args.tests, args.timeout)
        if outcome != "passed":
            sys.exit("mutate.py: the tests fail once the module is re-unparsed, before any mutant")
        target.write_text('raise RuntimeError("mutate.py canary")\n' + original)
        outcome, code, _ = run_pytest(copy, args.tests, args.timeout)
        if outcome == "passed":
            sys.exit(
                f"mutate.py: the tests pass with {module} unimportable: they do not exercise the "
                "copy's module (or do not exercise it at all)"
            )

        results: list[Result] = []
        for n, index in enumerate(chosen, 1):
            site = sites[index]
            target.write_text(mutant_source(source, index, args.strings))
            outcome, code, seconds = run_pytest(copy, args.tests, args.timeout)
            verdict = "survived" if outcome == "passed" else "killed"
            results.append(Result(index, site.line, site.description, verdict, outcome, seconds))
            print(f"[{n}/{len(chosen)}] {verdict:8} {site.description}", file=sys.stderr)
        target.write_text(original)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    killed = sum(r.outcome == "killed" for r in results)
    total = len(results)
    percent = 100.0 * killed / total if total else 100.0
    print(f"{module}: {killed}/{total} killed ({percent:.1f}%)")
    survivors = [r for r in results if r.outcome == "survived"]
    if survivors:
        print("survivors:")
        for r in survivors:
            print(f"  #{r.index} {r.description}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "module": str(module),
                    "tests": args.tests,
                    "sites": len(sites),
                    "seed": args.seed,
                    "killed": killed,
                    "total": total,
                    "percent": round(percent, 1),
                    "results": [asdict(r) for r in results],
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
