"""SQLite files are created readable by their owner only (SPEC §6)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from haltgate import CircuitBreakerManager, ManualCircuitBreaker
from haltgate.store.sqlite import SQLiteStore


def test_the_database_wal_and_shm_files_are_created_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which would give 0644
    try:
        path = tmp_path / "hg.db"
        manager = CircuitBreakerManager(breakers=[ManualCircuitBreaker()], store=SQLiteStore(path))
        try:
            manager.halt_all(reason="drill", operator="bob")
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert all(f.exists() for f in files)
            modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
            assert modes == {f.name: 0o600 for f in files}
        finally:
            manager.close()
    finally:
        os.umask(old)
