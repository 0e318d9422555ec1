"""An SSE firehose that tally did not write (Python's http.server), over TLS with `--tls`.

    sse_hub.py --port PORT [--tls CERT KEY]

Driven line by line on stdin; each command answers `ok` on stdout:

    wait-clients N          once N clients are reading the stream
    json ACCOUNT N          N events, `id:` and `data: <classic hub JSON>`, to every client
"""

import argparse
import json
import queue
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

clients = []
clients_lock = threading.Lock()
next_id = 1


def event(account):
    return {"data": {"account": account, "app": "shop"}, "time": "2014-03-09T19:17:27.5Z", "type": "pageview"}


class Firehose(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        mine = queue.Queue()
        with clients_lock:
            clients.append(mine)
        try:
            while True:
                try:
                    chunk = mine.get(timeout=1)
                except queue.Empty:
                    chunk = b": heartbeat\n\n"
                self.wfile.write(chunk)
                self.wfile.flush()
        except OSError:
            pass
        finally:
            with clients_lock:
                clients.remove(mine)

    def log_message(self, *args):
        pass


def main():
    global next_id
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Firehose)
    server.daemon_threads = True
    if args.tls:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(*args.tls)
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[0] == "wait-clients":
            while True:
                with clients_lock:
                    if len(clients) >= int(command[1]):
                        break
                threading.Event().wait(0.05)
        elif command[0] == "json":
            account, count = command[1], int(command[2])
            chunk = b""
            for _ in range(count):
                chunk += f"id: {next_id}\ndata: {json.dumps(event(account))}\n\n".encode()
                next_id += 1
            with clients_lock:
                for client in clients:
                    client.put(chunk)
        print("ok", flush=True)


if __name__ == "__main__":
    main()
