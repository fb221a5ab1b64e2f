#!/usr/bin/env bash
# The README's test command: set up .venv if needed, then run the whole suite; then the layer
# tests again on the oldest supported torch (tools/run_old_torch_layer_tests.sh).
# Extra arguments go to the main pytest run; ODCONV_SKIP_OLD_TORCH=1 leaves out the second run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/tools/setup_env.sh"
cd "$ROOT"
"$ROOT/.venv/bin/python" -m pytest tests "$@"
if [ "${ODCONV_SKIP_OLD_TORCH:-0}" != 1 ]; then
  "$ROOT/tools/run_old_torch_layer_tests.sh" -q
fi
