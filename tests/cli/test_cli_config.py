"""``haltgate init`` and ``check-config`` in a subprocess."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def test_init_then_check_config_and_errors_exit_2_without_traceback(
    tmp_path: Path, run_cli: RunCli
) -> None:
    done = run_cli("init", "my.toml")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "my.toml").read_text().startswith("# haltgate configuration")
    ok = run_cli("--config", "my.toml", "check-config")
    assert ok.returncode == 0, ok.stderr
    assert "config OK" in ok.stdout
    again = run_cli("init", "my.toml")
    assert again.returncode == 2
    (tmp_path / "bad.toml").write_text(
        '[[breakers]]\ntype = "manual"\n[[breakers]]\ntype = "drawdown"\nmax_drawdown_pct = "-1"\n'
    )
    bad = run_cli("--config", "bad.toml", "check-config")
    assert bad.returncode == 2
    assert "breakers[1].max_drawdown_pct" in bad.stderr
    assert "'-1'" in bad.stderr
    assert "Traceback" not in bad.stderr
