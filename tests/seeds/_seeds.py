"""Where the seed documents live: ``HALTGATE_SEEDS`` when it is set, else ``shared/seeds``
beside the repository (CI clones the repository with ``shared/`` next to it, and
``.ci/run`` sets ``HALTGATE_SEEDS`` and fails when the folder is missing).

A fresh clone has no ``shared/`` beside it: the tests that compare against the seed
documents then skip with the reason, so the suite passes on any clone while CI, which has
the seeds, always runs them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV = "HALTGATE_SEEDS"
_ROOT = Path(__file__).resolve().parents[2]


def _holds_seeds(folder: Path) -> bool:
    return any(folder.glob("000_*.txt")) and any(folder.glob("001_*.txt"))


def seeds_dir() -> Path:
    """The folder holding the seed documents; skips the calling test when there is none.

    An explicit ``HALTGATE_SEEDS`` is the only place looked at, so a wrong value is never
    papered over by a folder found elsewhere.
    """
    explicit = os.environ.get(ENV)
    if explicit:
        folder = Path(explicit)
        where = f"{ENV}={explicit}"
    else:
        folder = _ROOT.parent / "shared" / "seeds"
        where = f"{folder} (../shared/seeds beside the repository; {ENV} is not set)"
    if _holds_seeds(folder):
        return folder
    pytest.skip(
        f"seed documents not found in {where}: set {ENV} to the folder holding "
        "000_*.txt and 001_*.txt to compare against them"
    )


def seed_text(prefix: str) -> str:
    """The text of the seed whose file name starts with ``prefix`` (``"000"``, ``"001"``)."""
    (path,) = sorted(seeds_dir().glob(f"{prefix}_*.txt"))
    return path.read_text(encoding="utf-8")
