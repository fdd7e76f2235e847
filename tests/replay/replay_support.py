"""The deterministic series of ``examples/replay_series.py``, for the replay tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

_PATH = Path(__file__).resolve().parents[2] / "examples" / "replay_series.py"


def load() -> ModuleType:
    """The example module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("replay_series", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
