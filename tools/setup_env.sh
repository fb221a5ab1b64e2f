#!/usr/bin/env bash
# Create (or verify) a project environment with a pinned stack:
#   tools/setup_env.sh          .venv/        requirements/pins.txt             (the development stack)
#   tools/setup_env.sh users    .venv-users/  requirements/pins-users-stack.txt (torch 2.0.1, numpy 1.26)
#
# Idempotent: once an install has completed, a marker holding a hash of the pins is written;
# a later run with the same pins and an intact venv returns in seconds. The marker is removed
# before any install work starts and written only at the very end, so a failed or interrupted
# set-up is never mistaken for a ready one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${1:-dev}"
# Each stack: its venv, its pins, and where a prebuilt mmcv for exactly its torch may lie
# (../shared/wheels, optional: without it mmcv is compiled).
case "$STACK" in
  dev)   VENV="$ROOT/.venv"; PINS="$ROOT/requirements/pins.txt"
         SHARED_WHEELS="$ROOT/../shared/wheels"; WHEELS_TORCH=2.13.0+cpu ;;
  users) VENV="$ROOT/.venv-users"; PINS="$ROOT/requirements/pins-users-stack.txt"
         SHARED_WHEELS="$ROOT/../shared/wheels/torch-2.0.1"; WHEELS_TORCH=2.0.1+cu117 ;;  # PyPI's build
  *) echo "setup_env: ERROR: unknown stack '$STACK' (use 'dev', the default, or 'users')" >&2; exit 2 ;;
esac
MARKER="$VENV/.odconv_mmdet_ready"
PYTHON_BIN="${PYTHON:-python3}"

fail() { echo "setup_env: ERROR: $*" >&2; exit 1; }
log() { echo "setup_env: $*"; }

stamp() {  # what the marker records: the pins, the package metadata and the steps that decide the install
  cat "$PINS" "$ROOT/setup.py" "$ROOT/tools/setup_env.sh" | sha256sum | cut -d' ' -f1
}

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$(stamp)" ] && [ -x "$VENV/bin/python" ] \
   && "$VENV/bin/python" -c "import torch, mmcv.ops, mmdet, mmengine, odconv_mmdet" 2>/dev/null; then
  log "environment ready at $VENV"
  exit 0
fi

command -v "$PYTHON_BIN" >/dev/null || fail "no '$PYTHON_BIN' found; install Python 3.11 or set PYTHON=/path/to/python"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment at $VENV"
  "$PYTHON_BIN" -m venv "$VENV" || fail "could not create a venv with $PYTHON_BIN (is the venv module installed?)"
fi
rm -f "$MARKER"
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -c "$PINS")

"${PIP[@]}" -q --upgrade pip || fail "could not upgrade pip inside $VENV"

if "$PY" -c "import torch" 2>/dev/null; then
  log "keeping the torch already in the venv: $("$PY" -c 'import torch; print(torch.__version__)')"
else
  log "installing torch (pinned in $PINS)"
  "${PIP[@]}" -q torch || fail "could not install torch"
fi
"${PIP[@]}" -q "setuptools" wheel ninja numpy || fail "could not install the build tools (setuptools, wheel, ninja) and numpy"

TORCH_VERSION="$("$PY" -c 'import torch; print(torch.__version__)')"
if ! "$PY" -c "import mmcv.ops" 2>/dev/null; then
  MMCV_FIND_LINKS=()
  # A shared prebuilt wheel matches one torch build only; with any other torch build from source.
  if [ -d "$SHARED_WHEELS" ] && [ "$TORCH_VERSION" = "$WHEELS_TORCH" ]; then
    log "using prebuilt mmcv wheels from $SHARED_WHEELS when they match"
    MMCV_FIND_LINKS=(--find-links "$SHARED_WHEELS")
  else
    log "building mmcv with its compiled ops from source (about 25 min on 2 cores; pip caches the wheel)"
  fi
  command -v "${CXX:-g++}" >/dev/null || command -v c++ >/dev/null \
    || fail "mmcv's compiled ops need a C++ compiler and none was found (install g++, e.g. apt-get install g++)"
  # mmcv reads ops/compile settings from the environment; no build isolation so it sees our torch.
  if ! MMCV_WITH_OPS=1 FORCE_CUDA="${FORCE_CUDA:-0}" MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
       "${PIP[@]}" --no-build-isolation "${MMCV_FIND_LINKS[@]}" mmcv; then
    fail "building mmcv 2.1.0 with ops failed against torch $TORCH_VERSION (see the compiler output above;
it needs g++, the Python headers (python3-dev) and a torch that mmcv 2.1.0 supports). The environment is NOT ready."
  fi
  "$PY" -c "import mmcv.ops; from mmcv.ops import nms, RoIAlign" \
    || fail "mmcv installed but its compiled ops do not import: the wheel does not match torch $TORCH_VERSION"
fi

log "installing mmengine, mmdet, pycocotools, psutil, seaborn and odconv_mmdet (editable, with test extras)"
# mmdet's own tools need what mmdet does not require: psutil (analysis_tools/benchmark.py) and
# seaborn (analysis_tools/analyze_logs.py).
"${PIP[@]}" -q mmengine mmdet pycocotools psutil seaborn || fail "could not install mmengine/mmdet/pycocotools/psutil/seaborn"
if [ "$STACK" = users ]; then  # pretraining with mmpretrain: its pins say why this stack only
  log "installing mmpretrain and torchvision"
  "${PIP[@]}" -q mmpretrain torchvision || fail "could not install mmpretrain/torchvision"
fi
log "installing openmim (mim train / test / search), without its dataset-download dependencies"
# openmim requires opendatalab, whose openxlab pins setuptools 60.2 (no PEP 660 editable
# installs) and older requests / packaging; mim's train, test and search import none of them.
"${PIP[@]}" -q --no-deps openmim model-index || fail "could not install openmim/model-index"
"${PIP[@]}" -q click colorama tabulate markdown ordered-set requests rich || fail "could not install mim's dependencies"
"${PIP[@]}" -q --no-build-isolation -e "$ROOT[tests]" || fail "could not install odconv_mmdet from $ROOT"

"$PY" -c "import torch, mmcv.ops, mmdet, mmengine, odconv_mmdet" || fail "the installed stack does not import"
stamp > "$MARKER"
log "environment ready at $VENV (torch $TORCH_VERSION, numpy $("$PY" -c 'import numpy; print(numpy.__version__)'))"
