"""The package's shape, as docs/architecture.md states it: no import cycle among
`jetstream/` modules (the one documented exception is the warehouse factory, which
imports the two backends that import the protocol), no module over 600 lines, and no
private name imported from another module. Imports inside functions count too: a
function-local import hides a cycle from the interpreter, not from the design."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.paths import REPO

PACKAGE = REPO / "jetstream"
MAX_LINES = 600
# warehouse/base.py's open_warehouse() picks a backend; both backends import the protocol.
ALLOWED_CYCLES = [
    {"jetstream.warehouse.base", "jetstream.warehouse.bigquery", "jetstream.warehouse.duckdb"}
]


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rsplit(".", 1)[0] if "." in name else ""
    return name or None


def imports(known: dict[str, Path]) -> dict[str, dict[str, set[str]]]:
    """module -> {imported module -> names taken from it}."""
    edges: dict[str, dict[str, set[str]]] = {m: {} for m in known}
    for mod, path in known.items():
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = _resolve(alias.name, known)
                    if target and target != mod:
                        edges[mod].setdefault(target, set())
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if not source.startswith("jetstream"):
                    continue
                for alias in node.names:
                    target = _resolve(f"{source}.{alias.name}", known)
                    if target and target != mod:
                        names = edges[mod].setdefault(target, set())
                        if target != f"{source}.{alias.name}":
                            names.add(alias.name)
    return edges


def cycles(edges: dict[str, dict[str, set[str]]]) -> list[set[str]]:
    """Strongly connected components with more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
    return found


def test_cycle_finder_sees_a_function_local_cycle():
    edges = {"a": {"b": set()}, "b": {"c": set()}, "c": {"a": set()}, "d": {"a": set()}}
    assert cycles(edges) == [{"a", "b", "c"}]


def test_no_import_cycles_but_the_documented_warehouse_factory():
    found = cycles(imports(modules()))
    unexpected = [sorted(c) for c in found if c not in ALLOWED_CYCLES]
    assert unexpected == [], f"import cycles: {unexpected}"


def test_every_module_is_small():
    sizes = {mod: len(path.read_text().splitlines()) for mod, path in modules().items()}
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def test_no_private_names_imported_across_modules():
    offenders = [
        f"{mod} imports {name} from {target}"
        for mod, targets in imports(modules()).items()
        for target, names in targets.items()
        for name in sorted(names)
        if name.startswith("_") and not name.startswith("__")
    ]
    assert offenders == []


# What may import what (docs/architecture.md, "Package map"): the pure core imports no
# engine, runner, task or command; only the command line (and two documented callers:
# the worker, which runs the command line in-process, and the demo script) imports it.
PURE_CORE = ("config", "sql", "periods", "graph", "statistics", "hashing", "results", "slugs")
ENGINE = ("warehouse", "runners", "tasks", "artifacts", "commands", "cli", "webhook", "export")
CLI_CALLERS = {"jetstream.runners.worker", "jetstream.synthetic.demo"}


def _top(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_pure_core_imports_no_engine():
    offenders = [
        f"{mod} -> {target}"
        for mod, targets in imports(modules()).items()
        if _top(mod) in PURE_CORE
        for target in targets
        if _top(target) in ENGINE
    ]
    assert offenders == []


def test_only_the_command_line_imports_commands():
    offenders = [
        f"{mod} -> {target}"
        for mod, targets in imports(modules()).items()
        if _top(mod) not in ("commands", "cli") and mod not in CLI_CALLERS
        for target in targets
        if _top(target) in ("commands", "cli")
    ]
    assert offenders == []
