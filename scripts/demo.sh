#!/usr/bin/env bash
# Fresh machine -> install into .venv -> identify the bundled example probes against the example gallery.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
exec .venv/bin/python -m pipeline.identify examples/probes --gallery examples/gallery "$@"
