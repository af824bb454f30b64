#!/usr/bin/env bash
# The test command of the README: bootstrap the environment if needed, then run the suite.
#   bash tools/run_tests.sh [pytest args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/bootstrap.sh"
cd "$ROOT"
set +e
"$ROOT/.venv/bin/python" -m pytest tests "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  echo "[run_tests] pytest collected no tests: treating as a failure" >&2
  exit 1
fi
exit $rc
