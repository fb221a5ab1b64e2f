#!/usr/bin/env bash
# The README's test command: set up .venv/ (the development stack) if needed, then run the
# whole suite there. Extra arguments go to pytest. The same suite on the users' stack (torch
# 2.0.1, numpy 1.26): tools/run_users_stack_tests.sh, which .ci/run runs after this.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/tools/setup_env.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest tests "$@"
