#!/usr/bin/env python3
"""How long tally takes to reconnect to a hub that comes back (docs/PERFORMANCE.md).

For each transport: a real hub (tests/peers: pyzmq PUB, Python websockets) is started, tally
(`tally stat --json --interval 50ms`) connects, the hub is killed, and restarted on the same
port once tally reports it disconnected. The figure is the time from the new hub's "ready"
to tally's first report saying "connected" (50 ms resolution).

    cargo build --release --bin tally && target/peers/bin/python bench/hub_reconnect.py [ROUNDS]
"""

import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TALLY = ROOT / "target/release/tally"
PEERS = ROOT / "tests/peers"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_hub(script, args):
    hub = subprocess.Popen([sys.executable, PEERS / script, *args], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    assert hub.stdout.readline().strip() == "ready"
    return hub, time.monotonic()


def state(reports, kind):
    report = json.loads(reports.stdout.readline())
    return next(s["state"] for s in report["sources"] if s["kind"] == kind)


def wait_for(reports, kind, wanted):
    while state(reports, kind) != wanted:
        pass
    return time.monotonic()


def measure(kind, flag, url, script, args, rounds):
    tally = subprocess.Popen([TALLY, "stat", "--json", "--interval", "50ms", "--no-udp", flag, url],
                             stdout=subprocess.PIPE, text=True)
    hub, _ = start_hub(script, args)
    wait_for(tally, kind, "connected")
    times = []
    for _ in range(rounds):
        hub.kill()
        hub.wait()
        wait_for(tally, kind, "disconnected")
        hub, ready = start_hub(script, args)
        times.append(wait_for(tally, kind, "connected") - ready)
    hub.kill()
    tally.kill()
    return times


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    for kind, flag, script, make in [
        ("zmq", "--zmq", "zmq_hub.py", lambda p: (f"tcp://127.0.0.1:{p}", ["--bind", f"tcp://127.0.0.1:{p}"])),
        ("ws", "--ws", "ws_hub.py", lambda p: (f"ws://127.0.0.1:{p}/ws", ["--port", str(p)])),
    ]:
        url, args = make(free_port())
        times = measure(kind, flag, url, script, args, rounds)
        ms = sorted(t * 1000 for t in times)
        print(f"{kind:>4}: reconnect after the hub is back: median {statistics.median(ms):.0f} ms, "
              f"max {ms[-1]:.0f} ms over {rounds} restarts")


if __name__ == "__main__":
    main()
