"""Every Python example in docs/call-breaker.md runs and prints what its comments say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "call-breaker.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs_and_prints_what_it_says(index: int, tmp_path: Path) -> None:
    source = BLOCKS[index]
    script = tmp_path / f"example_{index + 1}.py"
    script.write_text(source, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    # A trailing "# value, remark" comment on a print(...) line states its output.
    expected = [
        re.split(r"[,:]", line.split("#", 1)[1])[0].strip()
        for line in source.splitlines()
        if line.startswith("print(") and "#" in line
    ]
    for want in expected:
        assert any(want in line for line in printed), (want, printed)
