"""The README's Python examples run as written (in a scratch directory).

An example followed by "It prints:" and a ``text`` block must print exactly that block.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLES = re.findall(
    r"```python\n(.*?)```\n(?:\nIt prints:\n\n```text\n(.*?)```\n)?",
    README.read_text(encoding="utf-8"),
    re.S,
)
BLOCKS = [code for code, _ in EXAMPLES]


def test_readme_has_python_examples() -> None:
    assert BLOCKS


def test_readme_manager_example_shows_what_it_prints() -> None:
    manager_examples = [out for code, out in EXAMPLES if "CircuitBreakerManager(" in code]
    assert manager_examples, "the README has no CircuitBreakerManager example"
    assert all(manager_examples), "the manager example must be followed by what it prints"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs_and_prints_what_the_readme_says(
    index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, expected = EXAMPLES[index]
    namespace: dict[str, object] = {"__name__": "__readme__"}
    exec(compile(code, f"README.md[{index}]", "exec"), namespace)
    out = capsys.readouterr().out
    if expected:
        assert out == expected
    manager = namespace.get("coordinator")
    if manager is not None:
        assert "order sent" in out
        manager.close()  # type: ignore[attr-defined]
        assert (tmp_path / "haltgate.db").exists()
