"""MLflow: one parent run per DAG run, a child run per group, the parent's id in the run prefix.

No start task and no XCom: the first group pod to start creates the parent run (tagged with
the dag id and Airflow run id) and records its id in `<prefix>/_mlflow/run.json`; the others
read that object. Groups that start at the same moment may both create a parent: the
exclusive create of that object decides which one stays, and the other is deleted. Every
group logs into its own child run (`parent_run_id`), reused on retries. The parent's status
is set once, by the DAG's final `finalize` task, from the groups' manifests. MLflow is
imported only when a tracking URI is configured.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)


TAG = "kedro_gcs_bridge"
PARENT_OBJECT = "_mlflow/run.json"
_METRIC_KEY = re.compile(r"[^\w\-. /]")
_PARAM_VALUE_MAX = 6000


@dataclass(frozen=True)
class RunIdentity:
    """What names a DAG run in MLflow."""

    dag_id: str
    airflow_run_id: str
    pipeline: str
    env: str
    project: str

    def tags(self) -> dict[str, str]:
        """Tags of the parent run; the first two key it."""
        return {
            f"{TAG}.dag_id": self.dag_id,
            f"{TAG}.airflow_run_id": self.airflow_run_id,
            f"{TAG}.pipeline": self.pipeline,
            f"{TAG}.env": self.env,
            f"{TAG}.project": self.project,
            f"{TAG}.role": "parent",
        }


class RunObjects(Protocol):
    """What tracking needs of a run prefix: read and exclusively create small JSON objects.

    The pod's and finalize's `HandoffStore` provide it; tracking never imports the store.
    """

    prefix: str

    def read_run_object(self, name: str) -> dict[str, Any] | None:
        """The JSON object `<prefix>/<name>`, or None when there is none."""

    def create_run_object(self, name: str, payload: Mapping[str, Any]) -> bool:
        """Creates `<prefix>/<name>` unless it exists; True if this call created it."""


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested Kedro parameters as MLflow params (`model_options.test_size`)."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat |= flatten_params(value, f"{name}.")
        else:
            flat[name] = str(value)[:_PARAM_VALUE_MAX]
    return flat


def metric_key(text: str) -> str:
    """A metric name MLflow accepts."""
    return _METRIC_KEY.sub("_", text)


class Tracker:
    """The MLflow side of one group pod (or of the finalize task)."""

    def __init__(self, uri: str, store: RunObjects, experiment: str | None = None) -> None:
        from mlflow import MlflowClient

        self.uri = uri
        self.store = store
        self.client: MlflowClient = MlflowClient(tracking_uri=uri)
        self.experiment_name = experiment or "Default"

    # --- the parent run -----------------------------------------------------------------
    def _experiment_id(self) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(self.experiment_name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(self.client.create_experiment(self.experiment_name))
        except MlflowException:  # another pod created it a moment ago
            found = self.client.get_experiment_by_name(self.experiment_name)
            if found is None:
                raise
            return str(found.experiment_id)

    def recorded_parent(self) -> dict[str, str] | None:
        """The parent run recorded under the run prefix, if a group recorded it."""
        recorded = self.store.read_run_object(PARENT_OBJECT)
        return None if recorded is None else {k: str(v) for k, v in recorded.items()}

    def _tagged_parents(self, experiment_id: str, identity: RunIdentity) -> list[Any]:
        query = (
            f"tags.`{TAG}.dag_id` = '{_quote(identity.dag_id)}' and "
            f"tags.`{TAG}.airflow_run_id` = '{_quote(identity.airflow_run_id)}' and "
            f"tags.`{TAG}.role` = 'parent'"
        )
        runs = self.client.search_runs([experiment_id], filter_string=query, max_results=50)
        return sorted(runs, key=lambda run: (run.info.start_time, run.info.run_id))

    def parent_run(self, identity: RunIdentity) -> tuple[str, str]:
        """(parent run id, experiment id) for this DAG run, created once.

        Order: the object under the run prefix (one read), else a run with this DAG run's
        tags, else a new run. The object is created exclusively: concurrent first groups all
        use the run it names, and one that created another parent deletes it.
        """
        recorded = self.recorded_parent()
        if recorded is not None:
            return recorded["run_id"], recorded["experiment_id"]
        experiment_id = self._experiment_id()
        existing = self._tagged_parents(experiment_id, identity)
        created = None
        if existing:
            candidate = existing[0].info.run_id
        else:
            candidate = created = self.client.create_run(
                experiment_id,
                tags=identity.tags(),
                run_name=f"{identity.dag_id} {identity.airflow_run_id}",
            ).info.run_id
        record = {"run_id": candidate, "experiment_id": experiment_id, "tracking_uri": self.uri}
        # The object under the run prefix is the arbiter: the first group to create it wins,
        # every other group uses what it says and deletes a parent run it made in vain.
        self.store.create_run_object(PARENT_OBJECT, record)
        winner = self.recorded_parent() or record
        if created is not None and winner["run_id"] != created:
            self.client.delete_run(created)
            logger.info("Another group created parent run %s first; using it", winner["run_id"])
        return winner["run_id"], winner["experiment_id"]

    def log_params_once(self, parent_id: str, params: Mapping[str, Any]) -> None:
        """Logs the Kedro parameters on the parent; equal values logged again are no-ops."""
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException

        flat = flatten_params(params)
        logged = self.client.get_run(parent_id).data.params
        new = [Param(key, value) for key, value in sorted(flat.items()) if key not in logged]
        for start in range(0, len(new), 100):
            try:
                self.client.log_batch(parent_id, params=new[start : start + 100])
            except MlflowException as exc:  # a concurrent group logged them
                logger.debug("Parameters already on the parent run: %s", exc)

    # --- the child run of a group -------------------------------------------------------
    def child_run(self, parent_id: str, experiment_id: str, task: str) -> str:
        """The group's child run: the one a previous attempt created, or a new one."""
        query = (
            f"tags.`mlflow.parentRunId` = '{parent_id}' and tags.`{TAG}.task` = '{_quote(task)}'"
        )
        runs = self.client.search_runs([experiment_id], filter_string=query, max_results=5)
        if runs:
            return str(runs[0].info.run_id)
        return str(
            self.client.create_run(
                experiment_id,
                tags={"mlflow.parentRunId": parent_id, f"{TAG}.task": task, f"{TAG}.role": "child"},
                run_name=task,
            ).info.run_id
        )

    def log_group(
        self,
        child_id: str,
        nodes: list[str],
        durations: Mapping[str, float],
        bytes_in: int,
        bytes_out: int,
        attempt: int,
    ) -> None:
        """What a group did: its nodes, each node's seconds, bytes handed in and out."""
        from mlflow.entities import Metric, RunTag

        import_time = _millis()
        metrics = [
            Metric(metric_key(f"node_seconds/{name}"), seconds, import_time, attempt)
            for name, seconds in durations.items()
        ]
        metrics += [
            Metric("handoff_bytes_in", bytes_in, import_time, attempt),
            Metric("handoff_bytes_out", bytes_out, import_time, attempt),
        ]
        tags = [
            RunTag(f"{TAG}.nodes", ",".join(nodes)[:5000]),
            RunTag(f"{TAG}.attempt", str(attempt)),
        ]
        self.client.log_batch(child_id, metrics=metrics, tags=tags)

    # --- the end of the DAG run ---------------------------------------------------------
    def finish_parent(self, succeeded: bool) -> str | None:
        """Sets the parent run's final status once; returns it (None: no group started)."""
        recorded = self.recorded_parent()
        if recorded is None:
            return None
        status = "FINISHED" if succeeded else "FAILED"
        current = self.client.get_run(recorded["run_id"]).info.status
        if current != status:
            self.client.set_terminated(recorded["run_id"], status)
        return status


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _millis() -> int:
    import time

    return int(time.time() * 1000)
