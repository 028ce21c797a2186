"""The finalize task: how a DAG run ended (the verdict, the MLflow parent's status, cleanup).

Runs in the DAG's last pod, after every group, whatever their outcome. The verdict follows
the task states Airflow recorded for this DAG run (`KEDRO_GCS_BRIDGE_TASK_STATES`, rendered on
the worker from `ti.get_task_states(...)` right before the pod starts): a task marked success
by hand counts as success, a skipped task is not a failure. Without those states (a replay, a
run by hand) the groups' manifests decide. Finalize is idempotent, so Airflow may retry it:
the parent run's status is set only when it differs, the outcome record is overwritten.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.pod.context import TASK_STATES_ENV, TaskContext
from kedro_gcs_bridge.pod.group_run import best_effort, tracking_budget
from kedro_gcs_bridge.pod.protocol import OUTCOME_OBJECT, OutcomeRecord, now
from kedro_gcs_bridge.pod.store import HandoffStore

__all__ = ["OUTCOME_OBJECT", "RunOutcome", "finish_run", "task_states", "verdict"]

logger = logging.getLogger(__name__)
#: Airflow task states that count as done: `skipped` is a choice the DAG made, not a failure.
DONE_STATES = frozenset({"success", "skipped"})


@dataclass(frozen=True)
class RunOutcome:
    """How a DAG run ended."""

    succeeded: tuple[str, ...]
    incomplete: tuple[str, ...]
    mlflow_status: str | None
    deleted_bytes: int | None
    judged_by: str = "manifests"

    @property
    def ok(self) -> bool:
        """Every group task ended well."""
        return not self.incomplete


def prefix_size(fs: Any, path: str) -> int:
    """Bytes stored under a path."""
    fs.invalidate_cache()
    try:
        return int(sum(fs.du(path, total=False).values()))
    except FileNotFoundError:
        return 0


def task_states(text: str | None, run_id: str | None = None) -> dict[str, str] | None:
    """Task id -> state, from `ti.get_task_states(...)` as JSON (`{run_id: {task: state}}`).

    Returns:
        None when no states were rendered (not run by Airflow).

    Raises:
        ConfigError: The text is not such a JSON object.
    """
    if not text or not text.strip():
        return None
    try:
        by_run = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{TASK_STATES_ENV} is not JSON ({exc}): {text[:200]!r}") from exc
    if not isinstance(by_run, Mapping) or not all(isinstance(v, Mapping) for v in by_run.values()):
        raise ConfigError(f"{TASK_STATES_ENV} must map run ids to {{task: state}}: {text[:200]!r}")
    runs = [by_run[run_id]] if run_id in by_run else list(by_run.values())
    return {str(task): str(state) for states in runs for task, state in states.items()}


def verdict(
    expected: list[str], states: Mapping[str, str] | None, manifests: set[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(tasks that ended well, tasks that did not): by Airflow's states, else by manifests."""
    if states is not None:
        good = {task for task in expected if states.get(task) in DONE_STATES}
    else:
        good = {task for task in expected if task in manifests}
    return (
        tuple(task for task in expected if task in good),
        tuple(task for task in expected if task not in good),
    )


def _finish_parent(store: HandoffStore, succeeded: bool, context: TaskContext) -> str | None:
    """Sets the MLflow parent's status; a failure raises only with `mlflow.required: true`."""
    uri = context.tracking_uri
    if not uri:
        return None
    from kedro_gcs_bridge.tracking.tracker import Tracker

    budget = tracking_budget(context)
    return best_effort(
        uri,
        lambda: Tracker(uri, store, context.experiment, budget).finish_parent(succeeded),
        "while finalize set the parent run's status (Airflow retries finalize)",
        "the parent run's status is not set. The DAG run's outcome is not affected",
        context,
    )


def _record_or_clean(
    store: HandoffStore, cleanup: str, expected: list[str], incomplete: tuple[str, ...]
) -> int | None:
    """Deletes the run prefix (returns its bytes) or writes the outcome record."""
    if cleanup == "always" or (cleanup == "on_success" and not incomplete):
        deleted = prefix_size(store.fs, store.root)
        if store.fs.exists(store.root):
            store.fs.rm(store.root, recursive=True)
        return deleted
    outcome = OutcomeRecord(
        "success" if not incomplete else "failed", tuple(expected), incomplete, now()
    )
    store.write_json(store.layout.outcome, outcome.to_json())
    return None


def finish_run(
    prefix: str,
    tasks: list[str] | None = None,
    cleanup: str = "never",
    states: Mapping[str, str] | None = None,
    context: TaskContext | None = None,
) -> RunOutcome:
    """Ends a DAG run: the verdict, the MLflow parent run's status, the outcome or cleanup.

    Args:
        prefix: The run prefix.
        tasks: Every group task of the DAG; default `$KEDRO_GCS_BRIDGE_TASKS`.
        cleanup: `never`, `on_success` or `always`: when the run prefix is deleted. The MLflow
            run is never touched by cleanup.
        states: Task id -> Airflow state; default `$KEDRO_GCS_BRIDGE_TASK_STATES`. Without
            states the groups' manifests decide.
        context: The pod's context (tasks, states, tracking); default
            `TaskContext.from_env()`.

    Raises:
        TrackingError: MLflow failed and `mlflow.required: true` (Airflow retries finalize).
        ConfigError: The task states are not valid JSON.
    """
    context = context or TaskContext.from_env()
    store = HandoffStore(prefix, task="finalize")
    expected = tasks if tasks is not None else list(context.tasks)
    if states is None:
        states = task_states(context.task_states, context.run_id)
    manifests = set() if states is not None else {m.task for m in store.manifests()}
    succeeded, incomplete = verdict(expected, states, manifests)
    # The parent's status first: cleanup may delete the object that names the parent run.
    status = _finish_parent(store, not incomplete, context)
    deleted = _record_or_clean(store, cleanup, expected, incomplete)
    judged_by = "airflow" if states is not None else "manifests"
    return RunOutcome(succeeded, incomplete, status, deleted, judged_by)
