"""A minimal webhook receiver for the daemon benchmarks (not a benchmark itself).

    python bench/_receiver.py [--port P]     # prints the base URL, serves until SIGTERM

It speaks the same contract as the sandbox's webhook receiver (``kepubot.sandbox.webhook``),
which is what kepubot's webhook channel expects:

- ``POST /webhook/<name>`` with an ``Idempotency-Key`` header and a JSON body: a new key is
  accepted with 201 ``{"id": "<name>-<n>", "url": ...}``; a key seen before gets 409
  ``{"error": "duplicate", "id": ...}`` and is counted as a duplicate.

Control (never delayed):

- ``POST /_bench/reset``: forget every key and counter, remove the delay;
- ``POST /_bench/delay`` ``{"seconds": s}``: sleep ``s`` before handling each webhook request,
  like the sandbox's ``{"route": "*", "mode": "delay", "seconds": s}`` fault;
- ``GET /_bench/stats``: ``{"accepted": n, "duplicates": n}``.

Why not the sandbox: its handler writes the response headers and the body with two
``send()`` calls on an unbuffered socket that leaves Nagle's algorithm on, so on a keep-alive
connection the body waits for the client's delayed ACK, about 40 ms per request (the
benchmark prints the measured figure). Each response here is one ``send()`` and the socket
has ``TCP_NODELAY``, as a production web server would.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.keys: dict[str, dict[str, str]] = {}
        self.counts: dict[str, int] = {}
        self.accepted = 0
        self.duplicates = 0
        self.delay = 0.0


STATE = State()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "bench-receiver/1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        head = (
            f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.wfile.write(head + body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        if self.path == "/_bench/stats":
            with STATE.lock:
                self._answer(200, {"accepted": STATE.accepted, "duplicates": STATE.duplicates})
            return
        self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        raw = self._body()
        if self.path.startswith("/_bench/"):
            with STATE.lock:
                if self.path == "/_bench/reset":
                    STATE.reset()
                elif self.path == "/_bench/delay":
                    STATE.delay = float(json.loads(raw or b"{}").get("seconds", 0))
                else:
                    self._answer(404, {"error": "not found"})
                    return
            self._answer(200, {"ok": True})
            return
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if len(parts) != 2 or parts[0] != "webhook":
            self._answer(404, {"error": "not found"})
            return
        name = parts[1]
        with STATE.lock:
            delay = STATE.delay
        if delay:
            time.sleep(delay)
        key = self.headers.get("Idempotency-Key")
        if not key:
            self._answer(400, {"error": "missing Idempotency-Key header"})
            return
        try:
            json.loads(raw)
        except ValueError:
            self._answer(400, {"error": "body is not valid JSON"})
            return
        with STATE.lock:
            first = STATE.keys.get(key)
            if first is not None:
                STATE.duplicates += 1
                answer: tuple[int, Any] = (409, {"error": "duplicate", "id": first["id"]})
            else:
                n = STATE.counts.get(name, 0) + 1
                STATE.counts[name] = n
                post = {"id": f"{name}-{n}", "url": f"http://{self.headers['Host']}/{name}/{n}"}
                STATE.keys[key] = post
                STATE.accepted += 1
                answer = (201, post)
        self._answer(*answer)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    sys.stdout.close()
    server.serve_forever(poll_interval=0.5)
    server.server_close()


if __name__ == "__main__":
    main()
