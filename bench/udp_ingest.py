#!/usr/bin/env python3
"""UDP ingest: tally against a raw socket drain, a minimal aggregator (hash and add, no
windows) and optionally the reference StatsD server and another tally build, measured in the
same run with the same sender, as ratios. See docs/PERFORMANCE.md for results.

    bench/udp_ingest.py [--reps 15] [--burst 5000] [--statsd] [--skip-loss] [--compare NAME=PATH] [--no-pin]

Saturated receive cost: the receiver is stopped (SIGSTOP), a burst that fits its socket buffer
(`--burst` datagrams; 5,000 fit the 8 MiB buffers all of them ask for, where the kernel's
rmem_max allows 4 MiB) is sent, the receiver is continued (SIGCONT) and timed until its queue is empty: CPU time of
its receiving threads (from /proc/PID/task/*/schedstat, in ns) per datagram; for tally, the
`udp-*` threads (decode and record included; the `stat` reporter excluded). Three cases: 1
StatsD counter per datagram, 20 per datagram, and one classic JSON event per datagram (1,000
keys round-robin, the hard case). Every receiver runs at once on its own port, all of them on
the last CPU and the sender on the first (`--no-pin`: wherever the scheduler puts them), and the
repetitions interleave them, so each ratio compares measurements minutes apart at most; the
medians and the median of the per-repetition ratios are reported. Loss: a 1M-datagram blast,
then paced steps.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ns(pid, threads=None):
    """CPU time of a process's threads (those whose name starts with `threads`, if given)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if threads and not (task / "comm").read_text().startswith(threads):
                continue
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def pin(pid, cpu):
    """Moves every thread of process `pid` onto `cpu`."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), {cpu})
        except (ProcessLookupError, FileNotFoundError):
            pass


def udp_row(port):
    """(rx_queue bytes, drops) of the socket(s) bound to 127.0.0.1:port."""
    queue = drops = 0
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}":
            queue += int(fields[4].split(":")[1], 16)
            drops += int(fields[-1])
    return queue, drops


class Receiver:
    """A receiving process and the latest datagram count it reported on stdout."""

    def __init__(self, name, argv, parse, cwd=None, threads=None, burst=1500):
        # `threads`: the name prefix of the receiving threads, whose CPU is what is measured
        # (tally's `stat` reporter, which serialises a report every interval, is not).
        self.name, self.count, self.threads = name, 0, threads
        # A burst must fit the receiver's socket buffer while it is stopped.
        self.burst = burst
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=cwd)
        self.parse = parse
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            value = self.parse(line)
            if value is not None:
                self.count = value

    def stop(self):
        self.proc.kill()
        self.proc.wait()


CASES = [("1 line", 1, "statsd"), ("20 lines", 20, "statsd"), ("JSON", 1, "json")]


def send(port, count, lines, rate, fmt="statsd"):
    subprocess.run([RELEASE / "examples" / "udp_send", str(port), str(count), str(lines), str(rate), fmt],
                   check=True, stdout=subprocess.DEVNULL)


def wait_drained(receiver, port, target, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if udp_row(port)[0] == 0 and receiver.count >= target:
            return True
        time.sleep(0.005)
    return False


def saturated_cost(receiver, port, lines, fmt):
    """One repetition: ns of CPU per datagram to drain a full burst."""
    burst = receiver.burst
    before = receiver.count
    _, drops_before = udp_row(port)
    os.kill(receiver.proc.pid, signal.SIGSTOP)
    send(port, burst, lines, 0, fmt)
    start = cpu_ns(receiver.proc.pid, receiver.threads)
    os.kill(receiver.proc.pid, signal.SIGCONT)
    if udp_row(port)[1] != drops_before:
        sys.exit(f"{receiver.name}: the burst of {burst} overflowed the socket buffer")
    if not wait_drained(receiver, port, before + burst):
        sys.exit(f"{receiver.name}: burst not drained (count {receiver.count}, expected {before + burst})")
    # Let the report after the last datagram happen, then read the CPU.
    time.sleep(0.15)
    return (cpu_ns(receiver.proc.pid, receiver.threads) - start) / burst


def loss(receiver, port, count, rate):
    before, (_, drops_before) = receiver.count, udp_row(port)
    send(port, count, 1, rate)
    wait_drained(receiver, port, before + count, timeout=30)
    time.sleep(0.3)
    return receiver.count - before, udp_row(port)[1] - drops_before


def start(kind, port, burst, binary=None):
    if kind in ("drain", "minimal"):
        mode = ["aggregate"] if kind == "minimal" else []
        return Receiver(kind, [RELEASE / "examples" / "udp_drain", str(port)] + mode,
                        lambda l: int(l) if l.strip().isdigit() else None, burst=burst)
    if kind == "statsd":
        return start_statsd(port)

    def parse(line):
        report = json.loads(line)
        return next(s["received"] for s in report["sources"] if s["kind"] == "udp")
    return Receiver(kind, [binary or RELEASE / "tally", "stat", "--json", "--interval", "100ms", "--no-udp",
                           "--no-state", "--udp", f"127.0.0.1:{port}", "--udp-threads", "1"], parse, threads="udp-",
                    burst=burst)


STATSD_BACKEND = """
// Sums what every flush reports as received, and prints the running total.
let total = 0;
exports.init = function (startup, config, events) {
  events.on('flush', function (ts, metrics) {
    total += metrics.counters['statsd.metrics_received'] || 0;
    process.stdout.write(total + '\\n');
  });
  return true;
};
"""


def start_statsd(port):
    home = ROOT / "target" / "bench" / "statsd"
    if not (home / "node_modules" / "statsd").exists():
        home.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "statsd"], cwd=home, check=True,
                       stdout=subprocess.DEVNULL)
    (home / "count_backend.js").write_text(STATSD_BACKEND)
    (home / "config.js").write_text(json.dumps({
        "port": port, "address": "127.0.0.1", "flushInterval": 100, "deleteCounters": True,
        "backends": ["./count_backend"], "mgmt_port": free_port(),
    }))
    # statsd resolves backends relative to its own directory.
    (home / "node_modules" / "statsd" / "count_backend.js").write_text(STATSD_BACKEND)
    # statsd keeps the kernel's default receive buffer (about 208 KiB): small bursts only.
    return Receiver("statsd (npm)", ["node", "node_modules/statsd/stats.js", "config.js"],
                    lambda l: int(l) if l.strip().isdigit() else None, cwd=home, burst=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--burst", type=int, default=5000, help="datagrams per saturated burst")
    parser.add_argument("--statsd", action="store_true", help="also measure the npm statsd server")
    parser.add_argument("--skip-loss", action="store_true")
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=PATH",
                        help="also measure another tally binary (e.g. an earlier build)")
    parser.add_argument("--no-pin", action="store_true",
                        help="let the scheduler place the receivers (by default they share the last CPU, "
                             "and this script and the sender the first)")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    pinned = not args.no_pin and len(cpus) >= 2
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "tally", "-p", "tally-collector", "--examples"],
                   cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "tally"], cwd=ROOT, check=True)
    kinds = [("drain", None), ("minimal", None)]
    kinds += [tuple(c.split("=", 1)) for c in args.compare] + [("tally", None)]
    kinds += [("statsd", None)] if args.statsd else []
    receivers = {}
    for kind, binary in kinds:
        port = free_port()
        receivers[kind] = (start(kind, port, args.burst, binary), port)
    time.sleep(1.5)
    if pinned:
        # As the figures were taken: the receiver measured never shares a CPU with the
        # sender or with this script's polling, and never moves between CPUs mid-burst.
        os.sched_setaffinity(0, {cpus[0]})
        for receiver, _ in receivers.values():
            pin(receiver.proc.pid, cpus[-1])
    costs = {kind: {case: [] for case, _, _ in CASES} for kind, _ in kinds}
    for _ in range(args.reps):
        for case, lines, fmt in CASES:
            for kind, _ in kinds:
                if kind == "statsd" and fmt == "json":
                    continue
                receiver, port = receivers[kind]
                costs[kind][case].append(saturated_cost(receiver, port, lines, fmt))
    losses = {}
    if not args.skip_loss:
        for kind, _ in kinds:
            receiver, port = receivers[kind]
            row = {"blast": loss(receiver, port, 1_000_000, 0)}
            for rate in (20_000, 40_000, 60_000, 80_000, 120_000):
                row[f"paced_{rate}"] = loss(receiver, port, rate * 3, rate)
            losses[kind] = row
    for receiver, _ in receivers.values():
        receiver.stop()
    print(json.dumps(costs), file=sys.stderr)

    drain = costs["drain"]
    print(f"Medians of {args.reps} interleaved repetitions of {args.burst}-datagram bursts; ratio: the drain's "
          "cost over the receiver's, median of the per-repetition ratios (min-max). Receivers "
          + (f"on CPU {cpus[-1]}, the sender on CPU {cpus[0]}." if pinned else "not pinned."))
    print()
    print("| receiver | " + " | ".join(f"{case}: ns / {'metric' if lines > 1 else 'datagram'} | ratio"
                                         for case, lines, _ in CASES) + " |")
    print("| --- |" + " --- | --- |" * len(CASES))
    for kind, _ in kinds:
        cells = []
        for case, lines, _ in CASES:
            mine = costs[kind][case]
            if not mine:
                cells += ["-", "-"]
                continue
            ratios = [d / m for d, m in zip(drain[case], mine)]
            cells += [f"{statistics.median(mine) / lines:.0f}",
                      f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"]
        print(f"| {kind} | " + " | ".join(cells) + " |")
    if losses:
        print()
        print("| receiver | blast 1M: counted | kernel drops | " + " | ".join(f"{r // 1000}k/s x 3 s" for r in (20_000, 40_000, 60_000, 80_000, 120_000)) + " |")
        print("| --- | --- | --- |" + " --- |" * 5)
        for kind, r in losses.items():
            paced = " | ".join(f"{r[f'paced_{rate}'][0] / (rate * 3):.4f} ({r[f'paced_{rate}'][1]} dropped)"
                               for rate in (20_000, 40_000, 60_000, 80_000, 120_000))
            print(f"| {kind} | {r['blast'][0] / 1e6:.4f} | {r['blast'][1]} | {paced} |")


if __name__ == "__main__":
    main()
