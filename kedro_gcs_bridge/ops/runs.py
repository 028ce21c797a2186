"""`runs list/gc`: the run prefixes under a root, listed and deleted by age and outcome.

Under a root (`gcs_bridge_root`), every DAG run has `<root>/<dag_id>/<run>/`. Only a folder at
exactly that depth holding the runner's marker object (`_gcs_bridge_run.json` of kind
"kedro-gcs-bridge run prefix") is a run prefix: anything else under the root (a checked-out
project, stray JSON, folders that merely look like runs) is never listed nor deleted. A
group's manifest (`manifests/*.json`, each naming its `task`) says it finished; the finalize
task writes `_run.json` with the outcome. Objects that cannot be read are reported and skipped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote

from kedro_gcs_bridge.errors import (
    ConfigError,
    GCSBridgeError,
    MetadataError,
    ProtocolVersionError,
    StorageUnreachableError,
)
from kedro_gcs_bridge.ops.emulator import EMULATOR_HOST_ENV
from kedro_gcs_bridge.pod.backend import Backend, open_backend
from kedro_gcs_bridge.pod.protocol import Manifest, OutcomeRecord, RunLayout, RunMarker
from kedro_gcs_bridge.values import as_root_url

logger = logging.getLogger(__name__)

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: How long the first answer of the storage may take before the root counts as unreachable.
REACH_SECONDS = 5.0
_ROOT_KEY = "--root"
_T = TypeVar("_T")


def parse_age(text: str) -> dt.timedelta:
    """`7d`, `12h`, `30m`, `90s`, `2w` as a timedelta.

    Raises:
        GCSBridgeError: Not an age.
    """
    match = _AGE.match(text)
    if match is None:
        raise ConfigError(f"'{text}' is not an age; write it like 7d, 12h, 30m or 2w.")
    return dt.timedelta(seconds=float(match[1]) * _UNITS[match[2]])


@dataclass(frozen=True)
class RunSummary:
    """One run prefix under a root."""

    dag_id: str
    run: str
    url: str
    path: str
    groups_done: tuple[str, ...]
    groups_expected: tuple[str, ...]
    outcome: str  # success, failed, incomplete
    size: int
    last_write: dt.datetime | None

    @property
    def run_id(self) -> str:
        """The Airflow run id (`run` is its percent-encoded folder name, `run_segment`)."""
        return unquote(self.run)


@dataclass
class RunScan:
    """The run prefixes found under a root, and the objects skipped because unreadable."""

    runs: list[RunSummary] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _modified(info: dict[str, Any]) -> dt.datetime | None:
    for key in ("updated", "mtime", "timeCreated", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, int | float):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return None


def within(seconds: float, what: str, work: Callable[[], _T]) -> _T:
    """Runs `work` in a daemon thread; past `seconds` the caller gets an error, not a hang
    (gcsfs retries a refused connection for ~30 s, and credentials may probe a metadata
    server first).

    Raises:
        StorageUnreachableError: No answer within `seconds` (names `what`).
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except Exception as exc:  # noqa: BLE001 - re-raised in the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="kedro-gcs-bridge-reach", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise StorageUnreachableError(f"{what} gave no answer within {seconds:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _open_root(root_url: str, reach_seconds: float) -> Backend:
    """The root's backend, once the storage has answered a listing of the root.

    Raises:
        GCSBridgeError: The root is not an absolute URL, or the storage does not answer.
    """
    url = as_root_url(_ROOT_KEY, root_url).rstrip("/")
    hint = f"check the network and credentials, or pass {_ROOT_KEY} URL (e.g. file:///path/to/runs)"
    return open_reachable(url, hint, "the root", reach_seconds)


def open_reachable(
    url: str, hint: str, what: str = "", reach_seconds: float = REACH_SECONDS
) -> Backend:
    """The URL's backend, once the storage has answered a listing of it within
    `reach_seconds` (a stopped emulator or real GCS without credentials costs seconds).

    Args:
        url: An absolute URL.
        hint: What to do when it cannot be reached (ends the one-line error).
        what: How the error names the URL (`the root`, `--from`); default the URL.
        reach_seconds: How long the storage may take to answer at all.

    Raises:
        StorageUnreachableError: No answer in time, or the listing failed (one line).
    """

    def reach() -> Backend:
        backend = open_backend(url)
        with contextlib.suppress(FileNotFoundError):  # nothing written under it yet
            backend.fs.ls(backend.root, detail=False)
        return backend

    hint += _emulator_note(url)
    try:
        return within(reach_seconds, url, reach)
    except StorageUnreachableError as exc:
        raise StorageUnreachableError(f"cannot reach {what or url}: {exc}; {hint}.") from exc
    except GCSBridgeError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        cause = f"{type(exc).__name__}: {first}"[:200]
        raise StorageUnreachableError(f"cannot list {url} ({cause}); {hint}.") from exc


def _emulator_note(url: str) -> str:
    """Where gs:// goes when `STORAGE_EMULATOR_HOST` is set: that emulator, not GCS."""
    host = os.environ.get(EMULATOR_HOST_ENV)
    if not host or not url.startswith(("gs://", "gcs://")):
        return ""
    return f" ({EMULATOR_HOST_ENV} sends gs:// to {host}: is that emulator running?)"


def _folders(fs: Any, path: str) -> list[str]:
    try:
        entries = fs.ls(path, detail=True)
    except FileNotFoundError:
        return []
    return sorted(e["name"].rstrip("/") for e in entries if e["type"] == "directory")


