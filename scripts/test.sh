#!/usr/bin/env bash
# The one test command (README and CI): install what the tests need, then run them all.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r requirements-dev.txt
if ! command -v chromium >/dev/null 2>&1; then
  # The browser tests drive Debian's Chromium headless (Playwright never downloads a browser).
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null
  fi
fi
ruff check .
python -m pytest -q -p no:cacheprovider "$@"
