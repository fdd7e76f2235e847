"""The one kill-switch guard: attempts reserved atomically before the key is checked, so
parallel guesses from many threads, HTTP clients or processes still lock out after five."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from haltgate import AuthorizationError, ManualClock, hash_key
from haltgate.authority import MAX_FAILED_ATTEMPTS, KeyGuard
from haltgate.store import MemoryStore
from haltgate.store.sqlite import SQLiteStore

KEY = "right-key-made-by-this-test"


@pytest.fixture(scope="module")
def key_hash() -> str:
    return hash_key(KEY)


def _refused(store: Any, breaker: str) -> list[dict[str, Any]]:
    return [
        e.to_dict()["payload"]
        for e in store.iter_audit()
        if e.event == "kill_switch_reset_refused" and e.breaker == breaker
    ]


def test_the_store_update_is_atomic_across_stores_of_one_file(tmp_path: Path) -> None:
    stores = [SQLiteStore(tmp_path / "x.db", store_timeout=5) for _ in range(3)]
    try:

        def bump(store: SQLiteStore) -> None:
            for _ in range(40):
                store.update_value("counter", lambda old: ((old or 0) + 1, None))

        threads = [threading.Thread(target=bump, args=(s,)) for s in stores for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert stores[0].get_value("counter") == 240
    finally:
        for store in stores:
            store.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_parallel_wrong_keys_are_checked_at_most_five_times(
    tmp_path: Path, key_hash: str, kind: str
) -> None:
    stores: list[Any]
    if kind == "memory":
        shared = MemoryStore()
        stores = [shared] * 3
    else:
        stores = [SQLiteStore(tmp_path / "x.db", store_timeout=10) for _ in range(3)]
    clock = ManualClock()
    messages: list[str] = []
    lock = threading.Lock()

    def guess(store: Any, n: int) -> None:
        try:
            KeyGuard(store, "manual", clock=clock).check(f"guess-{n}", key_hash, "mallory")
        except AuthorizationError as refused:
            with lock:
                messages.append(str(refused))

    threads = [threading.Thread(target=guess, args=(stores[n % 3], n)) for n in range(30)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(messages) == 30
        checked = [m for m in messages if m.startswith("Wrong")]
        assert len(checked) == MAX_FAILED_ATTEMPTS
        assert sum("locked out" in m for m in messages) == 30 - MAX_FAILED_ATTEMPTS + 1
        outcomes = [p["outcome"] for p in _refused(stores[0], "manual")]
        assert outcomes.count("locked_out") == 25
        assert sum(o.startswith("wrong_key") for o in outcomes) == MAX_FAILED_ATTEMPTS
        # Even the right key is refused now, unchecked.
        with pytest.raises(AuthorizationError, match="locked out"):
            KeyGuard(stores[0], "manual", clock=clock).check(KEY, key_hash, "alice")
        clock.advance(300)
        KeyGuard(stores[0], "manual", clock=clock).check(KEY, key_hash, "alice")
        assert KeyGuard(stores[0], "manual", clock=clock).status().failed_attempts == 0
    finally:
        if kind == "sqlite":
            for store in stores:
                store.close()


def test_a_lockout_is_per_keyed_breaker(key_hash: str) -> None:
    store, clock = MemoryStore(), ManualClock()
    for n in range(MAX_FAILED_ATTEMPTS):
        with pytest.raises(AuthorizationError):
            KeyGuard(store, "manual", clock=clock).check(f"bad-{n}", key_hash, "eve")
    with pytest.raises(AuthorizationError, match="locked out"):
        KeyGuard(store, "manual", clock=clock).check(KEY, key_hash, "alice")
    KeyGuard(store, "max_drawdown", clock=clock).check(KEY, key_hash, "alice")


def _cli_env() -> dict[str, str]:
    import haltgate

    env = dict(os.environ)
    src = str(Path(haltgate.__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("HALTGATE_CONFIG", None)
    env.pop("HALTGATE_STORE", None)
    return env


def test_twelve_cli_processes_guessing_at_once_lock_out_after_five(
    tmp_path: Path, key_hash: str
) -> None:
    config = tmp_path / "haltgate.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "hg.db"}"\nstore_timeout = 10\n'
        '[[breakers]]\ntype = "manual"\n'
        f'[kill_switch]\nkey_hash = "{key_hash}"\nbreakers = ["manual"]\n'
    )
    env = _cli_env()
    base = [sys.executable, "-m", "haltgate", "--config", str(config)]
    halted = subprocess.run(
        [*base, "halt", "--reason", "drill", "--operator", "ops"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert halted.returncode == 0, halted.stderr
    procs = [
        subprocess.Popen(
            [*base, "reset", "manual", "--operator", "mallory", "--key", f"guess-{n}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(12)
    ]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    assert all(code == 1 for code, _ in results), results
    errors = [err for _, err in results]
    assert sum("Wrong kill-switch key" in e for e in errors) == MAX_FAILED_ATTEMPTS, errors
    assert sum("locked out" in e for e in errors) == 12 - MAX_FAILED_ATTEMPTS + 1
    store = SQLiteStore(tmp_path / "hg.db")
    try:
        outcomes = [p["outcome"] for p in _refused(store, "manual")]
        assert sum(o.startswith("wrong_key") for o in outcomes) == MAX_FAILED_ATTEMPTS
        snapshot = store.load_snapshot("manual")
        assert snapshot is not None and snapshot["state"] == "MANUALLY_HALTED"
    finally:
        store.close()
