"""A classic events hub's WebSocket side (Python `websockets`): serves /ws, one event per frame.

Like the classic hub it refuses handshakes without an `Origin` header (403); with
`--require-header 'Name: value'` it also refuses those without that header (401); with
`--tls CERT KEY` it serves wss://.
Driven line by line on stdin; each command answers `ok` on stdout once its frames are sent to
every connected client.

    wait-clients N          answer once N clients are connected
    json ACCOUNT N          N text frames, one JSON event each
    msgpack ACCOUNT N       N binary frames, one msgpack event each
    array ACCOUNT N         one text frame holding a JSON array of N events
    oversize BYTES          one text frame of BYTES bytes
    garbage N               N text frames that are not JSON
"""

import argparse
import asyncio
import http
import json
import ssl
import sys

import msgpack
from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosed


def event(account):
    return {"data": {"account": account, "app": "shop"}, "time": "2014-03-09T19:17:27.5Z", "type": "pageview"}


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--require-header")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve wss:// with this certificate")
    args = parser.parse_args()
    tls = None
    if args.tls:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(*args.tls)
    required = None
    if args.require_header:
        name, value = args.require_header.split(":", 1)
        required = (name.strip(), value.strip())

    clients = set()

    def check(connection, request):
        if request.path != "/ws":
            return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
        if "Origin" not in request.headers:
            return connection.respond(http.HTTPStatus.FORBIDDEN, "Origin required\n")
        if required and request.headers.get(required[0]) != required[1]:
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "unauthorized\n")
        return None

    async def handler(connection):
        clients.add(connection)
        try:
            async for _ in connection:
                pass  # Client messages are ignored, as on the classic hub.
        except ConnectionClosed:
            pass  # Clients that vanish (the tests kill some) are part of the job.
        finally:
            clients.discard(connection)

    loop = asyncio.get_running_loop()
    async with serve(handler, "127.0.0.1", args.port, process_request=check, max_size=None, ssl=tls):
        print("ready", flush=True)
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            words = line.split()
            if not words:
                continue
            command, rest = words[0], words[1:]
            if command == "wait-clients":
                while len(clients) < int(rest[0]):
                    await asyncio.sleep(0.02)
            elif command == "json":
                text = json.dumps(event(rest[0]))
                for _ in range(int(rest[1])):
                    broadcast(clients, text)
            elif command == "msgpack":
                payload = msgpack.packb(event(rest[0]))
                for _ in range(int(rest[1])):
                    broadcast(clients, payload)
            elif command == "array":
                broadcast(clients, json.dumps([event(rest[0])] * int(rest[1])))
            elif command == "oversize":
                broadcast(clients, "x" * int(rest[0]))
            elif command == "garbage":
                for i in range(int(rest[0])):
                    broadcast(clients, "{not json %d" % i)
            else:
                print(f"unknown command {command}", file=sys.stderr, flush=True)
                sys.exit(2)
            # Let the event loop write the frames out before answering.
            await asyncio.sleep(0.05)
            print("ok", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
