#!/usr/bin/env bash
# The whole suite on the users' stack: torch 2.0.1, numpy 1.26, mmengine 0.10.7, mmcv 2.1.0 with
# its ops, mmdet 3.3.0 (requirements/pins-users-stack.txt), in .venv-users/. Its first run
# downloads torch 2.0.1's CUDA build (about 2.4 GB; it runs on the CPU) and installs mmcv from
# ../shared/wheels/torch-2.0.1 where present, else compiles it (about 20 min).
# Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/tools/setup_env.sh" users
cd "$ROOT"
exec "$ROOT/.venv-users/bin/python" -m pytest -p no:cacheprovider tests "$@"
