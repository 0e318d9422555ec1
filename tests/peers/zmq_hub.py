"""A classic events hub's ZeroMQ side, on libzmq (pyzmq): a PUB socket that tally subscribes to.

Driven line by line on stdin; each command answers `ok` on stdout once its messages are sent.

    json ACCOUNT N          N single-frame `pageview <json>` messages
    msgpack ACCOUNT N       N two-frame [topic, msgpack] messages (the pre-2014 hub's payload)
    typed TYPE ACCOUNT N    N single-frame messages of type TYPE
    zlib ACCOUNT N          one `status <zlib(JSON list)>` message of N gauges (metrics_talk)
    oversize BYTES          one message of BYTES bytes
    garbage N               N `pageview <not json>` messages
"""

import argparse
import json
import sys
import zlib

import msgpack
import zmq


def event(account, event_type="pageview"):
    return {"data": {"account": account, "app": "shop"}, "time": "2014-03-09T19:17:27.5Z", "type": event_type}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    parser.add_argument("--heartbeat-ms", type=int, default=1000)
    args = parser.parse_args()

    context = zmq.Context()
    socket = context.socket(zmq.PUB)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.SNDHWM, 1_000_000)
    socket.setsockopt(zmq.HEARTBEAT_IVL, args.heartbeat_ms)
    socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * args.heartbeat_ms)
    socket.bind(args.bind)
    print("ready", flush=True)

    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        command, rest = words[0], words[1:]
        if command == "json":
            account, n = rest[0], int(rest[1])
            frame = b"pageview " + json.dumps(event(account), sort_keys=True, separators=(",", ":")).encode()
            for _ in range(n):
                socket.send(frame)
        elif command == "msgpack":
            account, n = rest[0], int(rest[1])
            payload = msgpack.packb(event(account))
            for _ in range(n):
                socket.send_multipart([b"pageview", payload])
        elif command == "typed":
            event_type, account, n = rest[0], rest[1], int(rest[2])
            frame = event_type.encode() + b" " + json.dumps(event(account, event_type)).encode()
            for _ in range(n):
                socket.send(frame)
        elif command == "zlib":
            account, n = rest[0], int(rest[1])
            items = [{"name": f"{account}.cpu", "value": i, "time": 1394392647} for i in range(n)]
            socket.send(b"status " + zlib.compress(json.dumps(items).encode()))
        elif command == "oversize":
            socket.send(b"pageview " + b"x" * int(rest[0]))
        elif command == "garbage":
            for i in range(int(rest[0])):
                socket.send(b"pageview {not json %d" % i)
        else:
            print(f"unknown command {command}", file=sys.stderr, flush=True)
            sys.exit(2)
        print("ok", flush=True)
    socket.close()
    context.term()


if __name__ == "__main__":
    main()
