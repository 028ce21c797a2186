"""Run prefixes as a whole: the end of a DAG run (status, cleanup)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from kedro_gcs_bridge.naming import EXPERIMENT_ENV, TASKS_ENV
from kedro_gcs_bridge.store import HandoffStore
from kedro_gcs_bridge.tracking import Tracker, tracking_uri

logger = logging.getLogger(__name__)


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


def prefix_size(store: HandoffStore) -> int:
    """Bytes stored under a run prefix."""
    store.fs.invalidate_cache()
    try:
        return int(sum(store.fs.du(store.root, total=False).values()))
    except FileNotFoundError:
        return 0


def finish_run(prefix: str, tasks: list[str] | None = None, cleanup: str = "never") -> RunOutcome:
    """Ends a DAG run: the MLflow parent run's status, then the cleanup policy.

    Args:
        prefix: The run prefix.
        tasks: Every group task of the DAG; default `$KEDRO_GCS_BRIDGE_TASKS`.
        cleanup: `never`, `on_success` or `always`: when the run prefix is deleted. The MLflow
            run is never touched by cleanup.
    """
    store = HandoffStore(prefix, task="finalize")
    expected = tasks if tasks is not None else _split(os.environ.get(TASKS_ENV, ""))
    complete = {manifest["task"] for manifest in store.manifests()}
    incomplete = tuple(task for task in expected if task not in complete)
    succeeded = tuple(task for task in expected if task in complete)
    status = None
    uri = tracking_uri()
    if uri:
        status = Tracker(uri, store, os.environ.get(EXPERIMENT_ENV)).finish_parent(not incomplete)
    deleted = None
    if cleanup == "always" or (cleanup == "on_success" and not incomplete):
        deleted = prefix_size(store)
        if store.fs.exists(store.root):
            store.fs.rm(store.root, recursive=True)
    return RunOutcome(succeeded, incomplete, status, deleted)


def _split(text: str) -> list[str]:
    return [part for part in text.split(",") if part]
