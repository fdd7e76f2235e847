"""``[[checks]]`` in the config file (SPEC §10, shape of ``[[breakers]]``): every check
type builds, errors name the dotted path, unknown keys and wrong types are errors, and
the manager built from the file gets the checks."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from haltgate import ConfigError, ManualClock, MemoryStore, Order, OrderContext
from haltgate.checks import (
    CHECK_TYPES,
    DuplicateOrder,
    ExecutionThrottle,
    MaxGrossExposure,
    MaxOpenOrders,
    MaxOrderNotional,
    MaxOrderQuantity,
    MaxPosition,
    MessageThrottle,
    PriceCollar,
    RestrictedSymbols,
)
from haltgate.config import check_settings, load_config, parse_config, starter_config

RunCli = Callable[..., subprocess.CompletedProcess[str]]

ALL_TEN = """
[store]
url = "memory://"

[[checks]]
type = "max_order_quantity"
max_quantity = "1000"
per_symbol = { "BRK.A" = "5" }

[[checks]]
type = "max_order_notional"
max_notional = "250000.50"
[checks.per_symbol]
SPY = "500000"

[[checks]]
type = "price_collar"
max_deviation = "0.05"
max_price_age_seconds = 2.5

[[checks]]
type = "max_position"
max_quantity = "5000"
max_notional = "1000000"
[checks.per_symbol.TSLA]
max_quantity = "100"

[[checks]]
type = "max_gross_exposure"
max_exposure = "2000000"
max_fraction_of_equity = "2"

[[checks]]
type = "max_open_orders"
max_open = 20

[[checks]]
type = "duplicate_order"
window_seconds = 1

[[checks]]
type = "message_throttle"
max_messages = 100
window_seconds = 1

[[checks]]
type = "execution_throttle"
max_orders = 3
window_seconds = 60

[[checks]]
type = "restricted_symbol"
symbols = ["XYZ", "ABC"]
"""


def _write(tmp_path: Path, text: str, name: str = "haltgate.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_check_type_builds_from_the_file_with_exact_limits(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, ALL_TEN))
    checks = config.build_checks()
    assert [type(c) for c in checks] == [
        MaxOrderQuantity,
        MaxOrderNotional,
        PriceCollar,
        MaxPosition,
        MaxGrossExposure,
        MaxOpenOrders,
        DuplicateOrder,
        MessageThrottle,
        ExecutionThrottle,
        RestrictedSymbols,
    ]
    assert {spec.type for spec in config.checks} == set(CHECK_TYPES)
    quantity, notional, collar, position, gross, *_rest, restricted = checks
    assert quantity.per_symbol == {"BRK.A": Decimal(5)}  # type: ignore[attr-defined]
    assert notional.max_notional == Decimal("250000.50")  # type: ignore[attr-defined]
    assert notional.per_symbol == {"SPY": Decimal(500000)}  # type: ignore[attr-defined]
    assert collar.max_price_age_seconds == 2.5  # type: ignore[attr-defined]
    assert position.per_symbol == {  # type: ignore[attr-defined]
        "TSLA": (Decimal(100), Decimal(1000000))
    }
    assert gross.max_fraction_of_equity == Decimal(2)  # type: ignore[attr-defined]
    assert restricted.symbols == frozenset({"XYZ", "ABC"})  # type: ignore[attr-defined]
    assert check_settings(quantity) == {"max_quantity": Decimal(1000), "per_symbol": {"BRK.A": 5}}


def test_the_manager_built_from_the_file_gets_the_checks_and_the_throttles_breaker(
    tmp_path: Path,
) -> None:
    config = load_config(_write(tmp_path, ALL_TEN))
    clock = ManualClock()
    manager = config.build_manager(store=MemoryStore(), clock=clock, audit=False)
    assert [c.name for c in manager.get_checks()] == [s.type for s in config.checks]
    assert "execution_throttle" in manager.get_status()
    context = OrderContext(reference_price=100, price_time=clock.now(), equity=10**7)
    assert manager.admit_order(order=Order.make("SPY", 10), context=context) == []
    assert manager.admit_order(order=Order.make("BRK.A", 6), context=context) == [
        "max_order_quantity: 6 > 5 (BRK.A)"
    ]
    assert manager.check_order(Order.make("XYZ", 1), context).code == "restricted_symbol"


def test_yaml_gives_the_same_checks(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    text = """
store:
  url: "memory://"
