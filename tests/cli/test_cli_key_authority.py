"""The kill switch's authority lives in the store: a reset from another terminal or the API
needs the key the trading process configured; a config never replaces a stored hash."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from haltgate import TradingBreakerConfig, TradingCircuitBreakers, hash_key
from haltgate.store.sqlite import SQLiteStore

SECRET = "trading-desk-key-made-by-this-test"


class _Portfolio:
    def __init__(self) -> None:
        self.drawdown = Decimal("-12")

    def get_daily_pnl_pct(self) -> Decimal:
        return Decimal(0)

    def get_max_drawdown(self) -> Decimal:
        return self.drawdown

    def get_total_value(self) -> Decimal:
        return Decimal(100_000)

    def get_daily_pnl(self) -> Decimal:
        return Decimal(0)

    def get_position_concentration(self, symbol: str) -> Decimal:
        return Decimal(0)


def _tripped_facade(db: Path) -> TradingCircuitBreakers:
    import asyncio

    facade = TradingCircuitBreakers(
        _Portfolio(),
        TradingBreakerConfig(kill_switch_key_hash=hash_key(SECRET)),
        store=f"sqlite:///{db}",
    )
    asyncio.run(facade.check_once())
    assert facade.get_breaker("max_drawdown").is_tripped
    return facade


def test_a_facade_keyed_kill_switch_cannot_be_reset_from_the_cli_without_its_key(
    tmp_path: Path, run_cli: Any
) -> None:
    db = tmp_path / "hg.db"
    facade = _tripped_facade(db)
    try:
        url = f"sqlite:///{db}"
        no_key = run_cli("--store", url, "reset", "max_drawdown", "--operator", "mallory")
        assert no_key.returncode == 1, no_key.stdout
        assert "key" in no_key.stderr
        wrong = run_cli(
            "--store", url, "reset", "max_drawdown", "--operator", "mallory", "--key", "x"
        )
        assert wrong.returncode == 1
        assert facade.get_breaker("max_drawdown").is_tripped
        assert not facade.can_trade()
        right = run_cli(
            "--store",
            url,
            "reset",
            "max_drawdown",
            "--operator",
            "alice",
            "--key",
            "-",
            stdin=SECRET + "\n",
        )
        assert right.returncode == 0, right.stderr
    finally:
        facade.close()


def test_a_facade_keyed_kill_switch_cannot_be_reset_over_http_without_its_key(
    tmp_path: Path,
) -> None:
    pytest.importorskip("starlette", reason="the server extra is installed by scripts/test.sh")
    from starlette.testclient import TestClient

    from haltgate.config import parse_config
    from haltgate.server import build_service, create_app

    db = tmp_path / "hg.db"
    facade = _tripped_facade(db)
    token = "op-token-made-by-this-test"
    config = parse_config(
        {
            "store": {"url": f"sqlite:///{db}"},
            "operators": [{"name": "eve", "token_hash": hash_key(token), "role": "operator"}],
        }
    )
    store = SQLiteStore(db)
    try:
        client = TestClient(create_app(build_service(store, config)), base_url="http://127.0.0.1")
        auth = {"Authorization": f"Bearer {token}"}
        r = client.post("/api/reset", json={"breaker": "max_drawdown"}, headers=auth)
        assert r.status_code == 403, r.text
        assert facade.get_breaker("max_drawdown").is_tripped
    finally:
        store.close()
        facade.close()


def _config(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "hg.db"}"\n[[breakers]]\ntype = "manual"\n' + body
    )
    return path


def test_a_config_never_replaces_or_drops_a_stored_key(tmp_path: Path, run_cli: Any) -> None:
    good = _config(tmp_path, "good.toml", f'[kill_switch]\nkey_hash = "{hash_key(SECRET)}"\n')
    evil = _config(tmp_path, "evil.toml", f'[kill_switch]\nkey_hash = "{hash_key("MINE")}"\n')
    unkeyed = _config(tmp_path, "unkeyed.toml", "")
    halt = ("halt", "--reason", "drill", "--operator", "ops")
    assert run_cli("--config", str(good), *halt).returncode == 0
    # evil.toml brings its own hash: the stored one still governs.
    mine = run_cli("--config", str(evil), "reset", "manual", "--operator", "m", "--key", "MINE")
    assert mine.returncode == 1, mine.stdout
    # A config that no longer lists the breaker does not unkey it.
    bare = run_cli("--config", str(unkeyed), "reset", "manual", "--operator", "m")
    assert bare.returncode == 1, bare.stdout
    store = SQLiteStore(tmp_path / "hg.db")
    try:
        assert store.load_snapshot("manual")["state"] == "MANUALLY_HALTED"  # type: ignore[index]
    finally:
        store.close()
    ok = run_cli(
        "--config",
        str(good),
        "reset",
        "manual",
        "--operator",
        "alice",
        "--key",
        "-",
        stdin=SECRET + "\n",
    )
    assert ok.returncode == 0, ok.stderr


def test_key_rotate_needs_the_current_key_and_is_audited(tmp_path: Path, run_cli: Any) -> None:
    good = _config(tmp_path, "good.toml", f'[kill_switch]\nkey_hash = "{hash_key(SECRET)}"\n')
    url = f"sqlite:///{tmp_path / 'hg.db'}"
    assert (
        run_cli("--config", str(good), "halt", "--reason", "r", "--operator", "o").returncode == 0
    )
    new_hash = hash_key("the-new-key")
    refused = run_cli(
        "--store",
        url,
        "key",
        "rotate",
        "manual",
        "--new-key-hash",
        new_hash,
        "--operator",
        "m",
        "--key",
        "wrong",
    )
    assert refused.returncode == 1
    rotated = run_cli(
        "--store",
        url,
        "key",
        "rotate",
        "manual",
        "--new-key-hash",
        new_hash,
        "--operator",
        "alice",
        "--key",
        "-",
        stdin=SECRET + "\n",
    )
    assert rotated.returncode == 0, rotated.stderr
    old = run_cli("--store", url, "reset", "manual", "--operator", "a", "--key", SECRET)
    assert old.returncode == 1
    new = run_cli("--store", url, "reset", "manual", "--operator", "a", "--key", "the-new-key")
    assert new.returncode == 0, new.stderr
    store = SQLiteStore(tmp_path / "hg.db")
    try:
        assert "kill_switch_key_rotated" in [e.event for e in store.iter_audit()]
    finally:
        store.close()
