#!/usr/bin/env python3
"""Idle CPU of the terminal dashboard: `tally` in a 160x48 tmux window with no traffic, CPU
time of all its threads over 10 s (from /proc/PID/task/*/schedstat), as % of one core.

    bench/tui_idle.py [--seconds 10] [--demo]

With --demo it measures the dashboard under demo traffic instead (~300 events/s).
"""

import argparse
import os
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu_ns(pid):
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--demo", action="store_true")
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "tally"], cwd=ROOT, check=True)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    binary = ROOT / "target" / "release" / "tally"
    argv = [str(binary), "--no-udp", "--udp", f"127.0.0.1:{port}"] + (["--demo"] if args.demo else [])
    session = f"tally-idle-{os.getpid()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "48", " ".join(argv)], check=True)
    try:
        time.sleep(3)  # start-up, first frames
        pid = int(subprocess.run(["pgrep", "-f", f"^{' '.join(argv)}"], capture_output=True, text=True,
                                 check=True).stdout.split()[0])
        before, start = cpu_ns(pid), time.monotonic()
        time.sleep(args.seconds)
        used, elapsed = cpu_ns(pid) - before, time.monotonic() - start
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session])
    what = "demo traffic" if args.demo else "no traffic"
    print(f"tally dashboard, {what}, {elapsed:.1f} s: {used / 1e6:.1f} ms CPU = {100 * used / 1e9 / elapsed:.2f}% of a core")


if __name__ == "__main__":
    main()
