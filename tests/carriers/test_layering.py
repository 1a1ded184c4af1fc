"""Import rules of carriers/: it imports nothing of the gateway, and smpp/ has no import circle."""

from __future__ import annotations

import ast
from pathlib import Path

import carriers

CARRIERS = Path(carriers.__file__).parent


def _imports(path: Path) -> set[str]:
    """Modules `path` imports, at run time or for type checking alike."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _module(path: Path) -> str:
    parts = path.relative_to(CARRIERS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_carriers_import_nothing_of_the_layers_above():
    for path in CARRIERS.rglob("*.py"):
        above = {
            name for name in _imports(path) if name.split(".")[0] in ("gateway", "store", "routing")
        }
        assert not above, f"{path}: imports {sorted(above)}"


def test_the_smpp_package_has_no_import_circle():
    package = CARRIERS / "smpp"
    graph = {
        _module(path): {n for n in _imports(path) if n.startswith("carriers.smpp.")}
        for path in package.glob("*.py")
        if path.name != "__init__.py"
    }

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for name in graph.get(start, ()):
            if name == goal or (name not in seen and reaches(name, goal, seen | {name})):
                return True
        return False

    circular = sorted(module for module in graph if reaches(module, module, {module}))
    assert not circular, f"import circle through {circular}"
