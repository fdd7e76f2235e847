"""``haltgate audit head`` and ``verify --expect-head``: the anchor kept outside the host is
what catches a consistent rewrite of the whole log and its head."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from haltgate import CircuitBreakerManager, ManualCircuitBreaker, ManualClock
from haltgate.store.sqlite import SQLiteStore


def _fill(store: Any, n: int = 6) -> None:
    manager = CircuitBreakerManager(
        breakers=[ManualCircuitBreaker()], store=store, clock=ManualClock()
    )
    for i in range(n // 2):
        manager.halt_all(f"drill {i}", "ops")
        manager.reset("manual", operator="ops")


def _sqlite(tmp_path: Path) -> Path:
    db = tmp_path / "hg.db"
    store = SQLiteStore(db)
    _fill(store)
    store.close()
    return db


def test_a_consistent_rewrite_is_caught_only_by_an_outside_anchor(
    tmp_path: Path, run_cli: Any
) -> None:
    db = _sqlite(tmp_path)
    url = f"sqlite:///{db}"
    head = run_cli("--store", url, "audit", "head")
    assert head.returncode == 0 and ":" in head.stdout
    anchor = head.stdout.strip()
    assert run_cli("--store", url, "audit", "verify", "--expect-head", anchor).returncode == 0
    # Rewrite everything consistently (log and head) from another store's valid chain.
    other = tmp_path / "other.db"
    store = SQLiteStore(other)
    _fill(store, 6)
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        conn.execute("DELETE FROM audit")
        conn.execute("ATTACH DATABASE ? AS other", (str(other),))
        conn.execute("INSERT INTO audit SELECT * FROM other.audit")
        conn.execute(
            "UPDATE kv SET value = (SELECT value FROM other.kv WHERE key = 'audit_head') "
            "WHERE key = 'audit_head'"
        )
    assert run_cli("--store", url, "audit", "verify").returncode == 0  # looks fine...
    anchored = run_cli("--store", url, "audit", "verify", "--expect-head", anchor)
    assert anchored.returncode == 1  # ...but not against the head kept outside
    assert "expected head" in anchored.stdout
