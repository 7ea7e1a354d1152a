#!/usr/bin/env bash
# Screenshot a report.html in headless Chromium: scripts/screenshot_report.sh REPORT.html OUT.png
# Needs chromium (Debian: apt-get install -y chromium).
set -euo pipefail
if [ $# -ne 2 ]; then echo "usage: $0 REPORT.html OUT.png" >&2; exit 2; fi
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$browser" ]; then echo "error: chromium not found (apt-get install -y chromium)" >&2; exit 2; fi
report="$(realpath "$1")"
out="$(realpath -m "$2")"
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,3000 \
  --screenshot="$out" "file://$report" >/dev/null 2>&1
test -s "$out" && echo "wrote $out"
