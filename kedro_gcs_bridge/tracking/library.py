"""What the mlflow library needs before a process uses it: MLflow's HTTP retries bounded, and a
local store (`sqlite:`, `file:`) opened once under an exclusive lock beside its file, so
processes starting together never migrate its schema twice."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

from kedro_gcs_bridge.errors import TrackingError

logger = logging.getLogger(__name__)

#: MLflow's HTTP client settings for this process (defaults: 7 retries, backoff 2, 120 s
#: timeout: minutes per call against a dead server). With these a call to an unreachable
#: server fails within ~8 s (two tries of 4 s; urllib3 sleeps only before a second retry).
#: Values the user set win.
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "4",
}
#: How long a process waits for another one to create a local store's schema.
_LOCK_WAIT_SECONDS = 120.0


class _QuietMlflowRetries(logging.Filter):
    """Drops urllib3's per-retry warnings for MLflow calls: one warning says tracking failed."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Retrying") and "/api/2.0/mlflow" in message)


_RETRY_FILTER = _QuietMlflowRetries()


def bound_http_requests(environ: dict[str, str] | None = None) -> None:
    """Sets MLflow's HTTP retry and timeout settings for this process unless already set."""
    target = os.environ if environ is None else environ
    for name, value in HTTP_LIMITS.items():
        target.setdefault(name, value)
    logging.getLogger("urllib3.connectionpool").addFilter(_RETRY_FILTER)


def brief(exc: BaseException) -> str:
    """An exception in one short line, for a warning."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:240]}{'...' if len(text) > 240 else ''}"


def local_store_path(uri: str) -> Path | None:
    """The file or folder of a local tracking store (`sqlite:///x.db`, `file:///mlruns`)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "sqlite":
        rest = uri.split(":///", 1)[1] if ":///" in uri else ""
        return Path(unquote(rest)) if rest and rest != ":memory:" else None
    if scheme == "file":
        return Path(unquote(parts.path))
    return None


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + _LOCK_WAIT_SECONDS
    with lock_path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() > deadline:
                    raise TrackingError(
                        f"{lock_path} stayed locked for {_LOCK_WAIT_SECONDS:.0f} s: another "
                        "process is creating the tracking store; remove the lock if none is."
                    ) from exc
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_local_store(uri: str) -> None:
    """Creates a local store's schema once, under a lock beside it; other URIs: nothing.

    MLflow migrates a new SQLite store when a process first opens it; two processes doing that
    at once corrupt it. Holding `<file>.lock` while opening makes the later ones find it made.
    MLflow keeps the opened store for the process, so this costs one open per process.
    """
    path = local_store_path(uri)
    if path is None:
        return
    from mlflow import MlflowClient

    with _exclusive(path.with_name(path.name + ".lock")):
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
