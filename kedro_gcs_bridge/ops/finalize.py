"""The finalize task: how a DAG run ended (the MLflow parent's status, `_run.json`, cleanup).

Runs in the DAG's last pod, after every group, whatever their outcome.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from kedro_gcs_bridge.pod.contract import (
    EXPERIMENT_ENV,
    TASKS_ENV,
    TRACKING_URI_ENV,
    env_list,
    env_value,
)
from kedro_gcs_bridge.pod.store import HandoffStore
from kedro_gcs_bridge.tracking.tracker import Tracker

OUTCOME_OBJECT = "_run.json"


@dataclass(frozen=True)
class RunOutcome:
    """How a DAG run ended, as its manifests tell."""

    succeeded: tuple[str, ...]
    incomplete: tuple[str, ...]
    mlflow_status: str | None
    deleted_bytes: int | None

    @property
    def ok(self) -> bool:
        """Every group wrote its manifest."""
        return not self.incomplete


def prefix_size(fs: Any, path: str) -> int:
    """Bytes stored under a path."""
    fs.invalidate_cache()
    try:
        return int(sum(fs.du(path, total=False).values()))
    except FileNotFoundError:
        return 0


def finish_run(prefix: str, tasks: list[str] | None = None, cleanup: str = "never") -> RunOutcome:
    """Ends a DAG run: the MLflow parent run's status, the outcome record, the cleanup policy.

    Args:
        prefix: The run prefix.
        tasks: Every group task of the DAG; default `$KEDRO_GCS_BRIDGE_TASKS`.
        cleanup: `never`, `on_success` or `always`: when the run prefix is deleted. The MLflow
            run is never touched by cleanup.
    """
    store = HandoffStore(prefix, task="finalize")
    expected = tasks if tasks is not None else env_list(TASKS_ENV)
    complete = {manifest["task"] for manifest in store.manifests()}
    incomplete = tuple(task for task in expected if task not in complete)
    succeeded = tuple(task for task in expected if task in complete)
    status = None
    uri = env_value(TRACKING_URI_ENV)
    if uri:
        status = Tracker(uri, store, env_value(EXPERIMENT_ENV)).finish_parent(not incomplete)
    deleted = None
    if cleanup == "always" or (cleanup == "on_success" and not incomplete):
        deleted = prefix_size(store.fs, store.root)
        if store.fs.exists(store.root):
            store.fs.rm(store.root, recursive=True)
    else:
        store.write_json(
            f"{store.root}/{OUTCOME_OBJECT}",
            {
                "outcome": "success" if not incomplete else "failed",
                "tasks": list(expected),
                "incomplete": list(incomplete),
                "finished_at": dt.datetime.now(dt.UTC).isoformat(),
            },
        )
    return RunOutcome(succeeded, incomplete, status, deleted)
