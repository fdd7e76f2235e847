#!/usr/bin/env bash
# The whole check, from a fresh clone: system programs, a venv with every extra, lint,
# types, the test suite and the benchmarks in smoke mode.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[all,test,bench]"
.venv/bin/ruff check src tests bench examples
.venv/bin/ruff format --check src tests bench examples
.venv/bin/mypy --strict src
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
