"""Two processes on one SQLite file against a small model of SPEC §3's adoption rules.

Each "process" is a manager on its own :class:`SQLiteStore` of the same file (its own
connection, background watcher and origin) and its own ManualClock. Random errors, self-
clears, halts, operator resets and restarts; after every step both processes have seen
every change. The property: **no process ever trades while the model says a breaker it has
is blocking** (a halt anywhere, a trip of its own, a trip it imported from another process
that has not cleared it, or a trip restored at start-up that is still within its hold).
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from haltgate import (
    CircuitBreakerManager,
    ErrorRateCircuitBreaker,
    ManualCircuitBreaker,
    ManualClock,
)
from haltgate.store.sqlite import SQLiteStore

pytestmark = pytest.mark.timeout(300)

MAX_ERRORS = 2
WINDOW = 60.0
PROCESSES = ("a", "b")


@dataclass
class Condition:
    """A trip as one process holds it: whose it is, and whether it was restored."""

    origin: int
    restored: bool = False
    hold_until: float = 0.0


@dataclass
class ProcessModel:
    origin: int
    errors: list[float] = field(default_factory=list)
    condition: Condition | None = None
    mono: float = 0.0

    def count(self) -> int:
        return sum(1 for t in self.errors if self.mono - WINDOW < t <= self.mono)


class Process:
    """One trading process: a manager on its own store of the shared file."""

    def __init__(self, path: Path, clock: ManualClock) -> None:
        self.clock = clock
        self.store = SQLiteStore(path)
        self.manager = CircuitBreakerManager(
            breakers=[
                ErrorRateCircuitBreaker(max_errors=MAX_ERRORS, window_seconds=WINDOW),
                ManualCircuitBreaker(),
            ],
            store=self.store,
            clock=clock,
        )

    @property
    def errors(self) -> ErrorRateCircuitBreaker:
        breaker = self.manager.get_breaker("error_rate")
        assert isinstance(breaker, ErrorRateCircuitBreaker)
        return breaker

    def close(self) -> None:
        self.manager.close()


class TwoProcesses(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.path = Path(self.dir.name) / "shared.db"
        self.clocks = {p: ManualClock() for p in PROCESSES}
        self.procs = {p: Process(self.path, self.clocks[p]) for p in PROCESSES}
        self.next_origin = 2
        self.model = {p: ProcessModel(origin=i) for i, p in enumerate(PROCESSES)}
        self.halted = False
        # The error breaker's stored record: (state, origin of its trip).
        self.stored: tuple[str, int | None] = ("NORMAL", None)

    def teardown(self) -> None:
        for proc in self.procs.values():
            proc.close()
        self.dir.cleanup()

    # ------------------------------------------------------------------ syncing
    def sync(self) -> None:
        """Wait until both stores' watchers have applied every change in the file."""
        with sqlite3.connect(self.path) as conn:
            (target,) = conn.execute("SELECT COALESCE(MAX(change_seq), 0) FROM breakers").fetchone()
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            while proc.store._seen_seq < target:
                assert time.monotonic() < deadline, "a watcher did not catch up"
                time.sleep(0.005)
        time.sleep(0.02)  # the watcher records the number before it applies the row

    # ------------------------------------------------------------------ model helpers
    def _trip(self, p: str) -> None:
        mine = self.model[p]
        if mine.condition is not None:
            return
        mine.condition = Condition(mine.origin)
        self.stored = ("TRIPPED", mine.origin)
        for q in PROCESSES:
            if q != p and self.model[q].condition is None:
                self.model[q].condition = Condition(mine.origin)

    def _self_clear(self, p: str) -> None:
        self.model[p].condition = None
        self.stored = ("NORMAL", None)
        for q in PROCESSES:
            other = self.model[q].condition
            if q != p and other is not None and other.origin == self.model[p].origin:
                self.model[q].condition = None

    # ------------------------------------------------------------------ rules
    @rule(p=st.sampled_from(PROCESSES), n=st.integers(min_value=1, max_value=3))
    def errors(self, p: str, n: int) -> None:
        for _ in range(n):
            self.procs[p].manager.record_error(RuntimeError("broker"))
            mine = self.model[p]
            mine.errors.append(mine.mono)
            if mine.count() > MAX_ERRORS:
                self._trip(p)
        self.sync()

    @rule(p=st.sampled_from(PROCESSES), seconds=st.sampled_from([1.0, 30.0, 61.0, 200.0]))
    def advance(self, p: str, seconds: float) -> None:
        self.clocks[p].advance(seconds)
        mine = self.model[p]
        mine.mono += seconds
        self.procs[p].errors.refresh()
        cond = mine.condition
        if cond is not None and mine.count() <= MAX_ERRORS:
            # A restored trip clears after its hold; an imported one is its origin's.
            held = mine.mono < cond.hold_until if cond.restored else cond.origin != mine.origin
            if not held:
                self._self_clear(p)
        self.sync()

    @rule(p=st.sampled_from(PROCESSES))
    def halt(self, p: str) -> None:
        self.procs[p].manager.halt_all("operator stop", "ops")
        self.halted = True
        self.sync()

    @rule(p=st.sampled_from(PROCESSES), name=st.sampled_from(["manual", "error_rate"]))
    def operator_reset(self, p: str, name: str) -> None:
        self.procs[p].manager.reset(name, operator="ops")
        if name == "manual":
            self.halted = False
        elif self.model[p].condition is not None:
            # An order: every process drops its trip and its evidence.
            self.stored = ("NORMAL", None)
            for q in PROCESSES:
                self.model[q].condition = None
                self.model[q].errors = []
        self.sync()

    @rule(p=st.sampled_from(PROCESSES))
    def restart(self, p: str) -> None:
        self.procs[p].close()
        self.procs[p] = Process(self.path, self.clocks[p])
        mine = self.model[p]
        mine.origin = self.next_origin
        self.next_origin += 1
        mine.errors = []
        state, origin = self.stored
        if state == "TRIPPED" and origin is not None:
            mine.condition = Condition(origin, restored=True, hold_until=mine.mono + WINDOW)
        else:
            mine.condition = None
        self.sync()

    # ------------------------------------------------------------------ the property
    @invariant()
    def no_process_trades_while_the_model_blocks(self) -> None:
        for p in PROCESSES:
            blocking = self.halted or self.model[p].condition is not None
            if blocking:
                proc = self.procs[p]
                assert proc.manager.can_trade() is False, (p, proc.manager.get_status())
                assert proc.manager.record_order() is False


TwoProcesses.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestTwoProcessesOnOneSQLiteFile = TwoProcesses.TestCase
