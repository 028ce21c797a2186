"""A GCS-like network model: a loopback TCP proxy in front of the emulator for the benchmarks.

What it models, per TCP connection (what a pod's HTTP client opens to GCS):
- **latency**: each request waits `latency_s` (default 30 ms) before its first byte is passed
  on: one round trip to GCS from a GKE pod in the same region plus GCS's time to first byte.
  A request is the first client bytes after the server answered (HTTP/1.1 keep-alive: requests
  and answers alternate), so a streamed upload body pays it once.
- **throughput**: each direction of each connection is paced to `rate_bps` (default 100 MB/s),
  the per-stream rate GCS gives one HTTPS connection; parallel connections add up, as on GCS
  (which scales to many Gbit/s per bucket) and a pod's NIC (16-32 Gbit/s on Autopilot). Pacing
  restarts with each request and each answer, so a keep-alive connection reused after a pause
  saves up no credit for a burst.
Not modelled: TCP slow start, TLS handshakes (a new connection pays one latency), packet loss,
GCS's own per-request rate limits. The emulator behind the proxy still costs its own CPU (and
on a 2-core machine so does the proxy), so figures are bounded by them too: benchmarks/large.py
puts fake-gcs-server (Go, concurrent) behind it, not the single-threaded gcp-storage-emulator.

Bounded: at most `max_connections` connections and `max_seconds`; only ever connects to a
loopback target.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import urlsplit

from kedro_gcs_bridge.ops.emulator import stop

LATENCY_S = 0.030
RATE_BPS = 100 * 10**6
_CHUNK = 1 << 20


@dataclass(frozen=True)
class NetworkModel:
    """Latency per request and throughput per connection and direction."""

    latency_s: float = LATENCY_S
    rate_bps: float = RATE_BPS

    def describe(self) -> str:
        """One line for tables and JSON."""
        return (
            f"{self.latency_s * 1000:g} ms a request, {self.rate_bps / 10**6:g} MB/s per "
            "connection and direction"
        )


class _Connection:
    """One client connection and its upstream, relayed by two threads."""

    def __init__(self, client: socket.socket, upstream: socket.socket, model: NetworkModel):
        self.client, self.upstream, self.model = client, upstream, model
        self.awaiting_request = True  # the next client bytes start a request
        self.answer_due = False  # the next server bytes start an answer
        self.lock = threading.Lock()

    def relay(self, source: socket.socket, target: socket.socket, upward: bool) -> None:
        started, sent = time.monotonic(), 0
        try:
            while data := source.recv(_CHUNK):
                if upward:
                    with self.lock:
                        new_request, self.awaiting_request = self.awaiting_request, False
                        self.answer_due = self.answer_due or new_request
                    if new_request:
                        time.sleep(self.model.latency_s)
                        started, sent = time.monotonic(), 0
                else:
                    with self.lock:
                        new_answer, self.answer_due = self.answer_due, False
                        self.awaiting_request = True
                    if new_answer:  # pacing restarts with each answer: no credit from idling
                        started, sent = time.monotonic(), 0
                target.sendall(data)
                sent += len(data)
                ahead = started + sent / self.model.rate_bps - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class NetworkProxy:
    """The running proxy: its URL and how many connections it relayed."""

    def __init__(
        self, target: str, model: NetworkModel, max_connections: int, max_seconds: float
    ) -> None:
        parts = urlsplit(target)
        if parts.hostname not in {"127.0.0.1", "localhost"}:
            raise ValueError("the network model only forwards to a loopback emulator")
        self.target = (parts.hostname, parts.port or 80)
        self.model = model
        self.max_connections = max_connections
        self.deadline = time.monotonic() + max_seconds
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._stop = threading.Event()

    def serve(self) -> None:
        """Accepts connections until stopped, out of connections or out of time."""
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.connections >= self.max_connections:
                client.close()
                continue
            self.connections += 1
            upstream = socket.create_connection(self.target, timeout=60)
            upstream.settimeout(None)
            client.settimeout(None)
            connection = _Connection(client, upstream, self.model)
            for source, target, upward in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=connection.relay, args=(source, target, upward), daemon=True
                ).start()

    def stop(self) -> None:
        """Stops accepting (open connections end with their clients)."""
        self._stop.set()
        self.listener.close()


@contextmanager
def network_model(
    target: str,
    model: NetworkModel | None = None,
    max_connections: int = 2_000,
    max_seconds: float = 3_600,
) -> Iterator[str]:
    """Runs the proxy in a process of its own (its relaying does not take the benchmark's
    CPU time slices) in front of `target`; yields its URL."""
    model = model or NetworkModel()
    command = [sys.executable, __file__, target, str(model.latency_s), str(model.rate_bps)]
    command += [str(max_connections), str(max_seconds)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the network model did not start: {url!r}")
        yield url
    finally:
        stop(process)


def _main(argv: list[str]) -> None:
    target, latency, rate, connections, seconds = argv
    model = NetworkModel(float(latency), float(rate))
    proxy = NetworkProxy(target, model, int(connections), float(seconds))
    print(proxy.url, flush=True)
    proxy.serve()


if __name__ == "__main__":
    _main(sys.argv[1:])
