"""Every code block of docs/order-checks.md runs: each ``python`` block prints what its
``# `` comment lines say, each ``toml`` block loads as a config file and builds a manager
with its checks, and each ``text`` block is what ``haltgate check-config`` prints for the
TOML block before it. A block in any other language fails the test (it would not run)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from haltgate import MemoryStore
from haltgate.cli import main
from haltgate.config import load_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "order-checks.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def _blocks() -> list[tuple[str, str]]:
    return BLOCK.findall(DOC.read_text())


def test_every_block_is_one_the_test_runs() -> None:
    languages = [lang for lang, _ in _blocks()]
    assert set(languages) <= {"python", "toml", "text"}, languages
    assert languages.count("python") >= 11  # the overview and one per check
    # Every text block shows the output of the TOML block before it.
    for index, lang in enumerate(languages):
        if lang == "text":
            assert "toml" in languages[:index]


@pytest.mark.parametrize(
    "code", [code for lang, code in _blocks() if lang == "python"], ids=lambda c: c[:40]
)
def test_the_python_examples_run_as_written(code: str) -> None:
    expected = [line[2:] for line in code.splitlines() if line.startswith("# ")]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {})
    assert out.getvalue().splitlines() == expected


def test_the_toml_examples_load_and_check_config_prints_the_text_blocks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    last: Path | None = None
    for index, (lang, code) in enumerate(_blocks()):
        if lang == "toml":
            last = tmp_path / f"block{index}.toml"
            last.write_text(code)
            config = load_config(last)
            assert config.checks
            manager = config.build_manager(store=MemoryStore(), audit=False)
            assert [c.name for c in manager.get_checks()] == [s.type for s in config.checks]
        elif lang == "text":
            assert last is not None
            capsys.readouterr()
            assert main(["--config", str(last), "check-config"]) == 0
            printed = capsys.readouterr().out.splitlines()
            start = next(i for i, line in enumerate(printed) if line.startswith("  checks:"))
            shown = code.rstrip("\n").splitlines()
            assert printed[start : start + len(shown)] == shown
