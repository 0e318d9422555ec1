#!/usr/bin/env bash
# The desktop dashboard's resources under Xvfb (docs/PERFORMANCE.md):
#   bench/gui_soak.sh idle            CPU of `tally-gui` with no traffic over 10 s (after 10 s)
#   bench/gui_soak.sh demo            CPU of `tally-gui --demo` over 10 s (after 10 s)
#   bench/gui_soak.sh rss SECONDS     RSS at 1 minute and then every 5 minutes up to SECONDS
# Needs Xvfb and a release build: cargo build --release -p tally-gui
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${TALLY_GUI:-target/release/tally-gui}
display=:$((90 + RANDOM % 9))
Xvfb "$display" -screen 0 1280x800x24 >/dev/null 2>&1 &
xvfb=$!
home=$(mktemp -d)
trap 'kill $app $xvfb 2>/dev/null || true; rm -rf "$home"' EXIT
sleep 1
if [ "${1:-idle}" = idle ]; then
    sources=(--no-udp --udp 127.0.0.1:0)
else
    sources=(--demo --no-udp)
fi
DISPLAY=$display XDG_RUNTIME_DIR=/tmp HOME=$home "$binary" "${sources[@]}" 2>/dev/null &
app=$!
ticks() { awk '{print $14 + $15}' "/proc/$app/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$app/status"; }
case "${1:-idle}" in
idle | demo)
    sleep 10
    start=$(ticks); sleep 10; end=$(ticks)
    hz=$(getconf CLK_TCK)
    echo "$1 CPU over 10 s: $(echo "scale=2; ($end - $start) * 100 / $hz / 10" | bc)% of a core"
    ;;
rss)
    total=${2:-3600}
    sleep 60
    echo "after 60 s: $(rss_kib) KiB"
    elapsed=60
    while [ "$elapsed" -lt "$total" ]; do
        sleep 300; elapsed=$((elapsed + 300))
        echo "after $elapsed s: $(rss_kib) KiB"
    done
    ;;
esac
