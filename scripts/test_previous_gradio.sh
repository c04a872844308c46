#!/usr/bin/env bash
# Run part of the suite on the previous Gradio minor, the oldest ui/gradio_compat supports.
#
#   bash scripts/test_previous_gradio.sh                   # the default selection below
#   bash scripts/test_previous_gradio.sh -x -q             # options only: with that selection
#   bash scripts/test_previous_gradio.sh tests/test_x.py   # naming a test file: instead of it
#
# The virtual environment (VENV, default /tmp/convenet-gradio-$GRADIO) holds only that Gradio;
# every other package comes from the environment of PYTHON (default: python, the one that runs
# the suite), through a .pth file written after the install, so pip never sees, upgrades or
# removes anything there. Gradio 6.30 and 6.31 pin the same gradio_client and requirements.
set -euo pipefail

GRADIO="${GRADIO:-6.30.0}"
PYTHON="${PYTHON:-python}"
VENV="${VENV:-/tmp/convenet-gradio-$GRADIO}"
DEFAULT_TESTS=(
  tests/test_gradio_compat.py
  tests/test_guard.py
  tests/test_per_call_cost.py
  tests/test_concurrency.py
  tests/test_mcp.py
  tests/test_app.py
  tests/test_security.py
)

cd "$(dirname "$0")/.."
site() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --no-deps "gradio==$GRADIO"
  site "$PYTHON" > "$(site "$VENV/bin/python")/zz_base_environment.pth"
fi
"$VENV/bin/python" - "$GRADIO" <<'PY'
import sys

import gradio

assert gradio.__version__ == sys.argv[1], f"{gradio.__file__} is Gradio {gradio.__version__}"
print(f"Gradio {gradio.__version__} from {gradio.__file__}")
PY
for arg in "$@"; do
  if [ -e "${arg%%::*}" ]; then exec "$VENV/bin/python" -m pytest "$@"; fi
done
exec "$VENV/bin/python" -m pytest "${DEFAULT_TESTS[@]}" "$@"
