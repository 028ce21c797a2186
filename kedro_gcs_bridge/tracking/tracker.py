"""MLflow: one parent run per DAG run, a child run per group, the parent's id in the run prefix.

No start task and no XCom: the first group pod to start creates the parent run (tagged with
the dag id, the Airflow run id and the run prefix) and records its id in
`<prefix>/_mlflow/run.json`; the others read that object. Groups that start at the same
moment may both create a parent: the exclusive create of that object decides which one
stays, and the other is deleted. Every group logs into its own child run (`parent_run_id`),
reused on retries. The parent's status is set once, by the DAG's final `finalize` task, from
the task states Airflow recorded. The parent's run prefix tag leads back from an MLflow run
id to the run's data and manifests (`parent_run_prefix`, for `kedro gcs-bridge suggest --from
mlflow:<run id>`).

Tracking watches the pipeline; it must not stop it. A `Tracker` makes its calls through
`client.py` (MLflow's REST API for an http(s) server, so pods never import mlflow; else
`MlflowClient`), all of them within one `Budget` (`budget.py`): whatever MLflow's own retry and
timeout variables say, a dead server costs the process at most the budget. A local store
(`sqlite:`, `file:`) is first opened under an exclusive lock beside its file, so processes
starting together never migrate its schema twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from kedro_gcs_bridge.errors import TrackingError
from kedro_gcs_bridge.tracking.budget import Budget, BudgetSpentError
from kedro_gcs_bridge.tracking.client import Metric, Run, TrackingClient, make_client
from kedro_gcs_bridge.tracking.library import (
    bound_http_requests,
    brief,
)

logger = logging.getLogger(__name__)


TAG = "kedro_gcs_bridge"
PARENT_OBJECT = "_mlflow/run.json"
#: The parent run's tag holding the run prefix URL: `suggest --from mlflow:<run id>` reads it.
RUN_PREFIX_TAG = f"{TAG}.run_prefix"
_METRIC_KEY = re.compile(r"[^\w\-. /]")
_PARAM_VALUE_MAX = 6000
#: The experiment tag that makes the MLflow 3 UI open an experiment on its runs table
#: (classic ML) instead of the GenAI overview.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


@dataclass(frozen=True)
class RunIdentity:
    """What names a DAG run in MLflow."""

    dag_id: str
    airflow_run_id: str
    pipeline: str
    env: str
    project: str
    logical_date: str = ""

    def run_name(self) -> str:
        """The parent run's name: the DAG and the run's logical date (`dag 2026-11-24 08:00`)."""
        return f"{self.dag_id} {readable_date(self.logical_date or self.airflow_run_id)}"

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


def readable_date(text: str) -> str:
    """`2026-11-24 08:00:00` for a logical date or a run id holding one; else the text."""
    stamp = text.rsplit("__", 1)[-1].replace(" ", "T")
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return text
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S")


def metric_values(name: str, value: Any) -> dict[str, float]:
    """The numbers in a metrics dataset's value: a number, or a (nested) dict of numbers.

    A number is logged under the dataset's name, a dict's entries under their keys (nested
    keys joined with `.`: `{"test": {"mae": 1}}` gives `test.mae`); anything that is not a
    number is left out.
    """
    if isinstance(value, Mapping):
        return _numbers_in(value, "")
    number = _number(value)
    return {} if number is None else {metric_key(name): number}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _numbers_in(values: Mapping[Any, Any], prefix: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for key, item in values.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            found |= _numbers_in(item, f"{name}.")
        elif (number := _number(item)) is not None:
            found[metric_key(name)] = number
    return found


class Tracker:
    """The MLflow side of one group pod (or of the finalize task).

    Every call goes through `client` (REST for an http(s) server, else `MlflowClient`) and
    within `budget`: all of them together take at most its seconds.
    """

    def __init__(
        self,
        uri: str,
        store: RunObjects,
        experiment: str | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.uri = uri
        self.store = store
        self.budget = budget or Budget()
        self.client: TrackingClient = make_client(uri, self.budget)
        self.experiment_name = experiment or "Default"
        #: The parent run this tracker created and recorded (it has no parameters yet).
        self.created_parent: str | None = None

    # --- the parent run -----------------------------------------------------------------
    def _experiment_id(self) -> str:
        found = self.client.experiment(self.experiment_name)
        if found is not None:
            experiment_id, tags = found
            if EXPERIMENT_KIND_TAG not in tags:  # a kind the user chose stays
                self.client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            return experiment_id
        try:
            return self.client.create_experiment(
                self.experiment_name, {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
            )
        except BudgetSpentError:
            raise
        except Exception:  # another pod created it a moment ago
            again = self.client.experiment(self.experiment_name)
            if again is None:
                raise
            return again[0]

    def recorded_parent(self) -> dict[str, str] | None:
        """The parent run recorded under the run prefix, if a group recorded it."""
        recorded = self.store.read_run_object(PARENT_OBJECT)
        return None if recorded is None else {k: str(v) for k, v in recorded.items()}

    def _tagged_parents(self, experiment_id: str, identity: RunIdentity) -> list[Run]:
        query = (
            f"tags.`{TAG}.dag_id` = '{_quote(identity.dag_id)}' and "
            f"tags.`{TAG}.airflow_run_id` = '{_quote(identity.airflow_run_id)}' and "
            f"tags.`{TAG}.role` = 'parent'"
        )
        runs = self.client.search_runs(experiment_id, query, max_results=50)
        return sorted(runs, key=lambda run: (run.start_time, run.run_id))

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
            candidate = existing[0].run_id
        else:
            candidate = created = self.client.create_run(
                experiment_id,
                identity.tags() | {RUN_PREFIX_TAG: self.store.prefix},
                identity.run_name(),
            )
        record = {"run_id": candidate, "experiment_id": experiment_id, "tracking_uri": self.uri}
        # The object under the run prefix is the arbiter: the first group to create it wins,
        # every other group uses what it says and deletes a parent run it made in vain.
        self.store.create_run_object(PARENT_OBJECT, record)
        winner = self.recorded_parent() or record
        if created is not None and winner["run_id"] != created:
            self.client.delete_run(created)
            logger.info("Another group created parent run %s first; using it", winner["run_id"])
        elif created is not None:
            self.created_parent = created
        return winner["run_id"], winner["experiment_id"]

    def log_params_once(self, parent_id: str, params: Mapping[str, Any]) -> None:
        """Logs the Kedro parameters on the parent; equal values logged again are no-ops."""
        flat = flatten_params(params)
        if not flat:
            return
        fresh = parent_id == self.created_parent  # made a moment ago: nothing logged on it yet
        logged = {} if fresh else self.client.get_run(parent_id).params
        new = {key: value for key, value in sorted(flat.items()) if key not in logged}
        try:
            self.client.log_batch(parent_id, params=new)
        except BudgetSpentError:
            raise
        except Exception as exc:  # noqa: BLE001 - a concurrent group logged them
            logger.debug("Parameters already on the parent run: %s", exc)

    # --- the child run of a group -------------------------------------------------------
    def child_run(self, parent_id: str, experiment_id: str, task: str) -> str:
        """The group's child run, RUNNING: the one a previous attempt created, or a new one."""
        query = (
            f"tags.`mlflow.parentRunId` = '{parent_id}' and tags.`{TAG}.task` = '{_quote(task)}'"
        )
        runs = self.client.search_runs(experiment_id, query, max_results=5)
        if runs:
            if runs[0].status != "RUNNING":  # a retry resumes the run its first attempt ended
                self.client.set_status(runs[0].run_id, "RUNNING")
            return runs[0].run_id
        return self.client.create_run(
            experiment_id,
            {"mlflow.parentRunId": parent_id, f"{TAG}.task": task, f"{TAG}.role": "child"},
            task,
        )

    def log_group(
        self,
        child_id: str,
        nodes: list[str],
        durations: Mapping[str, float],
        bytes_in: int,
        bytes_out: int,
        attempt: int,
        values: Mapping[str, float] | None = None,
    ) -> None:
        """What a group did: its nodes, each node's seconds, bytes handed in and out.

        Args:
            values: Figures of the group's metrics datasets (`mlflow_metrics`), by metric key.
        """
        now = _millis()
        figures = {metric_key(f"node_seconds/{name}"): s for name, s in durations.items()}
        figures |= {"handoff_bytes_in": bytes_in, "handoff_bytes_out": bytes_out}
        figures |= dict(values or {})
        metrics = [Metric(key, float(value), now, attempt) for key, value in figures.items()]
        tags = {f"{TAG}.nodes": ",".join(nodes)[:5000], f"{TAG}.attempt": str(attempt)}
        self.client.log_batch(child_id, metrics=metrics, tags=tags)

    def end_run(self, run_id: str, status: str) -> None:
        """Sets a run's final status."""
        self.client.set_status(run_id, status)

    # --- the end of the DAG run ---------------------------------------------------------
    def finish_parent(self, succeeded: bool) -> str | None:
        """Sets the parent run's final status once; returns it (None: no group started)."""
        recorded = self.recorded_parent()
        if recorded is None:
            return None
        status = "FINISHED" if succeeded else "FAILED"
        current = self.client.get_run(recorded["run_id"]).status
        if current != status:
            self.client.set_status(recorded["run_id"], status)
        return status


