"""An application instrumented with Datadog's own client (`datadog.DogStatsd`), sending to tally.

Driven line by line on stdin; each command answers `ok` on stdout once it is sent.

    deploy TITLE            a DogStatsD event: TITLE, a two-line text, alert type success, tags
    check NAME STATUS       a service check (0 ok, 1 warning, 2 critical, 3 unknown), a message
    count NAME N            a counter of N
"""

import argparse
import sys

from datadog.dogstatsd import DogStatsd


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    # One datagram per call: nothing waits in the client's buffer for a flush.
    statsd = DogStatsd(host="127.0.0.1", port=args.port, disable_buffering=True, disable_telemetry=True)
    print("ready", flush=True)
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "deploy":
            statsd.event(
                " ".join(rest),
                "shop v2.1 rolled out\nby the CI",
                alert_type="success",
                priority="normal",
                aggregation_key="deploys",
                source_type_name="ci",
                hostname="web-1",
                tags=["env:prod", "team:shop"],
            )
        elif command == "check":
            name, status = rest
            statsd.service_check(name, int(status), tags=["env:prod"], hostname="db-1", message="replica lag 30s")
        elif command == "count":
            name, n = rest
            statsd.increment(name, int(n))
        else:
            raise SystemExit(f"unknown command: {line!r}")
        print("ok", flush=True)


if __name__ == "__main__":
    main()
