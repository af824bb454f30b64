#!/usr/bin/env bash
# Idempotent environment bootstrap for mmmamba on a CPU (or GPU) Linux machine.
#
#   bash tools/bootstrap.sh          # creates .venv, installs the pinned stack, builds mmcv ops
#
# The mmcv 2.1.0 wheel (compiled ops) is built once from the PyPI sdist and cached in
# $MMMAMBA_CACHE (default ~/.cache/mmmamba); later runs reuse it and finish in seconds.
#
# Every pip call goes through requirements/constraints.txt (as -c and as PIP_CONSTRAINT), and
# tools/check_build_env.py re-checks those pins after each install step, so no step can undo a
# pin an earlier one set. A cold start (fresh venv, empty wheel cache):
#   MMMAMBA_VENV=$(mktemp -d)/v MMMAMBA_CACHE=$(mktemp -d) bash tools/bootstrap.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMMAMBA_VENV:-$ROOT/.venv}"
CACHE="${MMMAMBA_CACHE:-$HOME/.cache/mmmamba}"
PYTHON="${PYTHON:-python3}"
STEP="start"

fail() {
  echo "[bootstrap] FAILED at step '$STEP' (exit code $1). See the output above for the cause." >&2
  exit "$1"
}
trap 'fail $?' ERR
log() { echo "[bootstrap] $*"; }

# The stamp records the exact pins; when it matches, the environment is complete.
CONSTRAINTS="$ROOT/requirements/constraints.txt"
export PIP_CONSTRAINT="$CONSTRAINTS"
PINS="$(cat "$CONSTRAINTS" "$ROOT/requirements/"{torch,runtime,tests}.txt "$ROOT/setup.py" | sha1sum | cut -c1-16)"
STAMP="$VENV/.mmmamba-bootstrap-$PINS"
if [[ -f "$STAMP" ]]; then
  log "environment up to date ($VENV)"
  exit 0
fi

STEP="create virtualenv"
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# pip SUBCOMMAND ARGS...: every install/download/wheel runs under the constraints file.
pip_c() { local sub="$1"; shift; "$PY" -m pip --disable-pip-version-check "$sub" -c "$CONSTRAINTS" "$@"; }
check_pins() { "$PY" "$ROOT/tools/check_build_env.py" --constraints "$CONSTRAINTS" "$@"; }

STEP="install build tools"
pip_c install -q --upgrade pip
pip_c install -q setuptools wheel ninja packaging
check_pins

STEP="install torch"
pip_c install -q -r "$ROOT/requirements/torch.txt"
check_pins
TORCH_VER="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')"

STEP="build or reuse mmcv 2.1.0 wheel"
WHEELS="$CACHE/wheels/torch-$TORCH_VER"
mkdir -p "$WHEELS"
if ! ls "$WHEELS"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
  STEP="check mmcv build preconditions"
  check_pins --mmcv-build
  STEP="build mmcv 2.1.0 wheel"
  log "no cached mmcv wheel for torch $TORCH_VER: building from sdist (~12-30 min on 2 cores)"
  SRC="$(mktemp -d)"
  pip_c download -q --no-deps --no-build-isolation --no-binary :all: mmcv==2.1.0 -d "$SRC"
  tar -xzf "$SRC"/mmcv-2.1.0.tar.gz -C "$SRC"
  # torch >= 2.10 headers need C++20; mmcv 2.1.0 hard-codes c++14/c++17.
  sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g; s/std:c\+\+1[47]/std:c++20/g' "$SRC/mmcv-2.1.0/setup.py"
  (cd "$SRC/mmcv-2.1.0" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" \
     pip_c wheel -q --no-build-isolation --no-deps -w "$WHEELS" .)
  rm -rf "$SRC"
fi
pip_c install -q --no-deps "$WHEELS"/mmcv-2.1.0-*.whl

STEP="install OpenMMLab stack and test tools"
pip_c install -q -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"
check_pins

STEP="install mmmamba (editable)"
pip_c install -q --no-deps --no-build-isolation -e "$ROOT"
check_pins

STEP="check imports"
"$PY" - <<'PY'
import mmcv, mmdet, mmseg, mmpretrain, mmengine, torch
from mmcv.ops import RoIAlign, nms  # compiled ops are required
import mmmamba
print(f'[bootstrap] torch {torch.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, '
      f'mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, mmpretrain {mmpretrain.__version__}')
PY
rm -f "$VENV"/.mmmamba-bootstrap-*
touch "$STAMP"
log "done: activate with 'source $VENV/bin/activate'"
