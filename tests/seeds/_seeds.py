"""Where the seed documents live: ``shared/seeds`` beside the repository (CI clones the
repository with ``shared/`` next to it); ``HALTGATE_SEEDS`` overrides."""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]


def seeds_dir() -> Path:
    """The folder holding the seed documents; fails loudly when it cannot be found."""
    candidates = []
    if os.environ.get("HALTGATE_SEEDS"):
        candidates.append(Path(os.environ["HALTGATE_SEEDS"]))
    candidates += [_ROOT.parent / "shared" / "seeds", _ROOT.parent.parent / "shared" / "seeds"]
    for candidate in candidates:
        if any(candidate.glob("000_*.txt")):
            return candidate
    raise FileNotFoundError(
        f"seed documents not found in any of {[str(c) for c in candidates]}; "
        "set HALTGATE_SEEDS to the folder holding 000_*.txt and 001_*.txt"
    )


def seed_text(prefix: str) -> str:
    """The text of the seed whose file name starts with ``prefix`` (``"000"``, ``"001"``)."""
    (path,) = sorted(seeds_dir().glob(f"{prefix}_*.txt"))
    return path.read_text(encoding="utf-8")
