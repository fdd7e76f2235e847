"""The seed lookup on a clone without the seed documents, and CI's guard against that.

A fresh clone has no ``../shared/seeds``: the tests that compare against the seeds skip,
naming why, and the suite still passes. ``.ci/run`` refuses to run without them, so CI
never skips them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SEED_TESTS = REPO / "tests" / "seeds"


def _clone_layout(tmp_path: Path) -> Path:
    """A repository layout with the seed tests and nothing beside it (no ``../shared``)."""
    repo = tmp_path / "clone"
    (repo / "tests").mkdir(parents=True)
    shutil.copytree(SEED_TESTS, repo / "tests" / "seeds")
    (repo / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    assert not (tmp_path / "shared").exists()
    return repo


def _pytest(repo: Path, seeds: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HALTGATE_SEEDS"}
    if seeds is not None:
        env["HALTGATE_SEEDS"] = seeds
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/seeds/test_readme_callbreaker.py",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("seeds", "named"),
    [
        (None, "../shared/seeds beside the repository"),
        ("empty", "HALTGATE_SEEDS="),
        ("/nonexistent", "HALTGATE_SEEDS=/nonexistent"),
    ],
)
def test_seed_comparisons_skip_with_the_reason_on_a_clone_without_seeds(
    tmp_path: Path, seeds: str | None, named: str
) -> None:
    repo = _clone_layout(tmp_path)
    if seeds == "empty":
        (tmp_path / "empty").mkdir()
        seeds = str(tmp_path / "empty")
    result = _pytest(repo, seeds)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "1 skipped" in out and "failed" not in out, out
    assert "seed documents not found" in out and named in out, out
    assert "set HALTGATE_SEEDS" in out, out


def _ci_layout(tmp_path: Path, with_seeds: bool) -> Path:
    """``.ci/run`` in a clone whose ``scripts/test.sh`` only reports what it was given."""
    repo = tmp_path / "clone"
    (repo / ".ci").mkdir(parents=True)
    (repo / "scripts").mkdir()
    shutil.copy(REPO / ".ci" / "run", repo / ".ci" / "run")
    (repo / "scripts" / "test.sh").write_text(
        'echo "HALTGATE_SEEDS=$HALTGATE_SEEDS"\n', encoding="utf-8"
    )
    if with_seeds:
        seeds = tmp_path / "shared" / "seeds"
        seeds.mkdir(parents=True)
        (seeds / "000_guide.txt").write_text("guide", encoding="utf-8")
        (seeds / "001_readme.txt").write_text("readme", encoding="utf-8")
    return repo


def test_ci_refuses_to_run_without_the_seed_documents(tmp_path: Path) -> None:
    repo = _ci_layout(tmp_path, with_seeds=False)
    result = subprocess.run(
        ["bash", ".ci/run"], cwd=repo, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "seed documents not found" in result.stderr
    assert str(tmp_path / "shared" / "seeds") in result.stderr
    assert "HALTGATE_SEEDS=" not in result.stdout  # the suite never started


def test_ci_runs_the_suite_with_haltgate_seeds_beside_the_clone(tmp_path: Path) -> None:
    repo = _ci_layout(tmp_path, with_seeds=True)
    result = subprocess.run(
        ["bash", ".ci/run"], cwd=repo, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"HALTGATE_SEEDS={tmp_path / 'shared' / 'seeds'}"