def parent_run_prefix(uri: str, run_id: str) -> str:
    """The run prefix a DAG run's MLflow parent run records (tag `kedro_gcs_bridge.run_prefix`);
    a group's child run leads to its parent.

    Raises:
        TrackingError: The server does not answer, has no such run, or the run records no
            run prefix; the message names the run id and what to pass instead.
    """
    bound_http_requests()
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    where = _shown_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    try:
        run = client.get_run(run_id)
        parent = run.data.tags.get("mlflow.parentRunId")
        if RUN_PREFIX_TAG not in run.data.tags and parent:
            run = client.get_run(parent)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise TrackingError(
                f"MLflow run {run_id} does not exist at {where}: pass the id of a DAG run's "
                "parent run (the run named `<dag_id> <date>`) from that server, or the run "
                "prefix URL (see `kedro gcs-bridge runs list`)."
            ) from exc
        raise TrackingError(f"MLflow at {where} failed to read run {run_id}: {brief(exc)}") from exc
    except Exception as exc:  # connection errors come in many types
        raise TrackingError(
            f"MLflow at {where} did not answer for run {run_id}: {brief(exc)}. Check the "
            "tracking URI, or pass the run prefix URL instead."
        ) from exc
    prefix = run.data.tags.get(RUN_PREFIX_TAG)
    if not prefix:
        raise TrackingError(
            f"MLflow run {run_id} at {where} records no run prefix (tag {RUN_PREFIX_TAG}): it "
            "is not the parent run of a kedro-gcs-bridge DAG run, or an older version created "
            "it. Pass the run prefix URL instead (see `kedro gcs-bridge runs list`)."
        )
    return prefix


def _shown_uri(uri: str) -> str:
    """A tracking URI fit for a message: a password in it is never shown."""
    parts = urlsplit(uri)
    if not parts.password:
        return uri
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _millis() -> int:
    return int(time.time() * 1000)
