#!/usr/bin/env bash
# The dynamic-conv comparison (benchmarks/dynamic_convs_study.py): sets up the users' stack
# (.venv-users: mmpretrain needs torchvision, which loads with its torch 2.0.1 only), then runs the
# study there. Arguments go to dynamic_convs_study.py (--tiny for a CI-sized run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/tools/setup_env.sh" users
exec "$ROOT/.venv-users/bin/python" benchmarks/dynamic_convs_study.py "$@"
