#!/usr/bin/env bash
# Fresh machine -> install into .venv with the test and service extras -> lint (ruff), format check, type check (mypy on the
# runtime packages, as configured in pyproject.toml) -> the default test suite (slow tests deselected).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test,service]'
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest -q "$@"
