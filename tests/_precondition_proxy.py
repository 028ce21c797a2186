"""A loopback HTTP proxy that gives the local GCS emulator GCS's `ifGenerationMatch` semantics.

gcp-storage-emulator ignores generation preconditions, so on it every exclusive create and
every conditional replace or delete succeeds. This proxy sits in front of it (on 127.0.0.1,
forwarding only to the emulator's loopback address) and answers them as GCS does:

- It understands `ifGenerationMatch=N` (a query parameter; `N=0`: the object must not
  exist) on requests about one object it can name:
  uploads to `/upload/storage/v1/b/<bucket>/o` (media: `name` in the query; multipart: the
  name in the JSON part of the body; resumable: the initiation's query or JSON body, and
  every chunk `PUT`, whose URL repeats the initiation's query), and object requests under
  `/storage/v1/b/<bucket>/o/<object>` and `/download/storage/v1/b/<bucket>/o/<object>`
  (delete, metadata get and patch, media get).
- For such a request it asks the emulator for the object's current generation
  (`GET /storage/v1/b/<bucket>/o/<object>`) and answers `412 Precondition Failed` with GCS's
  JSON error body when it differs; otherwise it forwards the request. A delete, patch or get
  of a missing object is forwarded, and the emulator answers 404 as GCS does.
- A read of one generation (`generation=N` on a metadata or media get) of an object whose
  current generation differs is answered 404, as GCS does in a bucket without versioning
  (the emulator would serve the current bytes).
- Check and forward are atomic within the proxy: every request that changes a named object,
  or carries a precondition, holds that object's lock (one lock per bucket and name).
- Everything else passes through untouched (listings, bucket requests, batch requests,
  compose, copy and rewrite). A precondition the proxy does not enforce
  (`ifGenerationNotMatch`, `ifMetageneration*`, `ifSourceGeneration*`, or `ifGenerationMatch`
  on a request it cannot name the object of) is answered 400, never silently ignored (400,
  not 501: gcsfs retries 5xx).

Bounded like `_fault_proxy`: after `max_requests` requests or `max_seconds` it answers 503 to
everything, and a request that waits more than `lock_seconds` for its object's lock gets 503.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

from _fault_proxy import _HOP_BY_HOP, serving

__all__ = ["PreconditionProxy", "Target", "precondition_proxy", "target_of"]

#: Preconditions GCS knows that this proxy does not enforce: refused, never ignored.
_UNSUPPORTED = (
    "ifGenerationNotMatch",
    "ifMetagenerationMatch",
    "ifMetagenerationNotMatch",
    "ifSourceGenerationMatch",
    "ifSourceGenerationNotMatch",
    "ifSourceMetagenerationMatch",
    "ifSourceMetagenerationNotMatch",
)
_UPLOAD_PREFIX = "/upload/storage/v1/b/"
_OBJECT_PREFIXES = ("/storage/v1/b/", "/download/storage/v1/b/")
_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PRECONDITION_FAILED = "At least one of the pre-conditions you specified did not hold."

#: (status, headers, body) of an answer.
Answer = tuple[int, list[tuple[str, str]], bytes]


@dataclass(frozen=True)
class Target:
    """The object a request is about."""

    bucket: str
    name: str


def _upload_name(query: Mapping[str, list[str]], headers: Mapping[str, str], body: bytes) -> str:
    """The object name of an upload: the query's `name`, else the JSON in the body."""
    if "name" in query:
        return query["name"][0]
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    if "multipart/related" in content_type:
        boundary = content_type.split("boundary=", 1)[1].strip('"')
        first_part = body.split(b"--" + boundary.encode())[1]
        body = first_part.replace(b"\r\n", b"\n").split(b"\n\n", 1)[1]
    try:
        return str(json.loads(body)["name"])
    except (ValueError, KeyError, TypeError):
        return ""


def target_of(
    method: str, path: str, headers: Mapping[str, str], body: bytes
) -> tuple[Target | None, Mapping[str, list[str]]]:
    """The object a request is about (None: not one the proxy can name) and its query."""
    parts = urlsplit(path)
    query = parse_qs(parts.query)
    if parts.path.startswith(_UPLOAD_PREFIX):
        bucket, _, rest = parts.path[len(_UPLOAD_PREFIX) :].partition("/")
        name = _upload_name(query, headers, body) if rest == "o" else ""
        return (Target(bucket, name) if name else None), query
    for prefix in _OBJECT_PREFIXES:
        if parts.path.startswith(prefix):
            bucket, _, rest = parts.path[len(prefix) :].partition("/")
            # gcsfs quotes `/` in names: a literal one means compose, acl, rewriteTo, ...
            if rest.startswith("o/") and "/" not in rest[2:] and len(rest) > 2:
                return Target(bucket, unquote(rest[2:])), query
    return None, query


