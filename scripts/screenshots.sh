#!/usr/bin/env bash
# Regenerates the console's screenshots in docs/screenshots/ (login, dashboard, new
# backtest, account and results pages at 1280x800 and 390x844) through the browser
# tests' WebDriver harness: a gateway on a free port with sample sessions and keys, Debian's headless
# Chromium. Needs `chromium` and `chromium-driver` (scripts/test.sh installs them);
# installs Debian's `fonts-inter` when it can, the face the console's stylesheet asks
# for first (without it Chromium falls back to the system's sans-serif).
#
#   scripts/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! fc-list 2>/dev/null | grep -q "Inter"; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q fonts-inter >/dev/null 2>&1 \
      || echo "screenshots.sh: fonts-inter not installed; using the system's sans-serif"
  fi
fi
export SCREENSHOT_DIR="$PWD/docs/screenshots"
mkdir -p "$SCREENSHOT_DIR"
cargo test -p gateway --test console -- --ignored --exact screenshots
ls -1 "$SCREENSHOT_DIR"/*.png
