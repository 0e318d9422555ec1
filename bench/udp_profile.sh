#!/usr/bin/env bash
# Where a saturated UDP receive thread's time goes: `perf record` of tally's `udp-*` thread
# while it drains full bursts (stopped, a burst sent, continued), then its user : kernel split
# and hottest symbols. Steadier than wall-clock medians on a noisy machine, since the kernel's
# work per datagram is the same for every build. See docs/PERFORMANCE.md.
#
#   bench/udp_profile.sh [TALLY_BINARY] [LINES_PER_DATAGRAM] [statsd|json] [BURSTS]
#
# The first line printed is the thread's time a datagram in user space and in the kernel, from
# the samples (10,000 a second; perf's own interrupts inflate both a little), and their ratio.
#
# Needs perf, and the release binaries (`cargo build --release --bin tally` and
# `cargo build --release -p tally-collector --example udp_send`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tally=${1:-$root/target/release/tally}
lines=${2:-20}
format=${3:-statsd}
bursts=${4:-30}
port=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

"$tally" stat --json --interval 1s --no-udp --no-state --udp "127.0.0.1:$port" --udp-threads 1 >/dev/null 2>&1 &
receiver=$!
sleep 1
thread=$(grep -l '^udp-' /proc/$receiver/task/*/comm | head -1 | cut -d/ -f5)
perf record -F 10000 -g -t "$thread" -o "$data/perf.data" >/dev/null 2>&1 &
recording=$!
sleep 0.5
for _ in $(seq "$bursts"); do
    kill -STOP "$receiver"
    "$root/target/release/examples/udp_send" "$port" 5000 "$lines" 0 "$format" >/dev/null
    kill -CONT "$receiver"
    sleep 0.3
done
kill -INT "$recording"
wait "$recording" || true
kill "$receiver"
wait "$receiver" 2>/dev/null || true
perf script -i "$data/perf.data" -G -F ip,dso 2>/dev/null | awk -v datagrams=$((bursts * 5000)) '
    /kernel.kallsyms/ { kernel++; next } { user++ }
    END {
        ns = 1e9 / 10000 / datagrams
        printf "user %.0f ns, kernel %.0f ns a datagram; user : kernel %.3f\n", user * ns, kernel * ns, user / kernel
    }'
perf report -i "$data/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep '%' | head -3
perf report -i "$data/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null | grep '%' | head -15
