"""A firehose reader on sseclient-py (or, with --raw, plain JSON lines over requests).

    sse_reader.py URL COUNT [--bearer T | --basic T | --query T | --form T] [--last-event-id N] [--raw]

Prints "ready" once connected, then one JSON line per event: {"id", "data"}; exits after
COUNT events, or with the HTTP status on stderr (exit 2) when refused. `--form` POSTs the
token as a form parameter, as the classic hub took it too.
"""

import argparse
import json
import sys

import requests
import sseclient


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("count", type=int)
    parser.add_argument("--bearer")
    parser.add_argument("--basic")
    parser.add_argument("--query")
    parser.add_argument("--form")
    parser.add_argument("--last-event-id")
    parser.add_argument("--raw", action="store_true")
    args = parser.parse_args()

    headers, params, auth = {}, {}, None
    if args.bearer:
        headers["Authorization"] = f"Bearer {args.bearer}"
    if args.basic:
        auth = ("anyone", args.basic)
    if args.query:
        params["access_token"] = args.query
    if args.last_event_id:
        headers["Last-Event-ID"] = args.last_event_id
    if args.raw:
        params["raw"] = ""
    if args.form:
        form = {"access_token": args.form}
        response = requests.post(args.url, headers=headers, params=params, data=form, stream=True, timeout=30)
    else:
        response = requests.get(args.url, headers=headers, params=params, auth=auth, stream=True, timeout=30)
    if response.status_code != 200:
        print(response.status_code, response.text.strip(), file=sys.stderr)
        sys.exit(2)
    print("ready", flush=True)
    seen = 0
    if args.raw:
        for line in response.iter_lines():
            if line.strip():
                print(json.dumps({"id": None, "data": json.loads(line)}), flush=True)
                seen += 1
                if seen == args.count:
                    return
    else:
        for event in sseclient.SSEClient(response).events():
            print(json.dumps({"id": event.id, "data": json.loads(event.data)}), flush=True)
            seen += 1
            if seen == args.count:
                return


if __name__ == "__main__":
    main()
