"""``haltgate check-config`` as an operator meets it: the store it resolved, bad stores."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def test_check_config_prints_the_resolved_store_with_its_options(
    tmp_path: Path, run_cli: RunCli
) -> None:
    (tmp_path / "hg.toml").write_text('[store]\nurl = "sqlite:///state/hg.db"\nfail_open = false\n')
    done = run_cli("--config", "hg.toml", "check-config")
    assert done.returncode == 0, done.stderr
    resolved = (tmp_path / "state" / "hg.db").resolve()
    assert f"store:     sqlite:///{resolved} (" in done.stdout
    assert "fail_open=false" in done.stdout and "store_timeout=0.25" in done.stdout


def test_check_config_redacts_the_store_password(tmp_path: Path, run_cli: RunCli) -> None:
    (tmp_path / "hg.toml").write_text(
        '[store]\nurl = "redis://:s3cret@127.0.0.1:1/0"\nnamespace = "desk1"\n'
    )
    done = run_cli("--config", "hg.toml", "check-config")
    assert done.returncode == 0, done.stderr
    assert "redis://:***@127.0.0.1:1/0" in done.stdout and 'namespace="desk1"' in done.stdout
    assert "s3cret" not in done.stdout + done.stderr


def test_check_config_refuses_a_bad_store_naming_the_field(tmp_path: Path, run_cli: RunCli) -> None:
    (tmp_path / "hg.toml").write_text('[store]\nurl = "sqlite:///hg.db"\nfail_open = "false"\n')
    done = run_cli("--config", "hg.toml", "check-config")
    assert done.returncode == 2
    assert "store.fail_open: 'false'" in done.stderr and "boolean" in done.stderr
    assert "config OK" not in done.stdout and "Traceback" not in done.stderr
    (tmp_path / "typo.toml").write_text('[store]\nulr = "sqlite:///prod.db"\n')
    typo = run_cli("--config", "typo.toml", "check-config")
    assert typo.returncode == 2 and "store.ulr" in typo.stderr
