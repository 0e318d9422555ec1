#!/usr/bin/env python3
"""What an attacker's idle connections, stalled subscribers and cardinality cost tally in
resident memory (docs/PERFORMANCE.md, issue 11).

One `tally hub` (release build) listens on UDP and TCP and publishes on ZeroMQ and WebSocket.
In turn, and each kept up while the next one runs:

1. 2,000 idle TCP connections (the cap is 1,024): a real producer must still be counted.
2. 1,500 idle WebSocket subscribers (handshake done, never reading, never answering pings).
3. 101 stalled ZeroMQ subscribers (libzmq SUB sockets nobody reads) while 200,000 events are
   published to them.
4. 10,000 accounts x 33 types over UDP: every count series the default caps allow.

After each step: tally's RSS (VmRSS, and VmHWM, the peak), and what its report says
(connections, refused, closed). Then the same cardinality again under `--max-memory 256MiB`,
and the size of one `stat --json` report at 10,000 accounts.

    cargo build --release --bin tally && target/peers/bin/python bench/hardening_rss.py
"""

import json
import resource
import socket
import subprocess
import threading
import time
from pathlib import Path

import zmq

ROOT = Path(__file__).resolve().parent.parent
TALLY = ROOT / "target/release/tally"


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Tally:
    def __init__(self, command, *args):
        self.process = subprocess.Popen([TALLY, command, "--json", "--interval", "250ms", *args],
                                        stdout=subprocess.PIPE, text=True)
        self.last = None
        threading.Thread(target=self._read, daemon=True).start()
        while self.last is None:
            time.sleep(0.05)

    def _read(self):
        for line in self.process.stdout:
            self.last = json.loads(line)
            self.size = len(line)

    def memory(self):
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return tuple(int(fields[k].split()[0]) // 1024 for k in ("VmRSS", "VmHWM"))

    def wait(self, done, seconds=60):
        deadline = time.monotonic() + seconds
        while not done(self.last):
            report = self.last
            assert time.monotonic() < deadline, (report["totals"], report["sources"], report.get("outputs"))
            time.sleep(0.1)
        return self.last

    def stop(self):
        self.process.terminate()
        self.process.wait()


def row(step, tally, detail):
    rss, peak = tally.memory()
    print(f"| {step} | {rss} | {peak} | {detail} |", flush=True)


def source(report, kind):
    return next(s for s in report["sources"] if s["kind"] == kind)


def output(report, kind):
    return next(o for o in report["outputs"] if o["kind"] == kind)


def handshake(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\n"
              "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
    return s


def send_lines(port, lines, per_datagram=20):
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for start in range(0, len(lines), per_datagram):
        sender.sendto("\n".join(lines[start:start + per_datagram]).encode(), ("127.0.0.1", port))
        if start % (10 * per_datagram) == 0:
            time.sleep(0.001)  # stay under the receive buffer (drops are counted, not wanted)


def cardinality(port):
    return [f"acct{a}.type{t}:1|c" for a in range(10_000) for t in range(33)]


def main():
    resource.setrlimit(resource.RLIMIT_NOFILE, (20_000, 20_000))
    udp, tcp, zmq_port, ws = free_port(socket.SOCK_DGRAM), free_port(), free_port(), free_port()
    hub = Tally("hub", "--no-udp", "--udp", f"127.0.0.1:{udp}", "--tcp", f"127.0.0.1:{tcp}",
                "--publish-zmq", f"tcp://127.0.0.1:{zmq_port}", "--serve-ws", f"127.0.0.1:{ws}")
    print("| step | RSS MiB | peak MiB | what tally reports |")
    print("| --- | --- | --- | --- |")
    row("started", hub, "")

    idle = [socket.create_connection(("127.0.0.1", tcp)) for _ in range(2000)]
    time.sleep(2)
    producer = socket.create_connection(("127.0.0.1", tcp))
    producer.sendall(b"real.hit:1|c\n")
    report = hub.wait(lambda r: any(a["account"] == "real" for a in r["accounts"]))
    stream = source(report, "tcp")
    row("2,000 idle TCP connections, then a producer", hub,
        f"connections {stream['connections']}, closed_idle {stream['closed_idle']}, "
        f"refused {stream['refused']}; the producer counted")

    subscribers = [handshake(ws) for _ in range(1500)]
    report = hub.wait(lambda r: output(r, "serve-ws")["connections"] >= 1024)
    time.sleep(2)
    served = output(hub.last, "serve-ws")
    row("+ 1,500 idle WebSocket subscribers", hub,
        f"connections {served['connections']}, closed_idle {served['closed_idle']}, "
        f"refused {served['refused']}")

    context = zmq.Context()
    stalled = []
    for _ in range(101):
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(f"tcp://127.0.0.1:{zmq_port}")
        stalled.append(sub)
    hub.wait(lambda r: output(r, "publish-zmq")["connections"] >= 101)
    lines = [f"stall{i % 100}.event{i % 7}:1|c" for i in range(200_000)]
    send_lines(udp, lines)
    hub.wait(lambda r: output(r, "publish-zmq")["received"] >= 190_000)
    row("+ 101 stalled ZeroMQ subscribers, 200,000 events published", hub,
        f"subscribers {output(hub.last, 'publish-zmq')['connections']}")
    time.sleep(8)
    row("... 8 s later (heartbeats unanswered)", hub,
        f"subscribers {output(hub.last, 'publish-zmq')['connections']}")

    # Sent again while the kernel dropped some (the counts grow; the series do not).
    for _ in range(5):
        send_lines(udp, cardinality(udp))
        time.sleep(3)
        if hub.last["totals"]["accounts"] >= 10_000:
            break
    report = hub.wait(lambda r: r["totals"]["accounts"] >= 10_000)
    row("+ 10,000 accounts x 33 types", hub,
        f"accounts {report['totals']['accounts']}, one report {hub.size // 1024} KiB")
    for s in idle + subscribers + [producer]:
        s.close()
    for sub in stalled:
        sub.close(linger=0)
    context.term()
    hub.stop()

    udp = free_port(socket.SOCK_DGRAM)
    budget = Tally("stat", "--no-udp", "--udp", f"127.0.0.1:{udp}", "--max-memory", "256MiB")
    for _ in range(2):
        send_lines(udp, cardinality(udp))
        time.sleep(3)
    report = budget.last
    row("`stat --max-memory 256MiB`, 10,000 accounts x 33 types", budget,
        f"accounts {report['totals']['accounts']} (the rest in (other)), "
        f"folded_events {report['totals']['folded_events']}")
    budget.stop()


if __name__ == "__main__":
    main()
