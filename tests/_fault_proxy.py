"""A fault-injecting HTTP proxy on 127.0.0.1 in front of a loopback server: the local GCS
emulator, an `mlflow server` or an Airflow API server.

It forwards requests to it and, for a seeded random fraction of them, answers 503
or 429 instead, or drops the connection without an answer. It is bounded: it stops after
`max_requests` requests or `max_seconds`, whichever comes first, and never connects anywhere
but the emulator's loopback address.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
}

#: Decides the fate of a request: "pass", "503", "429" or "drop".
Policy = Callable[[str, str], str]


def random_faults(rate: float, seed: int = 7) -> Policy:
    """A fraction `rate` of all requests fail: half 503, a quarter 429, a quarter dropped."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def decide(method: str, path: str) -> str:
        with lock:
            roll = rng.random()
        if roll >= rate:
            return "pass"
        return ("503", "503", "429", "drop")[int(roll / rate * 4) % 4]

    return decide


def failing_uploads(method: str, path: str) -> str:
    """Every upload fails with 503 (a storage outage for writes); reads pass."""
    return "503" if method in {"POST", "PUT"} and "/upload/" in path else "pass"


class FaultProxy:
    """The running proxy: its URL and what it did."""

    def __init__(self, target: str, policy: Policy, max_requests: int, max_seconds: float) -> None:
        parts = urlsplit(target)
        if parts.hostname not in {"127.0.0.1", "localhost"}:
            raise ValueError("the fault proxy only forwards to a loopback emulator")
        self.target = (parts.hostname, parts.port or 80)
        self.policy = policy
        self.max_requests = max_requests
        self.deadline = time.monotonic() + max_seconds
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._busy = 0  # requests being handled (a body received is forwarded even if the
        # client has gone since: as on GCS, where a fully sent upload completes)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _fate(self, method: str, path: str) -> str:
        with self._lock:
            total = sum(self.counts.values())
            if total >= self.max_requests or time.monotonic() > self.deadline:
                fate = "503"  # past its bounds the proxy forwards nothing more
            else:
                fate = self.policy(method, path)
            self.counts[fate] += 1
        return fate

    def drain(self, seconds: float = 30) -> None:
        """Waits (bounded) until no request is being handled."""
        deadline = time.monotonic() + seconds
        while self._busy and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._busy:
            raise TimeoutError(f"{self._busy} request(s) still in flight after {seconds} s")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self) -> None:
                with proxy._lock:
                    proxy._busy += 1
                try:
                    self._pass_on()
                finally:
                    with proxy._lock:
                        proxy._busy -= 1

            def _pass_on(self) -> None:
                body = self._body()
                fate = proxy._fate(self.command, self.path)
                if fate == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if fate in {"503", "429"}:
                    message = (
                        b'{"error": {"code": %s, "message": "injected fault"}}' % fate.encode()
                    )
                    self.send_response(int(fate))
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(message)))
                    self.end_headers()
                    self.wfile.write(message)
                    return
                upstream = http.client.HTTPConnection(*proxy.target, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                payload = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward  # noqa: N815

        return Handler


@contextmanager
def serving(server: HTTPServer) -> Iterator[None]:
    """Serves `server` in a daemon thread for the block, then shuts it down and closes it."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def fault_proxy(
    target: str, policy: Policy, max_requests: int = 20_000, max_seconds: float = 600
) -> Iterator[FaultProxy]:
    """Runs a `FaultProxy` in a thread for the duration of the block."""
    proxy = FaultProxy(target, policy, max_requests, max_seconds)
    with serving(proxy.server):
        yield proxy