_Model = TypeVar("_Model", Manifest, OutcomeRecord, RunMarker)


def _read(backend: Backend, path: str, model: type[_Model], problems: list[str]) -> _Model | None:
    """An object of the run prefix as its model, or None (reported in `problems` when it
    exists but cannot be read: damaged, not JSON, or of a newer major protocol version)."""
    try:
        data = backend.read_json(path)
    except OSError as exc:
        problems.append(f"skipped {path}: cannot be read ({exc})")
        return None
    if data is None:
        return None
    try:
        return model.from_bytes(data, path)
    except (MetadataError, ProtocolVersionError) as exc:
        problems.append(f"skipped {path}: {exc}")
        return None


def _is_marked(backend: Backend, path: str, problems: list[str]) -> bool:
    return _read(backend, RunLayout(path).marker, RunMarker, problems) is not None


def _manifest_tasks(
    backend: Backend, files: dict[str, dict[str, Any]], path: str, problems: list[str]
) -> tuple[set[str], tuple[str, ...]]:
    """(tasks with a manifest, the DAG's tasks as a manifest records them)."""
    done: set[str] = set()
    expected: tuple[str, ...] = ()
    folder = f"{RunLayout(path).manifests_dir}/"
    for name in sorted(files):
        relative = name[len(folder) :] if name.startswith(folder) else ""
        if not relative.endswith(".json") or "/" in relative:
            continue
        manifest = _read(backend, name, Manifest, problems)
        if manifest is None:
            continue
        done.add(manifest.task)
        if not expected and manifest.dag_tasks:
            expected = manifest.dag_tasks
    return done, expected


def _outcome(
    backend: Backend, path: str, done: set[str], expected: tuple[str, ...], problems: list[str]
) -> tuple[str, tuple[str, ...]]:
    record = _read(backend, RunLayout(path).outcome, OutcomeRecord, problems)
    if record is not None:
        return record.outcome, record.tasks or expected
    if expected and set(expected) <= done:
        return "success", expected
    return "incomplete", expected


def _summarise(backend: Backend, root: str, path: str, problems: list[str]) -> RunSummary:
    backend.fs.invalidate_cache(path)
    files = backend.fs.find(path, detail=True)
    done, expected = _manifest_tasks(backend, files, path, problems)
    outcome, expected = _outcome(backend, path, done, expected, problems)
    times = [t for info in files.values() if (t := _modified(info)) is not None]
    dag_id, run = path[len(root) + 1 :].split("/", 1)
    url = f"file://{path}" if backend.protocol in {"file", "local"} else backend.url_of(path)
    return RunSummary(
        dag_id=dag_id,
        run=run,
        url=url,
        path=path,
        groups_done=tuple(sorted(done)),
        groups_expected=expected,
        outcome=outcome,
        size=int(sum(info.get("size") or 0 for info in files.values())),
        last_write=max(times) if times else None,
    )


def scan_runs(root_url: str, reach_seconds: float = REACH_SECONDS) -> RunScan:
    """Every marked run prefix under a root, newest write first, and what was skipped.

    Args:
        root_url: An absolute URL: `gs://bucket[/path]`, `file:///absolute/path`.
        reach_seconds: How long the storage may take to answer at all.

    Raises:
        GCSBridgeError: The root is not an absolute URL, or it cannot be reached in time.
    """
    backend = _open_root(root_url, reach_seconds)
    backend.fs.invalidate_cache()
    scan = RunScan()
    for dag in _folders(backend.fs, backend.root):
        for run in _folders(backend.fs, dag):
            if _is_marked(backend, run, scan.problems):
                scan.runs.append(_summarise(backend, backend.root, run, scan.problems))
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
    scan.runs.sort(key=lambda run: run.last_write or oldest, reverse=True)
    return scan


def list_runs(root_url: str) -> list[RunSummary]:
    """Every marked run prefix under a root, newest write first (skipped objects are logged)."""
    scan = scan_runs(root_url)
    for problem in scan.problems:
        logger.warning(problem)
    return scan.runs


def select_for_gc(
    runs: Iterable[RunSummary], older_than: dt.timedelta, keep_failed: bool, now: dt.datetime
) -> list[RunSummary]:
    """The runs `runs gc` deletes: last written before `now - older_than`, failed ones kept
    on request."""
    cutoff = now - older_than
    chosen = []
    for run in runs:
        if run.last_write is None or run.last_write >= cutoff:
            continue
        if keep_failed and run.outcome != "success":
            continue
        chosen.append(run)
    return chosen


def delete_runs(root_url: str, runs: Iterable[RunSummary]) -> int:
    """Deletes whole run prefixes under the root; returns the bytes freed.

    Raises:
        GCSBridgeError: The root is not an absolute URL, or a path is not exactly
            `<root>/<dag_id>/<run>` holding a run marker (never deletes elsewhere).
    """
    backend = _open_root(root_url, REACH_SECONDS)
    root = backend.root
    freed = 0
    for run in runs:
        relative = run.path[len(root) + 1 :] if run.path.startswith(root + "/") else ""
        parts = relative.split("/")
        if (
            len(parts) != 2
            or not all(parts)
            or any(p in {".", ".."} for p in parts)
            or not _is_marked(backend, run.path, [])
        ):
            raise GCSBridgeError(
                f"refusing to delete {run.path}: not a marked run prefix "
                f"<root>/<dag_id>/<run> under {root}"
            )
        backend.fs.rm(run.path, recursive=True)
        freed += run.size
    return freed
