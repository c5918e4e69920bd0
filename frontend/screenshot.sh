#!/usr/bin/env bash
# Screenshot a page with headless Chromium, without letting it touch the network beyond the
# URL it is given.
#
#   frontend/screenshot.sh URL OUT.png [WIDTH] [HEIGHT]
#
# WIDTH x HEIGHT is the window (default 1280x800). The page gets 5 s of virtual time to
# fetch, decode and draw before the shot.
set -euo pipefail

url=${1:?usage: $0 URL OUT.png [WIDTH] [HEIGHT]}
out=${2:?usage: $0 URL OUT.png [WIDTH] [HEIGHT]}
width=${3:-1280}
height=${4:-800}
chromium=${CHROMIUM:-chromium}

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT

"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$profile" --window-size="$width,$height" \
  --virtual-time-budget=5000 --screenshot="$out" "$url" 2>/dev/null
echo "$out"
