"""The MLflow child run of one group pod: opened before its nodes run, filled in after.

While the nodes run, `MLFLOW_RUN_ID` names the child run, so a node's own
`mlflow.log_metric(...)` lands in its group's child run (MLflow resumes the run it names); the
bridge itself never imports mlflow for an http(s) server (`tracking/client.py`). The values of
the group's metrics datasets (`mlflow_metrics` in airflow.yml) are logged on it too.

Tracking is best effort: a tracking server that cannot be reached or fails costs the pod one
warning naming the URI, and all of the pod's tracking calls together take at most the tracking
budget (`mlflow.budget_seconds`, `KEDRO_GCS_BRIDGE_MLFLOW_BUDGET`, whatever MLflow's own retry
variables say); once it is spent tracking is off for the rest of the pod. The data, the
manifest and the task's outcome do not depend on it. With `mlflow.required: true` the pod
stops before its nodes run instead (`TrackingError`). Once the nodes ran, recording is best
effort whatever the setting: the manifest is already committed, and a node's own error is
never hidden behind a tracking error.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from kedro.framework.hooks import hook_impl

from kedro_gcs_bridge.errors import TrackingError
from kedro_gcs_bridge.planning.grouping import base_name
from kedro_gcs_bridge.pod.context import TaskContext
from kedro_gcs_bridge.tracking.budget import DEFAULT_BUDGET_SECONDS, Budget
from kedro_gcs_bridge.tracking.library import brief
from kedro_gcs_bridge.tracking.tracker import RunIdentity, Tracker, metric_values

if TYPE_CHECKING:
    from kedro_gcs_bridge.pod.store import HandoffStore

logger = logging.getLogger(__name__)

UNAVAILABLE = "MLflow tracking unavailable"
#: MLflow's variable naming the run its fluent API (`mlflow.log_metric`) resumes.
RUN_ID_VAR = "MLFLOW_RUN_ID"
T = TypeVar("T")


def tracking_budget(context: TaskContext) -> Budget:
    """The pod's tracking budget: `mlflow.budget_seconds` as it reached the pod, else 30 s."""
    return Budget(context.mlflow_budget or DEFAULT_BUDGET_SECONDS)


def best_effort(
    uri: str,
    action: Callable[[], T],
    required: str,
    unavailable: str,
    context: TaskContext | None = None,
) -> T | None:
    """Runs an MLflow action; on failure raises with `mlflow.required: true`, else warns once.

    Args:
        uri: The tracking URI, for the messages.
        action: What to do against the server.
        required: When it failed, for the error when tracking is required.
        unavailable: What happens instead, for the warning when it is not.
        context: The pod's context (`mlflow_required`); default `TaskContext.from_env()`.

    Raises:
        TrackingError: The server failed and `mlflow.required: true`.
    """
    try:
        return action()
    except Exception as exc:  # MLflow, HTTP and database errors alike
        if (context or TaskContext.from_env()).mlflow_required:
            raise TrackingError(
                f"MLflow tracking server {uri} failed {required} ({brief(exc)}), and "
                "mlflow.required is true. Check the server, or set mlflow.required: false "
                "to run the pipeline without tracking when it is down."
            ) from exc
        logger.warning("%s at %s: %s (%s).", UNAVAILABLE, uri, unavailable, brief(exc))
        return None


def _identity(store: HandoffStore, pipeline: str, context: TaskContext) -> RunIdentity:
    from kedro.framework import project

    return RunIdentity(
        dag_id=context.dag_id or "local",
        airflow_run_id=context.run_id or store.prefix,
        pipeline=pipeline,
        env=context.kedro_env or "local",
        project=str(project.PACKAGE_NAME or ""),
        logical_date=context.logical_date or "",
    )


def _active_fluent_run() -> str | None:
    """The id of the MLflow run another plugin made active here (mlflow is then imported)."""
    if "mlflow" not in sys.modules:
        return None
    active = sys.modules["mlflow"].active_run()
    return None if active is None else str(active.info.run_id)


def _parameters(catalog: Any) -> Mapping[str, Any]:
    if "parameters" not in catalog:
        return {}
    loaded = catalog.load("parameters")
    return loaded if isinstance(loaded, Mapping) else {}


class MetricsCollector:
    """A Kedro hook that keeps the numbers of the group's metrics datasets as nodes output them."""

    def __init__(self, names: list[str]) -> None:
        self.names = set(names)
        self.values: dict[str, float] = {}

    @hook_impl
    def after_node_run(self, outputs: Mapping[str, Any]) -> None:
        for name, value in outputs.items():
            if base_name(name) in self.names:
                self.values |= metric_values(base_name(name), value)


