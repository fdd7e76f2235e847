"""Store URLs never show a password (SPEC §6), and an unreachable store is exit 1, not 2."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from haltgate.redact import redact_url

RunCli = Callable[..., subprocess.CompletedProcess[str]]

SECRET = "s3cret-pw-0123"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def url() -> str:
    pytest.importorskip("redis", reason="the redis extra is installed by scripts/test.sh")
    return f"redis://:{SECRET}@127.0.0.1:{_closed_port()}/0?password={SECRET}"


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "haltgate.toml"
    path.write_text(f'[store]\nurl = "{url}"\n[[breakers]]\ntype = "manual"\n')
    return path


@pytest.mark.parametrize(
    "command",
    [["status"], ["status", "--json"], ["halt", "--reason", "x", "--operator", "bob"]],
)
def test_an_unreachable_store_never_shows_its_password(
    run_cli: RunCli, tmp_path: Path, url: str, command: list[str]
) -> None:
    for where in (["--store", url], ["--config", str(_config(tmp_path, url))]):
        done = run_cli(*where, *command)
        assert done.returncode == 1, done.stderr  # the store is down: refused, not a usage error
        assert SECRET not in done.stdout + done.stderr
        assert "store unavailable" in done.stderr and ":***@127.0.0.1" in done.stderr
        assert "Traceback" not in done.stderr


def test_check_config_prints_the_store_redacted(run_cli: RunCli, tmp_path: Path, url: str) -> None:
    done = run_cli("--config", str(_config(tmp_path, url)), "check-config")
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert "redis://:***@127.0.0.1" in done.stdout and "password=***" in done.stdout


@pytest.mark.parametrize("bad", [f"ftp://:{SECRET}@host/x", f"nope://u:{SECRET}@h"])
def test_an_unsupported_store_url_is_refused_redacted(
    run_cli: RunCli, tmp_path: Path, bad: str
) -> None:
    for where in (["--store", bad], ["--config", str(_config(tmp_path, bad))]):
        done = run_cli(*where, "status")
        assert done.returncode == 2
        assert SECRET not in done.stdout + done.stderr
        assert "store.url" in done.stderr


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("rediss://alice:p@ss@host/0", "rediss://alice:***@host/0"),
        ("cannot reach 'redis://pw@h:1/0' now", "cannot reach 'redis://***@h:1/0' now"),
        ("redis://h/0?db=1&password=pw&x=1", "redis://h/0?db=1&password=***&x=1"),
        ("unix:///tmp/r.sock?Password=pw", "unix:///tmp/r.sock?Password=***"),
        ("sqlite:///var/lib/hg.db", "sqlite:///var/lib/hg.db"),
        ("mail alice@example.com", "mail alice@example.com"),
    ],
)
def test_redact_url_masks_passwords_in_any_text(text: str, shown: str) -> None:
    assert redact_url(text) == shown
