"""`runs list/gc`: the run prefixes under a root, listed and deleted by age and outcome.

Under a root (`gcs_bridge_root`), every DAG run has `<root>/<dag_id>/<run>/`. A group's
manifest says it finished; the finalize task writes `_run.json` with the outcome.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import fsspec

from kedro_gcs_bridge.errors import GCSBridgeError
from kedro_gcs_bridge.ops.finalize import OUTCOME_OBJECT
from kedro_gcs_bridge.pod.store import storage_options

logger = logging.getLogger(__name__)

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> dt.timedelta:
    """`7d`, `12h`, `30m`, `90s`, `2w` as a timedelta.

    Raises:
        GCSBridgeError: Not an age.
    """
    match = _AGE.match(text)
    if match is None:
        raise GCSBridgeError(f"'{text}' is not an age; write it like 7d, 12h, 30m or 2w.")
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


#: What a run prefix holds; a folder with none of these is not one (and is never deleted).
_RUN_CONTENT = frozenset({"manifests", "data", "_mlflow", OUTCOME_OBJECT})


def _children(fs: Any, path: str) -> list[dict[str, Any]]:
    try:
        return list(fs.ls(path, detail=True))
    except FileNotFoundError:
        return []


def _folders(fs: Any, path: str) -> list[str]:
    return sorted(
        entry["name"].rstrip("/") for entry in _children(fs, path) if entry["type"] == "directory"
    )


def _is_run_prefix(fs: Any, path: str) -> bool:
    names = {entry["name"].rstrip("/").rsplit("/", 1)[-1] for entry in _children(fs, path)}
    return bool(names & _RUN_CONTENT)


def _summarise(fs: Any, protocol: str, root: str, path: str) -> RunSummary:
    files = fs.find(path, detail=True)
    manifests = []
    outcome_record = None
    for name in files:
        if name.startswith(f"{path}/manifests/") and name.endswith(".json"):
            manifests.append(json.loads(fs.cat_file(name)))
        elif name == f"{path}/{OUTCOME_OBJECT}":
            outcome_record = json.loads(fs.cat_file(name))
    done = tuple(sorted(m["task"] for m in manifests))
    expected = tuple(next((m.get("dag_tasks") for m in manifests if m.get("dag_tasks")), ()))
    if outcome_record is not None:
        outcome = str(outcome_record["outcome"])
        expected = tuple(outcome_record.get("tasks") or expected)
    elif expected and set(expected) <= set(done):
        outcome = "success"
    else:
        outcome = "incomplete"
    times = [t for info in files.values() if (t := _modified(info)) is not None]
    dag_id, run = path[len(root) + 1 :].split("/", 1)
    return RunSummary(
        dag_id=dag_id,
        run=run,
        url=f"{protocol}://{path}" if protocol not in {"file", "local"} else f"file://{path}",
        path=path,
        groups_done=done,
        groups_expected=expected,
        outcome=outcome,
        size=int(sum(info.get("size") or 0 for info in files.values())),
        last_write=max(times) if times else None,
    )


def list_runs(root_url: str) -> list[RunSummary]:
    """Every run prefix under a root, newest write first."""
    fs, root = fsspec.core.url_to_fs(root_url.rstrip("/"), **storage_options(root_url))
    fs.invalidate_cache()
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    runs = [
        _summarise(fs, protocol, root, run)
        for dag in _folders(fs, root)
        if not _is_run_prefix(fs, dag)
        for run in _folders(fs, dag)
        if _is_run_prefix(fs, run)
    ]
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(runs, key=lambda run: run.last_write or oldest, reverse=True)


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
        GCSBridgeError: A path is not exactly `<root>/<dag_id>/<run>` (never deletes elsewhere).
    """
    fs, root = fsspec.core.url_to_fs(root_url.rstrip("/"), **storage_options(root_url))
    freed = 0
    for run in runs:
        relative = run.path[len(root) + 1 :] if run.path.startswith(root + "/") else ""
        parts = relative.split("/")
        if (
            len(parts) != 2
            or not all(parts)
            or any(p in {".", ".."} for p in parts)
            or not _is_run_prefix(fs, run.path)
        ):
            raise GCSBridgeError(f"refusing to delete {run.path}: not a run prefix under {root}")
        fs.rm(run.path, recursive=True)
        freed += run.size
    return freed
