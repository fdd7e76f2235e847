"""The module graph: the import cycles the contract/executor issue removed stay removed."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "haltgate"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every haltgate module and the haltgate modules it imports anywhere (lazy too)."""
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                if not target.startswith("haltgate"):
                    continue
                if node.module is None:
                    # ``from .. import codec`` imports the module haltgate.codec (not the
                    # whole package, which would reach everything through its __init__).
                    found.update(f"{target}.{a.name}" for a in node.names)
                else:
                    found.add(target)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("haltgate"))
        graph[name] = found
    # A name imported from a package that is not a submodule comes from its __init__.
    for name, found in graph.items():
        graph[name] = {m if m in graph else m.rpartition(".")[0] for m in found}
    return graph


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module == goal:
            return True
        if module in seen:
            continue
        seen.add(module)
        todo.extend(graph.get(module, ()))
    return False


def test_the_cli_and_the_server_do_not_import_each_other() -> None:
    graph = _imports()
    server = [m for m in graph if m.startswith("haltgate.server")]
    assert not any("haltgate.cli" in graph[m] for m in server)


def test_the_manager_and_the_gate_do_not_import_each_other() -> None:
    graph = _imports()
    assert "haltgate.gate" in graph["haltgate.manager.core"]
    assert not _reaches(graph, "haltgate.gate", "haltgate.manager")
    assert not _reaches(graph, "haltgate.orders", "haltgate.manager")


def test_the_manager_learns_nothing_by_reflection() -> None:
    source = "".join(p.read_text() for p in (SRC / "manager").glob("*.py"))
    assert "inspect" not in source
    assert "isinstance(breaker, OrderRateCircuitBreaker)" not in source
    assert "ErrorRateCircuitBreaker" not in source


def test_the_order_checks_know_neither_the_manager_nor_the_gate() -> None:
    graph = _imports()
    checks = [m for m in graph if m.startswith("haltgate.checks")]
    assert checks
    for module in checks:
        for goal in ("haltgate.manager", "haltgate.gate", "haltgate.engine", "haltgate.store"):
            assert not _reaches(graph, module, goal), (module, goal)


def test_the_reducing_rule_is_written_once() -> None:
    # "Position after the order and the working orders on its side" lives in
    # checks/exposure.py; no other check adds up working orders itself.
    for path in (SRC / "checks").glob("*.py"):
        if path.name != "exposure.py":
            assert "filled_quantity" not in path.read_text(), path.name
