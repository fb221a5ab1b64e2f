#!/usr/bin/env bash
# The layer-only tests on the oldest supported torch (setup.py: torch>=2.0), in .venv-torch2.0/.
# mmcv 2.1.0's own prebuilt wheels target torch <= 2.1, so many mmdet 3.3 users run torch 2.0 or
# 2.1. PyPI has no CPU-only build of those: torch 2.0.1 comes with its CUDA libraries (about
# 2.4 GB downloaded, 4.4 GB installed), which it only loads; the tests run on the CPU.
# Tests marked `openmmlab` (they need mmcv/mmengine/mmdet) are deselected.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-torch2.0"
TORCH=2.0.1
MARKER="$VENV/.ready-torch-$TORCH"
if [ ! -f "$MARKER" ]; then
  rm -rf "$VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
  echo "run_old_torch_layer_tests: installing torch $TORCH into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==$TORCH" 'numpy<2' pytest==8.4.2
  touch "$MARKER"
fi
cd "$ROOT"
PYTHONPATH="$ROOT" exec "$VENV/bin/python" -m pytest -p no:cacheprovider -m "not openmmlab" \
  tests/test_odconv_layer.py tests/test_conv_paths.py tests/test_official_baseline.py tests/test_layer_inputs.py "$@"
