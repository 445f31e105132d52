"""The layout holds: imports go one way between the rooms of service/ (service/__init__.py), no
module imports another that imports it back, and nothing imports an entry point's ``__main__``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("db", "service", "workers", "consumer")
# Lowest first: a module may import its own room and the rooms before it, never one after it.
ROOMS = (
    "db",
    "service.core",
    "service.dns",
    "service.registry",
    "service.planning",
    "service.requests",
    "service.operations",
    "service.api",
    "service.console",
    "service.app",
    "workers",
    "consumer",
    "service.cli",
    "service.__main__",
)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The modules of ours ``path`` imports, anywhere in it (a function's imports count too)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from a import b`: b is a module of ours when a.b is one, else a name in a
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [name if name in known else node.module for name in names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES:
                while name not in known and "." in name:
                    name = name.rsplit(".", 1)[0]
                if name in known:
                    yield name


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: set(_imports(path, known)) - {name} for name, path in known.items()}


def _room(module: str) -> int | None:
    for index, room in enumerate(ROOMS):
        if module == room or module.startswith(room + "."):
            return index
    return None


def test_no_module_imports_an_entry_point_s_main() -> None:
    found = [
        (name, imported) for name, imports in _graph().items() for imported in imports if imported.endswith("__main__")
    ]

    assert found == []


def test_no_import_goes_up_a_room() -> None:
    upward = []
    for name, imports in _graph().items():
        for imported in imports:
            here, there = _room(name), _room(imported)
            if here is not None and there is not None and there > here:
                upward.append(f"{name} imports {imported}")

    assert upward == []


def test_no_two_modules_import_each_other_however_far_round() -> None:
    graph = _graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == 1:
                circles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)

    assert circles == []
