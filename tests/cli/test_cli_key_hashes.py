"""Key hashes are checked when loaded: weak ones refused, a pasted secret never echoed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def _scrypt_hash(secret: str, n: int, r: int, dklen: int) -> str:
    import base64
    import hashlib

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=1, dklen=dklen)
    return f"scrypt${n}${r}$1${b64(salt)}${b64(digest)}"


def _pbkdf2_hash(secret: str, iterations: int) -> str:
    import base64
    import hashlib

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    salt = b"0123456789abcdef"
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations, 32)
    return f"pbkdf2_sha256${iterations}${b64(salt)}${b64(digest)}"


@pytest.mark.parametrize(
    "weak",
    [
        pytest.param(lambda: _scrypt_hash("k", 2, 8, 1), id="scrypt-N2-1byte"),
        pytest.param(lambda: _scrypt_hash("k", 2**14, 1, 32), id="scrypt-r1"),
        pytest.param(lambda: _pbkdf2_hash("k", 1), id="pbkdf2-1-iteration"),
    ],
)
def test_weak_hashes_are_refused_when_loaded(tmp_path: Path, weak: Any, run_cli: Any) -> None:
    from haltgate import InvalidInputError, TradingBreakerConfig, TradingCircuitBreakers

    hashed = weak()
    config = tmp_path / "haltgate.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "hg.db"}"\n[[breakers]]\ntype = "manual"\n'
        f'[kill_switch]\nkey_hash = "{hashed}"\n'
    )
    result = run_cli("--config", str(config), "check-config")
    assert result.returncode == 2, result.stdout
    assert "kill_switch.key_hash" in result.stderr and "weaker" in result.stderr
    with pytest.raises(InvalidInputError, match="weaker"):
        TradingCircuitBreakers(object(), TradingBreakerConfig(kill_switch_key_hash=hashed))


def test_a_pasted_secret_is_refused_without_echoing_it(tmp_path: Path, run_cli: Any) -> None:
    secret = "correct-horse-battery-staple"
    config = tmp_path / "haltgate.toml"
    config.write_text(f'[kill_switch]\nkey_hash = "{secret}"\n')
    result = run_cli("--config", str(config), "check-config")
    assert result.returncode == 2
    assert "plain text, 28 characters" in result.stderr
    for piece in ("correct", "horse", "staple", secret[:12]):
        assert piece not in result.stderr + result.stdout


def _keyed_config(tmp_path: Path, secret: str) -> Path:
    from haltgate import hash_key

    config = tmp_path / "haltgate.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "hg.db"}"\n[[breakers]]\ntype = "manual"\n'
        f'[kill_switch]\nkey_hash = "{hash_key(secret)}"\n'
    )
    return config


def test_the_key_comes_from_stdin_or_the_environment_not_only_argv(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "stdin-key-made-by-this-test"
    config = _keyed_config(tmp_path, secret)
    halt = ("--config", str(config), "halt", "--reason", "drill", "--operator", "ops")
    reset = ("--config", str(config), "reset", "manual", "--operator", "ops")
    assert run_cli(*halt).returncode == 0
    from_stdin = run_cli(*reset, "--key", "-", stdin=secret + "\n")
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert "RESET 'manual'" in from_stdin.stdout
    assert run_cli(*halt).returncode == 0
    monkeypatch.setenv("HALTGATE_KILL_SWITCH_KEY", secret)
    from_env = run_cli(*reset)
    assert from_env.returncode == 0, from_env.stderr
    monkeypatch.setenv("HALTGATE_KILL_SWITCH_KEY", "wrong")
    assert run_cli(*halt).returncode == 0
    assert run_cli(*reset).returncode == 1
    # --key VALUE still works, with a warning that argv is visible.
    monkeypatch.delenv("HALTGATE_KILL_SWITCH_KEY")
    in_argv = run_cli(*reset, "--key", secret)
    assert in_argv.returncode == 0 and "visible" in in_argv.stderr