class PreconditionProxy:
    """The running proxy: its URL and what it answered (`counts`: "forwarded", "412", ...)."""

    def __init__(
        self, target: str, max_requests: int, max_seconds: float, lock_seconds: float = 60
    ) -> None:
        parts = urlsplit(target)
        if parts.hostname not in {"127.0.0.1", "localhost"}:
            raise ValueError("the precondition proxy only forwards to a loopback emulator")
        self.target = (parts.hostname, parts.port or 80)
        self.max_requests = max_requests
        self.deadline = time.monotonic() + max_seconds
        self.lock_seconds = lock_seconds
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._object_locks: dict[Target, threading.Lock] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _count(self, what: str) -> bool:
        """Counts an answer; False once the proxy is past its bounds."""
        with self._lock:
            within = sum(self.counts.values()) < self.max_requests
            within = within and time.monotonic() <= self.deadline
            self.counts[what if within else "503"] += 1
        return within

    def _object_lock(self, target: Target) -> threading.Lock:
        with self._lock:
            return self._object_locks.setdefault(target, threading.Lock())

    def _send(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = http.client.HTTPConnection(*self.target, timeout=60)
        try:
            upstream.request(method, path, body=body, headers=dict(headers))
            answer = upstream.getresponse()
            return answer.status, answer.getheaders(), answer.read()
        finally:
            upstream.close()

    def generation(self, target: Target) -> int | None:
        """The object's current generation as the emulator reports it; None if missing."""
        path = f"/storage/v1/b/{quote(target.bucket, safe='')}/o/{quote(target.name, safe='')}"
        status, _, payload = self._send("GET", path, {"Host": "{}:{}".format(*self.target)}, None)
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"emulator answered {status} for {path}: {payload[:200]!r}")
        return int(json.loads(payload)["generation"])

    def answer(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """What the proxy answers to one request (forwarded, or 412/400/503 of its own)."""
        target, query = target_of(method, path, headers, body)
        refused = [name for name in _UNSUPPORTED if name in query]
        if "ifGenerationMatch" in query and target is None:
            refused.append("ifGenerationMatch")
        in_batch = b"ifGeneration" in body or b"ifMetageneration" in body
        if method == "POST" and path.startswith("/batch/") and in_batch:
            refused.append("a precondition inside a batch request")
        if refused:
            return self._refuse(
                400, f"the precondition proxy does not enforce {', '.join(refused)}"
            )
        if target is not None and self._stale_read(method, target, query):
            message = f"No such object: {target.bucket}/{target.name}"
            return self._refuse(404, message, "404 generation")
        if target is None or (method not in _CHANGES and "ifGenerationMatch" not in query):
            return self._forward(method, path, headers, body, "forwarded")
        lock = self._object_lock(target)
        if not lock.acquire(timeout=self.lock_seconds):
            return self._refuse(503, f"the precondition proxy waited too long for {target}")
        try:
            return self._checked(method, path, headers, body, target, query)
        finally:
            lock.release()

    def _stale_read(self, method: str, target: Target, query: Mapping[str, list[str]]) -> bool:
        """A read of one generation that is no longer the object's (GCS: 404)."""
        if method != "GET" or "generation" not in query:
            return False
        return self.generation(target) != int(query["generation"][0])

    def _checked(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        target: Target,
        query: Mapping[str, list[str]],
    ) -> Answer:
        if "ifGenerationMatch" not in query:
            return self._forward(method, path, headers, body, "forwarded")
        expected = int(query["ifGenerationMatch"][0])
        current = self.generation(target)
        if current is None and method not in {"POST", "PUT"}:
            return self._forward(method, path, headers, body, "forwarded missing")
        if (current or 0) != expected:
            return self._refuse(412, _PRECONDITION_FAILED)
        return self._forward(method, path, headers, body, "checked")

    def _refuse(self, status: int, message: str, what: str | None = None) -> Answer:
        if not self._count(what or str(status)):
            return _error(503, "the precondition proxy is past its bounds")
        return _error(status, message)

    def _forward(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, what: str
    ) -> Answer:
        if not self._count(what):
            return _error(503, "the precondition proxy is past its bounds")
        sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
        sent["Content-Length"] = str(len(body))
        return self._send(method, path, sent, body)


def _error(status: int, message: str) -> Answer:
    """An answer of the proxy's own, with GCS's JSON error body."""
    reason = {404: "notFound", 412: "conditionNotMet", 400: "invalid", 503: "backendError"}[status]
    error = {"code": status, "message": message, "errors": [{"reason": reason, "message": message}]}
    if status == 412:
        error["errors"][0] |= {"domain": "global", "locationType": "header", "location": "If-Match"}
    return (
        status,
        [("Content-Type", "application/json; charset=UTF-8")],
        json.dumps({"error": error}).encode(),
    )


def _handler(proxy: PreconditionProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            chunks = []
            for _ in range(1_000_000):  # bounded: a chunked body of at most a million chunks
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)

        def _serve(self) -> None:
            body = self._body()
            headers = dict(self.headers.items())
            status, answer_headers, payload = proxy.answer(self.command, self.path, headers, body)
            try:
                self.send_response(status)
                for key, value in answer_headers:
                    if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client went away (a test that failed and closed its session)
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve  # noqa: N815

    return Handler


@contextmanager
def precondition_proxy(
    target: str, max_requests: int = 20_000, max_seconds: float = 600
) -> Iterator[PreconditionProxy]:
    """Runs a `PreconditionProxy` in front of the emulator at `target` for the block."""
    proxy = PreconditionProxy(target, max_requests, max_seconds)
    with serving(proxy.server):
        yield proxy
