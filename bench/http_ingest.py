#!/usr/bin/env python3
"""How fast tally's HTTP input takes events, against its own HTTP stack's ceiling
(docs/PERFORMANCE.md, issue 13).

One `tally stat --http` (release build) on loopback; `wrk` (Debian's package) drives it with
keep-alive connections, in turn and interleaved, five times each:

- `GET /healthz`: axum and hyper answering a constant: the ceiling of the stack tally serves on;
- `GET /r/shop/acme/pageview?page=N`: the tracking pixel (a user agent to parse, a JSON event
  built and recorded, a GIF answered);
- `POST /events` with 20 StatsD lines: events per second.

Reported: medians of requests/s and the ratio of each to `/healthz` in the same repetition
(the machine's speed swings; the ratio does not), and that tally counted every event of every
answered request.

    cargo build --release --bin tally && target/peers/bin/python bench/http_ingest.py
"""

import json
import re
import statistics
import subprocess
import socket
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TALLY = ROOT / "target/release/tally"
REPS = 5
SECONDS = 4
CONNECTIONS = 16

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
PIXEL_LUA = f"""
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/r/shop/acme/pageview?page=" .. counter, {{["User-Agent"] = "{CHROME}"}})
end
"""
POST_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain"
local lines = {}
for i = 1, 20 do lines[#lines + 1] = "acct" .. i .. ".checkout:1|c" end
wrk.body = table.concat(lines, "\\n")
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url, script=None):
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", url]
    if script:
        command[1:1] = ["-s", script]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    requests = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    total = int(re.search(r"(\d+) requests in", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return requests, total, int(errors.group(1)) if errors else 0


def main():
    port = free_port()
    tally = subprocess.Popen(
        [TALLY, "stat", "--json", "--no-udp", "--http", f"127.0.0.1:{port}", "--interval", "1s"],
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    time.sleep(1)
    with tempfile.TemporaryDirectory() as scripts:
        pixel_lua, post_lua = Path(scripts, "pixel.lua"), Path(scripts, "post.lua")
        pixel_lua.write_text(PIXEL_LUA)
        post_lua.write_text(POST_LUA)
        rows = {"healthz": [], "pixel": [], "post": []}
        expected = 0
        for _ in range(REPS):
            health = wrk(f"{base}/healthz")
            pixel = wrk(f"{base}/", str(pixel_lua))
            post = wrk(f"{base}/events", str(post_lua))
            assert pixel[2] == 0 and post[2] == 0, (pixel, post)
            expected += pixel[1] + post[1] * 20
            rows["healthz"].append(health[0])
            rows["pixel"].append(pixel[0])
            rows["post"].append(post[0])
    time.sleep(2)
    with urllib.request.urlopen(f"{base}/api/snapshot?window=1h&top=1") as answer:
        counted = json.load(answer)["totals"]["total"]
    tally.terminate()
    tally.wait()

    print(f"{REPS} interleaved repetitions of {SECONDS} s, wrk -t1 -c{CONNECTIONS}, keep-alive")
    print("| route | requests/s (median) | events/s | vs /healthz (median of per-rep ratios) |")
    print("| --- | --- | --- | --- |")
    for name, events in [("healthz", 0), ("pixel", 1), ("post", 20)]:
        median = statistics.median(rows[name])
        ratios = [r / h for r, h in zip(rows[name], rows["healthz"])]
        print(f"| {name} | {median:,.0f} | {median * events:,.0f} | {statistics.median(ratios):.2f} |")
    # wrk counts the requests it saw answered; the few in flight when it stopped (at most one
    # per connection, each run) were counted by tally all the same.
    in_flight = CONNECTIONS * REPS * (1 + 20)
    print(f"events in answered requests {expected:,}, counted by tally {counted:,}")
    assert expected <= counted <= expected + in_flight, "every event counted"


if __name__ == "__main__":
    main()
