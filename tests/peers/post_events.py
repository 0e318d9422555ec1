"""A producer posting events to tally's HTTP input with Python `requests`, one of each body.

    post_events.py URL     prints one JSON line per request: {"body", "status", "answer"}
"""

import json
import sys

import msgpack
import requests


def main():
    url = sys.argv[1]
    event = lambda account, kind: {"type": kind, "data": {"account": account, "app": "shop"}}
    bodies = [
        ("object", "application/json", json.dumps(event("acme", "signup"))),
        ("array", "application/json", json.dumps([event("acme", "order"), event("globex", "order")])),
        ("ndjson", "application/x-ndjson", "\n".join(json.dumps(event("globex", "login")) for _ in range(3)) + "\n"),
        ("msgpack", "application/msgpack", msgpack.packb(event("initech", "signup"))),
        ("statsd", "text/plain", "acme.checkout:2|c\ninitech.latency:12|ms\n"),
        ("broken", "application/json", '{"type": "signup", "data": {'),
    ]
    with requests.Session() as session:  # one keep-alive connection for them all
        for name, content_type, body in bodies:
            response = session.post(url, data=body, headers={"Content-Type": content_type}, timeout=10)
            print(json.dumps({"body": name, "status": response.status_code, "answer": response.json()}), flush=True)


if __name__ == "__main__":
    main()
