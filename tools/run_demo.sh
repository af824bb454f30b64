#!/usr/bin/env bash
# The README's main job: bootstrap the environment if needed, then run tools/demo.py.
#   bash tools/run_demo.sh [--task det|seg] [--model mambaout|vmamba|vim]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/bootstrap.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" tools/demo.py "$@"
