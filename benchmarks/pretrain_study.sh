#!/usr/bin/env bash
# ODConv's two-stage recipe in miniature (benchmarks/pretrain_study.py): sets up the users' stack
# (.venv-users: mmpretrain needs torchvision, which loads with its torch 2.0.1 only), then runs the
# study there. Arguments go to pretrain_study.py (--tiny for the CI-sized run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/tools/setup_env.sh" users
exec "$ROOT/.venv-users/bin/python" benchmarks/pretrain_study.py "$@"
