"""Text that cannot encode as UTF-8 is refused before any state changes (SPEC §2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from haltgate import CircuitBreakerManager, InvalidInputError, ManualCircuitBreaker
from haltgate.store.sqlite import SQLiteStore

LONE = "outage \udcff"


def _manager(path: Path) -> CircuitBreakerManager:
    return CircuitBreakerManager(breakers=[ManualCircuitBreaker()], store=SQLiteStore(path))


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda m: m.get_breaker("manual").trigger_halt(reason=LONE, operator="bob"), "reason"),
        (lambda m: m.get_breaker("manual").trigger_halt(reason="x", operator=LONE), "operator"),
        (lambda m: m.halt_all(reason=LONE, operator="bob"), "reason"),
    ],
)
def test_a_lone_surrogate_is_refused_before_any_state_changes(
    tmp_path: Path, call: object, parameter: str
) -> None:
    manager = _manager(tmp_path / "hg.db")
    try:
        with pytest.raises(InvalidInputError) as caught:
            call(manager)  # type: ignore[operator]
        assert caught.value.parameter == parameter
        assert "UTF-8" in str(caught.value)
        assert manager.can_trade() is True
        assert manager.store.load_snapshot("manual") is None
    finally:
        manager.close()
    restarted = _manager(tmp_path / "hg.db")
    try:
        assert restarted.can_trade() is True
    finally:
        restarted.close()


def test_a_lone_surrogate_in_a_reset_reason_is_refused_and_the_halt_stays(tmp_path: Path) -> None:
    manager = _manager(tmp_path / "hg.db")
    try:
        breaker = manager.get_breaker("manual")
        assert breaker is not None
        breaker.trigger_halt(reason="drill", operator="bob")
        with pytest.raises(InvalidInputError) as caught:
            breaker.reset(operator="bob", reason=LONE)
        assert caught.value.parameter == "reason"
        assert manager.can_trade() is False
        snapshot = manager.store.load_snapshot("manual")
        assert snapshot is not None and snapshot["state"] == "MANUALLY_HALTED"
    finally:
        manager.close()
