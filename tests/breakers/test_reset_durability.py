"""A reset is visible only once the store has it: lock-free readers (breaker.can_trade,
the manager's fast path) never see NORMAL for a reset the store may still refuse."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from haltgate import (
    CircuitBreakerManager,
    DrawdownCircuitBreaker,
    ManualCircuitBreaker,
    ManualClock,
    MemoryStore,
    StoreUnavailableError,
)
from haltgate.store.base import AuditRecord


class GatedStore(MemoryStore):
    """A MemoryStore whose next reset write waits for the test, then fails or succeeds."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = threading.Event()
        self.release = threading.Event()
        self.fail = False
        self.armed = False

    def write(self, name: str, snapshot: Any, audit: Sequence[AuditRecord]) -> Any:
        if self.armed and snapshot is not None and snapshot.get("state") == "NORMAL":
            self.armed = False
            self.writing.set()
            assert self.release.wait(10)
            if self.fail:
                raise StoreUnavailableError("store refused the reset")
        return super().write(name, snapshot, audit)


@pytest.mark.parametrize("fail", [True, False])
def test_readers_see_the_halt_until_the_reset_is_durable(fail: bool) -> None:
    store = GatedStore()
    manager = CircuitBreakerManager(breakers=[ManualCircuitBreaker()], store=store)
    breaker = manager.get_breaker("manual")
    assert breaker is not None
    manager.halt_all("incident", "alice")
    store.armed = True
    store.fail = fail
    outcome: list[BaseException | None] = []

    def reset() -> None:
        try:
            manager.reset("manual", operator="alice")
            outcome.append(None)
        except StoreUnavailableError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=reset)
    worker.start()
    assert store.writing.wait(10)
    # The reset is in the store's hands: every reader must still refuse.
    seen = [(manager.can_trade(), breaker.can_trade(), breaker.is_tripped) for _ in range(200)]
    assert set(seen) == {(False, False, True)}
    assert manager.get_trip_reasons() == {"manual": "incident"}
    store.release.set()
    worker.join(10)
    if fail:
        assert isinstance(outcome[0], StoreUnavailableError)
        assert manager.can_trade() is False
        assert breaker.get_trip_reason() == "incident"
        assert store.load_snapshot("manual")["state"] == "MANUALLY_HALTED"
    else:
        assert outcome == [None]
        assert manager.can_trade() is True
        assert store.load_snapshot("manual")["state"] == "NORMAL"


def test_failed_reset_keeps_the_peak_window() -> None:
    clock = ManualClock()
    store = GatedStore()
    breaker = DrawdownCircuitBreaker(Decimal("0.10"), clock=clock)
    CircuitBreakerManager(breakers=[breaker], store=store)
    breaker.update(100_000)
    breaker.update(80_000)
    assert breaker.is_tripped
    store.armed = True
    store.fail = True
    store.release.set()
    with pytest.raises(StoreUnavailableError):
        breaker.reset(operator="alice")
    # Nothing changed: still tripped, and the old peak still governs.
    assert breaker.is_tripped
    assert breaker.get_peak() == Decimal(100_000)
