"""Config files: the shape of SPEC §8, errors that name the field, the starter file."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from haltgate import (
    ConfigError,
    DailyLossCircuitBreaker,
    DailyRollCalendar,
    DrawdownCircuitBreaker,
    MemoryStore,
    OrderRateCircuitBreaker,
    hash_key,
)
from haltgate.config import load_config, parse_config, starter_config

SPEC_EXAMPLE = """
[store]
url = "memory://"

[[breakers]]
type = "drawdown"
name = "drawdown"
max_drawdown_pct = "0.10"
lookback_days = 30

[[breakers]]
type = "daily_loss"
max_daily_loss = "5000"
calendar = "roll:17:00@America/New_York"
"""


DAILY = '[[breakers]]\ntype = "daily_loss"\nmax_daily_loss = "5000"\n'


def _write(tmp_path: Path, text: str, name: str = "haltgate.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_spec_example_builds_the_manager(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, SPEC_EXAMPLE))
    store = MemoryStore()
    manager = config.build_manager(store=store)
    drawdown = manager.get_breaker("drawdown")
    daily = manager.get_breaker("daily_loss")
    assert isinstance(drawdown, DrawdownCircuitBreaker)
    assert drawdown.max_drawdown_pct == Decimal("0.10")
    assert drawdown.lookback_days == 30
    assert isinstance(daily, DailyLossCircuitBreaker)
    assert daily.max_daily_loss == Decimal("5000")
    assert isinstance(daily.calendar, DailyRollCalendar)
    assert config.engine == {"on_trip": "pause"}
    assert config.server.bind == "127.0.0.1"
    # The load is audited, with the file's digest.
    entries = list(store.iter_audit())
    assert [e.event for e in entries] == ["config_loaded"]
    assert config.digest in entries[0].payload


def test_yaml_config(tmp_path: Path) -> None:
    text = (
        "store: {url: 'memory://'}\nbreakers:\n  - {type: order_rate, max_orders_per_minute: 7}\n"
    )
    config = load_config(_write(tmp_path, text, "haltgate.yaml"))
    (breaker,) = config.build_breakers()
    assert isinstance(breaker, OrderRateCircuitBreaker)
    assert breaker.max_orders_per_minute == 7


@pytest.mark.parametrize(
    ("text", "path", "shown"),
    [
        (
            '[[breakers]]\ntype = "drawdown"\nmax_drawdown_pct = "1.5"\n',
            "breakers[0].max_drawdown_pct",
            "'1.5'",
        ),
        (
            '[[breakers]]\ntype = "manual"\n'
            '[[breakers]]\ntype = "drawdown"\nmax_drawdown_pct = "ten"\n',
            "breakers[1].max_drawdown_pct",
            "'ten'",
        ),
        ('[[breakers]]\ntype = "drawdwn"\n', "breakers[0].type", "'drawdwn'"),
        (
            '[[breakers]]\ntype = "drawdown"\nmax_drawdown = "0.1"\n',
            "breakers[0].max_drawdown",
            "'0.1'",
        ),
        (
            '[[breakers]]\ntype = "order_rate"\nmax_orders_per_minute = 0\n',
            "breakers[0].max_orders_per_minute",
            "0",
        ),
        (
            DAILY + 'calendar = "roll:25:00@UTC"\n',
            "breakers[0].calendar",
            "roll:25:00@UTC",
        ),
        (
            DAILY + 'calendar = "roll:17:00@Mars/Base"\n',
            "breakers[0].calendar",
            "Mars/Base",
        ),
        (
            '[[breakers]]\ntype = "manual"\n[[breakers]]\ntype = "manual"\n',
            "breakers[1].name",
            "'manual'",
        ),
        ('[engine]\non_trip = "panic"\n', "engine.on_trip", "'panic'"),
        ("[server]\nport = 70000\n", "server.port", "70000"),
        ('[server]\nbind = "0.0.0.0"\n', "server.bind", "'0.0.0.0'"),
        (
            '[[operators]]\nname = "ann"\ntoken_hash = "hunter2"\n',
            "operators[0].token_hash",
            "plain text, 7 characters",  # a pasted secret is never echoed (issue 11)
        ),
        ('[store]\nurl = "ftp://x"\n', "store.url", "ftp://x"),
        ('colour = "red"\n', "colour", "'red'"),
        ("[kill_switch]\nbreakers = []\n", "kill_switch.breakers", "[]"),
    ],
)
def test_errors_name_the_dotted_path_and_the_value(
    tmp_path: Path, text: str, path: str, shown: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    assert info.value.path == path
    assert shown in str(info.value)
    assert "hunter2" not in str(info.value)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(_write(tmp_path, "[store\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


def test_operators_roles_and_tokens() -> None:
    token = "tok-" + "x" * 20
    config = parse_config(
        {
            "server": {"bind": "0.0.0.0"},
            "operators": [
                {"name": "ann", "token_hash": hash_key(token)},
                {"name": "vic", "token_hash": hash_key("viewer-token"), "role": "viewer"},
            ],
        }
    )
    assert not config.server.loopback
    assert config.server.reads_need_token
    ann = config.operator_for_token(token)
    assert ann is not None and ann.name == "ann" and ann.role == "operator"
    vic = config.operator_for_token("viewer-token")
    assert vic is not None and vic.role == "viewer"
    assert config.operator_for_token("wrong") is None


def test_kill_switch_hash_reaches_the_store(tmp_path: Path) -> None:
    key_hash = hash_key("the-key")
    config = parse_config({"kill_switch": {"key_hash": key_hash}, "store": {"url": "memory://"}})
    store = MemoryStore()
    config.build_manager(store=store)
    # Stored per keyed breaker (SPEC §6: the store is the authority).
    assert store.get_value("kill_switch") == {"keys": {"manual": key_hash}}


def test_starter_config_is_accepted(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, starter_config()))
    assert [s.type for s in config.breakers] == ["drawdown", "daily_loss", "order_rate", "manual"]


def test_relative_sqlite_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    config = load_config(_write(tmp_path / "etc", '[store]\nurl = "sqlite:///state/hg.db"\n'))
    assert config.store_url == f"sqlite:///{(tmp_path / 'etc' / 'state' / 'hg.db').resolve()}"
    absolute = load_config(_write(tmp_path, f'[store]\nurl = "sqlite:///{tmp_path}/x.db"\n'))
    assert absolute.store_url == f"sqlite:///{tmp_path}/x.db"
