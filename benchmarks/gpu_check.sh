#!/usr/bin/env bash
# The prepared GPU check (benchmarks/gpu_check.py): numerics on CUDA, the layer benchmark at detection
# shapes, an AMP ResNet-50 train step, and the shared matmul against the official computation at
# the workloads of issue 33 (does CUDA take it?); needs torch with CUDA only. Results go to
# ${OUT:-work_dirs/gpu_check}/gpu_check.{json,md}. Sized for one H200 in well under 8 minutes.
#   bash benchmarks/gpu_check.sh            # on a GPU machine (e.g. the device tool: OUT is set there)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
[ -x "$ROOT/.venv/bin/python" ] && "$ROOT/.venv/bin/python" -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null \
  && PYTHON="$ROOT/.venv/bin/python"
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
# A bare GPU machine has the repository, not the installed package: it is imported from here.
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" "$ROOT/benchmarks/gpu_check.py" --device cuda --out-dir "${OUT:-$ROOT/work_dirs/gpu_check}" "$@"
