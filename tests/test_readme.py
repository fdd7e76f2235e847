"""The README's Python examples run as written (in a scratch directory)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_python_examples() -> None:
    assert BLOCKS


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(
    index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code = BLOCKS[index].replace("...  # send the order", "print('order sent')")
    namespace: dict[str, object] = {"__name__": "__readme__"}
    exec(compile(code, f"README.md[{index}]", "exec"), namespace)
    manager = namespace.get("coordinator")
    if manager is not None:
        assert "order sent" in capsys.readouterr().out
        manager.close()  # type: ignore[attr-defined]
        assert (tmp_path / "haltgate.db").exists()
