"""Replay reads breakers only through their public and contract surface (issue 12, item 11):
no second copy of a rule can hide in private attributes it peeks at."""

from __future__ import annotations

import ast
from pathlib import Path

import haltgate.replay

REPLAY = Path(haltgate.replay.__file__).parent


def test_replay_reads_no_private_attribute_of_another_object() -> None:
    found = []
    for path in sorted(REPLAY.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
                continue
            if node.attr.startswith("__"):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert found == []