@dataclass(eq=False)
class GroupTracking:
    """A group's parent and child runs, and the MLflow run active while its nodes run."""

    tracker: Tracker
    parent_id: str
    child_id: str
    uses_active_run: bool = True
    collector: MetricsCollector = field(default_factory=lambda: MetricsCollector([]))
    ended: bool = False
    previous_run_id: str | None = None

    @classmethod
    def start(
        cls, uri: str, store: HandoffStore, catalog: Any, pipeline: str, context: TaskContext
    ) -> GroupTracking:
        """Finds or creates the parent run, logs the parameters on it, opens the child run."""
        tracker = Tracker(uri, store, context.experiment, tracking_budget(context))
        parent_id, experiment_id = tracker.parent_run(_identity(store, pipeline, context))
        tracker.log_params_once(parent_id, _parameters(catalog))
        child_id = tracker.child_run(parent_id, experiment_id, store.task)
        logger.info("MLflow: parent run %s, child run %s (%s)", parent_id, child_id, uri)
        collector = MetricsCollector(list(context.mlflow_metrics))
        outer = _active_fluent_run()
        if outer is not None:
            # Another plugin (kedro-mlflow) opened a run for this process: it stays the active
            # run (nodes' own mlflow calls land there, as that plugin promises); the group's
            # child run is filled in through the client only.
            logger.info(
                "MLflow run %s of another plugin is active: node metrics go there; the "
                "bridge logs its figures into child run %s directly.",
                outer,
                child_id,
            )
            return cls(tracker, parent_id, child_id, uses_active_run=False, collector=collector)
        made = cls(tracker, parent_id, child_id, collector=collector)
        made.previous_run_id = os.environ.get(RUN_ID_VAR)
        os.environ[RUN_ID_VAR] = child_id  # a node's own mlflow call resumes the child run
        return made

    def record(
        self, nodes: list[str], seconds: Mapping[str, float], store: HandoffStore, failed: bool
    ) -> None:
        """Logs the group's figures and ends the child run; a tracking error is only logged."""
        try:
            self.tracker.log_group(
                self.child_id,
                nodes,
                seconds,
                bytes_in=sum(record.size for record in store.loaded.values()),
                bytes_out=sum(record.size for record in store.saved.values()),
                attempt=store.attempt,
                values=self.collector.values,
            )
        except Exception as exc:  # noqa: BLE001 - tracking never changes a task's outcome
            self._warn("could not record the group's figures", exc)
        finally:
            self._end("FAILED" if failed else "FINISHED")

    def _warn(self, what: str, exc: BaseException) -> None:
        logger.warning(
            "%s at %s: %s (%s). The task's data and outcome are not affected.",
            UNAVAILABLE,
            self.tracker.uri,
            what,
            brief(exc),
        )

    def _end(self, status: str) -> None:
        if self.ended:
            return
        self.ended = True
        if self.uses_active_run:
            self._leave_fluent_run()
        try:
            self.tracker.end_run(self.child_id, status)
        except Exception as exc:  # noqa: BLE001 - tracking never changes a task's outcome
            logger.debug("MLflow: could not end child run %s: %s", self.child_id, exc)

    def _leave_fluent_run(self) -> None:
        """Restores `MLFLOW_RUN_ID`, and takes the child run off MLflow's run stack if a
        node's own mlflow call put it there: its status is set through the budgeted client
        above, never by `mlflow.end_run` (MLflow's retries) or MLflow's exit handler."""
        if self.previous_run_id is None:
            os.environ.pop(RUN_ID_VAR, None)
        else:
            os.environ[RUN_ID_VAR] = self.previous_run_id
        if "mlflow" not in sys.modules:
            return
        try:
            from mlflow.tracking import fluent

            stack = fluent._active_run_stack.get()
            if stack and stack[-1].info.run_id == self.child_id:
                stack.pop()
        except Exception as exc:  # noqa: BLE001 - an MLflow without that stack
            logger.debug("MLflow: could not leave child run %s: %s", self.child_id, exc)

    def end(self) -> None:
        """Ends the child run if `record` did not (an error before it)."""
        self._end("FAILED")


def start_group_tracking(
    uri: str,
    store: HandoffStore,
    catalog: Any,
    pipeline: str,
    context: TaskContext | None = None,
) -> GroupTracking | None:
    """Opens the group's child run; None (after one warning) when tracking is unavailable.

    Raises:
        TrackingError: The server failed and `mlflow.required: true`.
        ConfigError: The tracking budget is not a number of seconds above 0.
    """
    context = context or TaskContext.from_env()
    return best_effort(
        uri,
        lambda: GroupTracking.start(uri, store, catalog, pipeline, context),
        "before the group's nodes ran",
        f"task {store.task} runs without tracking. The data and the task's outcome are not "
        "affected; set mlflow.required: true to fail instead",
        context,
    )
