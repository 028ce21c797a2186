"""The contract between a generated DAG and its pods: the environment variables a task sets.

The DAG side writes these names into every pod's environment (`dag/dagfile.py`); the pod side
(the runner, the group's MLflow run, finalize) reads them here and nowhere else. Values are read
with the same strict readers as every other setting (`planning/values.py`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping

from kedro_gcs_bridge.errors import ConfigError

RUN_PREFIX_ENV = "KEDRO_GCS_BRIDGE_RUN_PREFIX"
DAG_ID_ENV = "KEDRO_GCS_BRIDGE_DAG_ID"
RUN_ID_ENV = "KEDRO_GCS_BRIDGE_RUN_ID"
TASK_ENV = "KEDRO_GCS_BRIDGE_TASK"
PIPELINE_ENV = "KEDRO_GCS_BRIDGE_PIPELINE"
TRY_ENV = "KEDRO_GCS_BRIDGE_TRY_NUMBER"
KEDRO_ENV_ENV = "KEDRO_GCS_BRIDGE_KEDRO_ENV"
TASKS_ENV = "KEDRO_GCS_BRIDGE_TASKS"
ALLOW_PICKLE_ENV = "KEDRO_GCS_BRIDGE_ALLOW_PICKLE"
#: "true"/"false": the `local_handoff` policy (local-disk catalog datasets that cross pods
#: travel through the run prefix, or are left to the catalog).
LOCAL_HANDOFF_ENV = "KEDRO_GCS_BRIDGE_LOCAL_HANDOFF"
#: Bytes, and a count: frames at least that large cross as parallel parts, that many at once
#: (`parallel_threshold`, `parallel_concurrency`; read by pod/transfer.py).
PARALLEL_THRESHOLD_ENV = "KEDRO_GCS_BRIDGE_PARALLEL_THRESHOLD"
PARALLEL_CONCURRENCY_ENV = "KEDRO_GCS_BRIDGE_PARALLEL_CONCURRENCY"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "KEDRO_GCS_BRIDGE_MLFLOW_EXPERIMENT"
#: "true": a tracking failure fails the task (`mlflow_required`); unset: tracking is best effort.
MLFLOW_REQUIRED_ENV = "KEDRO_GCS_BRIDGE_MLFLOW_REQUIRED"
#: Seconds (a float): all of a pod's tracking calls together (`mlflow.budget_seconds`); when
#: they are spent tracking is off for the rest of the pod. Unset: 30.
MLFLOW_BUDGET_ENV = "KEDRO_GCS_BRIDGE_MLFLOW_BUDGET"
#: Comma-separated datasets whose values (numbers, dicts of numbers) go to the group's child run.
MLFLOW_METRICS_ENV = "KEDRO_GCS_BRIDGE_MLFLOW_METRICS"
#: The DAG run's logical date (or its run id when it has none): names the MLflow parent run.
LOGICAL_DATE_ENV = "KEDRO_GCS_BRIDGE_LOGICAL_DATE"
#: Finalize only: JSON `{run_id: {task_id: state}}` as Airflow recorded them (worker-rendered).
TASK_STATES_ENV = "KEDRO_GCS_BRIDGE_TASK_STATES"
#: JSON object: boundary dataset this task loads -> the task id that produces it (from the plan).
UPSTREAM_ENV = "KEDRO_GCS_BRIDGE_UPSTREAM"
#: Comma-separated `--tags` the DAG was created with: the registered pipeline the runner cuts
#: boundaries from is filtered by them, as the DAG's was.
TAGS_ENV = "KEDRO_GCS_BRIDGE_TAGS"
#: ISO 8601 time the Airflow task instance started (worker-rendered `ti.start_date`; replay sets
#: it when a task starts): the manifest's `pod_start_seconds` runs from it to the first node.
TASK_START_ENV = "KEDRO_GCS_BRIDGE_TASK_START"


def env_value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """An environment variable of the contract; empty counts as unset."""
    value = (os.environ if environ is None else environ).get(name)
    return value or None


def env_list(name: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """A comma-separated variable of the contract (`KEDRO_GCS_BRIDGE_TASKS`) as a list."""
    return [part for part in (env_value(name, environ) or "").split(",") if part]


def env_mapping(name: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A JSON-object variable of the contract (`KEDRO_GCS_BRIDGE_UPSTREAM`) as a dict.

    Raises:
        ConfigError: The value is not a JSON object of strings.
    """
    raw = env_value(name, environ)
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name} is not valid JSON ({exc}): {raw[:200]!r}") from exc
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f"{name} must be a JSON object of strings (dataset -> task id).")
    return value


def env_datetime(name: str, environ: Mapping[str, str] | None = None) -> dt.datetime | None:
    """An ISO 8601 time variable of the contract (`KEDRO_GCS_BRIDGE_TASK_START`), in UTC when
    it names no zone.

    Raises:
        ConfigError: The value is not an ISO 8601 time.
    """
    raw = env_value(name, environ)
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except ValueError as exc:
        raise ConfigError(f"{name} is not an ISO 8601 time: {raw[:100]!r}") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
