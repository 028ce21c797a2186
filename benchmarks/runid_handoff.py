"""Small handoffs (an MLflow run id, a manifest) through the run prefix: HTTP requests and time.

What a group pod does against GCS besides its data: the producer saves a small JSON value
(`{"run_id": ...}`) and writes its manifest; another group lists the manifests, reads the
value's record and loads the value. Each operation is timed against gcp-storage-emulator (in
memory, on 127.0.0.1), median of `--repeats`, each repeat with a new run prefix; each group
starts with no gcsfs instance (as a new pod would: its first request opens the connection)
and then keeps its connection and listing cache, as within one pod. HTTP requests are
counted in a separate pass through a small counting proxy on 127.0.0.1 in front of the
emulator, so the timings carry no proxy cost. The per-pod fixed operations of `GCSRunner`
(`check_reachable`, `start_attempt`) are listed too.

On real GCS each request is a round trip of typically 20-60 ms from GKE in the same region
(more for writes), so the number of sequential round trips, not the emulator's milliseconds,
predicts the cost.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import _common as common
from _emulator import BUCKET, emulator, free_port

NAME = "runid_handoff"
#: Assumed latency of one GCS JSON-API request from a GKE pod in the bucket's region.
GCS_REQUEST_MS = (20.0, 60.0)
RUN_ID = {"run_id": "6f1c2d3e4b5a69788796a5b4c3d2e1f0", "experiment_id": "1"}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class CountingProxy:
    """A forwarding HTTP proxy on 127.0.0.1 that records every request it passes on."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[tuple[str, str, float, float]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            upstream_connection: ClassVar[threading.local] = threading.local()

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while size := int(self.rfile.readline().strip() or b"0", 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    self.rfile.readline()
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self) -> None:
                body = self._body()
                started = time.perf_counter()
                headers = {
                    key: value
                    for key, value in self.headers.items()
                    if key.lower() not in _HOP_BY_HOP | {"content-length", "host"}
                }
                connection = http.client.HTTPConnection(
                    proxy.upstream.hostname, proxy.upstream.port, timeout=60
                )
                try:
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    payload = response.read()
                finally:
                    connection.close()
                    # Recorded before the client gets its answer, so a count taken right after
                    # a call returns includes every request of that call.
                    with proxy._lock:
                        proxy.requests.append(
                            (self.command, self.path, started, time.perf_counter())
                        )
                try:
                    self.send_response(response.status, response.reason)
                    for key, value in response.getheaders():
                        if key.lower() in _HOP_BY_HOP | {"content-length"}:
                            continue
                        self.send_header(
                            key, value.replace(proxy.upstream.netloc, f"127.0.0.1:{proxy.port}")
                        )
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client went away (asyncio tasks cancelled at exit)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def take(self) -> list[tuple[str, str, float, float]]:
        """The requests recorded since the last call."""
        with self._lock:
            taken, self.requests = self.requests, []
        return taken


def round_trips(requests: list[tuple[str, str, float, float]]) -> int:
    """Sequential waves of requests: one that starts while another is open shares its wave.

    gcsfs sends some requests concurrently (`info` asks for the object and lists its
    "directory" at the same time), so on a real network they cost one round trip.
    """
    waves, open_until = 0, float("-inf")
    for _, _, started, ended in sorted(requests, key=lambda r: r[2]):
        if started >= open_until:
            waves += 1
            open_until = ended
        else:
            open_until = max(open_until, ended)
    return waves


def _describe(requests: list[tuple[str, str, float, float]]) -> str:
    """`GET object x2, POST upload` style summary of requests."""
    kinds: Counter[str] = Counter()
    for method, path, _, _ in requests:
        parsed = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(parsed.query)
        if "/upload/" in parsed.path:
            kind = "upload"
        elif query.get("alt") == ["media"] or "/download/" in parsed.path:
            kind = "media"
        elif parsed.path.rstrip("/").endswith("/o"):
            kind = "list"
        elif "/o/" in parsed.path:
            kind = "object"
        else:
            kind = "bucket"
        kinds[f"{method} {kind}"] += 1
    return ", ".join(f"{kind} x{n}" if n > 1 else kind for kind, n in sorted(kinds.items()))