checks:
  - type: max_order_quantity
    max_quantity: "1000"
    per_symbol: {"BRK.A": "5"}
  - type: max_position
    per_symbol:
      TSLA: {max_quantity: "100"}
  - type: restricted_symbol
    symbols: [XYZ]
"""
    config = load_config(_write(tmp_path, text, "haltgate.yaml"))
    assert [s.type for s in config.checks] == [
        "max_order_quantity",
        "max_position",
        "restricted_symbol",
    ]
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text.replace('"5"', "5.5"), "bad.yaml"))
    assert info.value.path == "checks[0].per_symbol.BRK.A"


QTY = '[[checks]]\ntype = "max_order_quantity"\nmax_quantity = "1000"\n'
COLLAR = '[[checks]]\ntype = "price_collar"\nmax_deviation = "0.05"\n'


@pytest.mark.parametrize(
    ("text", "path", "shown"),
    [
        (
            QTY + COLLAR + '[[checks]]\ntype = "max_order_quantity"\nmax_quantity = "10"\n',
            "checks[2].type",
            "already configured",
        ),
        (
            QTY + COLLAR + '[[checks]]\ntype = "max_position"\nmax_quantity = "-1"\n',
            "checks[2].max_quantity",
            "greater than 0",
        ),
        (
            '[[checks]]\ntype = "max_order_quantity"\nmax_quantity = 1000.5\n',
            "checks[0].max_quantity",
            "money as strings",
        ),
        (
            '[[checks]]\ntype = "max_order_quantity"\nmax_quantity = true\n',
            "checks[0].max_quantity",
            "True",
        ),
        (
            '[[checks]]\ntype = "max_order_quantity"\nmax_quantity = "lots"\n',
            "checks[0].max_quantity",
            "not a number",
        ),
        (
            '[[checks]]\ntype = "max_order_quantity"\nmax_qty = "10"\n',
            "checks[0].max_qty",
            "not a parameter of max_order_quantity",
        ),
        ('[[checks]]\ntype = "max_order_quantity"\n', "checks[0]", "max_quantity"),
        ('[[checks]]\ntype = "fat_finger"\n', "checks[0].type", "unknown check type"),
        ("[[checks]]\nmax_quantity = 5\n", "checks[0].type", "missing"),
        ('checks = "max_order_quantity"\n', "checks", "must be a list"),
        (
            '[[checks]]\ntype = "max_order_quantity"\nmax_quantity = "10"\nper_symbol = "SPY=5"\n',
            "checks[0].per_symbol",
            "must be a table",
        ),
        (
            '[[checks]]\ntype = "max_order_quantity"\nmax_quantity = "10"\n'
            'per_symbol = { SPY = "0" }\n',
            "checks[0].per_symbol.SPY",
            "greater than 0",
        ),
        (
            '[[checks]]\ntype = "max_order_notional"\nmax_notional = "10"\n'
            "per_symbol = { SPY = 1.5 }\n",
            "checks[0].per_symbol.SPY",
            "money as strings",
        ),
        (
            '[[checks]]\ntype = "max_position"\nper_symbol = { SPY = "5" }\n',
            "checks[0].per_symbol.SPY",
            "must be a table",
        ),
        (
            '[[checks]]\ntype = "max_position"\nper_symbol = { SPY = { max_qty = "5" } }\n',
            "checks[0].per_symbol.SPY.max_qty",
            "unknown key",
        ),
        (
            '[[checks]]\ntype = "max_position"\nper_symbol = { SPY = { max_quantity = "-5" } }\n',
            "checks[0].per_symbol.SPY.max_quantity",
            "greater than 0",
        ),
        ('[[checks]]\ntype = "max_position"\n', "checks[0]", "max_quantity"),
        (
            '[[checks]]\ntype = "max_open_orders"\nmax_open = "20"\n',
            "checks[0].max_open",
            "whole number",
        ),
        (
            '[[checks]]\ntype = "max_open_orders"\nmax_open = 0\n',
            "checks[0].max_open",
            "at least 1",
        ),
        (
            '[[checks]]\ntype = "message_throttle"\nmax_messages = 10\nwindow_seconds = -1\n',
            "checks[0].window_seconds",
            "greater than 0",
        ),
        (
            '[[checks]]\ntype = "duplicate_order"\nwindow_seconds = true\n',
            "checks[0].window_seconds",
            "seconds",
        ),
        (
            '[[checks]]\ntype = "price_collar"\nmax_deviation = "1.5"\n',
            "checks[0].max_deviation",
            "fraction",
        ),
        (
            '[[checks]]\ntype = "restricted_symbol"\nsymbols = "XYZ"\n',
            "checks[0].symbols",
            "list of symbols",
        ),
        (
            '[[checks]]\ntype = "restricted_symbol"\nsymbols = ["XYZ", 5]\n',
            "checks[0].symbols[1]",
            "a string",
        ),
        (
            '[[checks]]\ntype = "restricted_symbol"\nsymbols = ["XYZ", " "]\n',
            "checks[0].symbols",
            "non-empty",
        ),
        ('[[checks]]\ntype = "max_gross_exposure"\n', "checks[0]", "max_exposure"),
        (
            '[[breakers]]\ntype = "manual"\nname = "execution_throttle"\n'
            '[[checks]]\ntype = "execution_throttle"\nmax_orders = 3\nwindow_seconds = 60\n',
            "checks[0].type",
            "registers the breaker 'execution_throttle'",
        ),
        ("[[checks]]\n", "checks[0].type", "missing"),
        ('checks = ["max_open_orders"]\n', "checks[0]", "must be a table"),
    ],
)
def test_check_errors_name_the_dotted_path(
    tmp_path: Path, text: str, path: str, shown: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    assert info.value.path == path
    assert shown in str(info.value)


def test_a_bad_check_changes_nothing_and_a_good_file_still_parses() -> None:
    good = parse_config({"checks": [{"type": "max_open_orders", "max_open": 5}]})
    assert [s.type for s in good.checks] == ["max_open_orders"]
    with pytest.raises(ConfigError):
        parse_config({"checks": [{"type": "max_open_orders", "max_open": 5, "extra": 1}]})
    assert parse_config({}).checks == ()


def test_the_starter_checks_build_and_the_commented_ones_too(tmp_path: Path) -> None:
    text = starter_config()
    config = load_config(_write(tmp_path, text))
    assert [s.type for s in config.checks] == [
        "max_order_quantity",
        "max_order_notional",
        "price_collar",
        "max_position",
        "max_open_orders",
        "duplicate_order",
        "message_throttle",
        "execution_throttle",
    ]
    # Uncommenting the commented examples gives all ten, still valid.
    lines = []
    in_example = False
    for line in text.splitlines():
        if line.startswith("# [[checks]]"):
            in_example = True
        elif not line.startswith("# "):
            in_example = False
        lines.append(line[2:] if in_example else line)
    every = load_config(_write(tmp_path, "\n".join(lines), "every.toml"))
    assert {s.type for s in every.checks} == set(CHECK_TYPES)


def test_check_config_prints_the_checks_it_resolved(tmp_path: Path, run_cli: RunCli) -> None:
    _write(tmp_path, ALL_TEN)
    done = run_cli("--config", "haltgate.toml", "check-config")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "checks:    10" in out
    assert '    max_order_quantity: max_quantity="1000" per_symbol={"BRK.A": "5"}' in out
    assert '    price_collar: max_deviation="0.05" max_price_age_seconds=2.5' in out
    assert '    restricted_symbol: symbols=["ABC", "XYZ"]' in out
    assert "    execution_throttle: max_orders=3 window_seconds=60" in out
    bad = _write(tmp_path, QTY.replace('"1000"', "1000.5"), "bad.toml")
    refused = run_cli("--config", str(bad), "check-config")
    assert refused.returncode == 2
    assert "checks[0].max_quantity" in refused.stderr