def scenario() -> list[tuple[str, str, Callable[[dict[str, Any]], Any]]]:
    """(operation, who, call) in the order a producer group then a consumer group do them."""
    from kedro_gcs_bridge.pod.store import HandoffStore

    def fresh_process() -> None:
        # Each group is its own pod: no gcsfs instance, listing cache or connection carried
        # over from the other group (fsspec would otherwise share one instance in-process).
        import gcsfs

        gcsfs.GCSFileSystem.clear_instance_cache()

    def open_producer(state: dict[str, Any]) -> None:
        fresh_process()
        state["producer"] = HandoffStore(state["prefix"], task="create_run")

    def open_consumer(state: dict[str, Any]) -> None:
        fresh_process()
        state["consumer"] = HandoffStore(state["prefix"], task="train")

    def check_result(state: dict[str, Any]) -> None:
        if state["consumer"].load("mlflow_run") != RUN_ID:
            raise AssertionError("the run id did not come back")

    return [
        ("HandoffStore(...) (new gcsfs, no I/O)", "producer", open_producer),
        ("check_reachable", "producer", lambda s: s["producer"].check_reachable()),
        ("start_attempt", "producer", lambda s: s["producer"].start_attempt()),
        ("save small JSON value", "producer", lambda s: s["producer"].save("mlflow_run", RUN_ID)),
        (
            "write_manifest",
            "producer",
            lambda s: s["producer"].write_manifest(["create_run_node"], "2026-11-24T00:00:00"),
        ),
        ("HandoffStore(...) (new gcsfs, no I/O)", "consumer", open_consumer),
        ("manifests()", "consumer", lambda s: s["consumer"].manifests()),
        ("read_record", "consumer", lambda s: s["consumer"].read_record("mlflow_run")),
        ("load small JSON value", "consumer", check_result),
    ]


def run_scenario(proxy: CountingProxy | None) -> list[dict[str, Any]]:
    """Runs the scenario once; per operation its seconds and, through a proxy, its requests."""
    state: dict[str, Any] = {"prefix": f"gs://{BUCKET}/runid/{uuid.uuid4().hex[:8]}"}
    measured = []
    for operation, who, call in scenario():
        if proxy is not None:
            proxy.take()
        _, seconds = common.timed(lambda call=call: call(state))
        requests = proxy.take() if proxy is not None else []
        measured.append(
            {"operation": operation, "who": who, "seconds": seconds, "requests": requests}
        )
    return measured


def main() -> None:
    import fsspec

    args = common.parser(__doc__.splitlines()[0])
    args.add_argument("--repeats", type=int, default=None, help="default 20 (--quick: 2)")
    options = args.parse_args()
    repeats = options.repeats or (2 if options.quick else 20)
    with emulator() as url:
        run_scenario(None)  # warm-up: imports, the HTTP session
        timings = [run_scenario(None) for _ in range(repeats)]
        with CountingProxy(url) as proxy:
            os.environ["STORAGE_EMULATOR_HOST"] = proxy.url
            fsspec.filesystem("gs", token="anon").clear_instance_cache()
            counted = run_scenario(proxy)
            os.environ["STORAGE_EMULATOR_HOST"] = url
    rows = []
    for index, step in enumerate(counted):
        seconds = [run[index]["seconds"] for run in timings]
        count = len(step["requests"])
        waves = round_trips(step["requests"])
        rows.append(
            {
                "operation": step["operation"],
                "who": step["who"],
                "requests": count,
                "round_trips": waves,
                "median_ms": common.median(seconds) * 1000,
                "max_ms": max(seconds) * 1000,
                "gcs_estimate_ms": [waves * ms for ms in GCS_REQUEST_MS],
                "kinds": _describe(step["requests"]),
                "raw_requests": [(m, p) for m, p, _, _ in step["requests"]],
            }
        )
    asked = {
        "save small JSON value",
        "write_manifest",
        "manifests()",
        "read_record",
        "load small JSON value",
    }
    totals = {
        who: {
            "requests": sum(r["requests"] for r in rows if r["who"] == who),
            "round_trips": sum(r["round_trips"] for r in rows if r["who"] == who),
            "median_ms": sum(r["median_ms"] for r in rows if r["who"] == who),
        }
        for who in ("producer", "consumer")
    }
    print(
        common.table(
            f"Small handoffs against the emulator: median of {repeats}; requests counted "
            "through a proxy",
            [
                "who",
                "operation",
                "HTTP requests",
                "round trips",
                "median ms",
                "max ms",
                "on GCS ms (est.)",
                "requests",
            ],
            [
                [
                    r["who"],
                    r["operation"],
                    r["requests"],
                    r["round_trips"],
                    r["median_ms"],
                    r["max_ms"],
                    f"{r['gcs_estimate_ms'][0]:.0f}-{r['gcs_estimate_ms'][1]:.0f}",
                    r["kinds"],
                ]
                for r in rows
            ],
        )
    )
    print(
        "\n"
        + "; ".join(
            f"{who}: {t['requests']} requests in {t['round_trips']} round trips, "
            f"{t['median_ms']:.0f} ms on the emulator"
            for who, t in totals.items()
        )
        + f" (GCS estimate at {GCS_REQUEST_MS[0]:g}-{GCS_REQUEST_MS[1]:g} ms a round trip)"
    )
    common.write_result(
        NAME,
        {"repeats": repeats, "gcs_request_ms_assumed": list(GCS_REQUEST_MS)},
        {"rows": rows, "totals": totals, "asked_operations": sorted(asked)},
        [],
        [
            "Timings direct to the emulator; counts from a separate pass through a counting "
            "proxy (every HTTP request gcsfs sends, retries included).",
            "GCS estimate = round trips x an assumed 20-60 ms per request from GKE; requests "
            "that overlap in time (gcsfs info: object + listing at once) share a round trip.",
        ],
    )


if __name__ == "__main__":
    main()
