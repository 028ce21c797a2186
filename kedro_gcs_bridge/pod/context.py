"""The contract between a generated DAG and its pods: the environment variables a task sets.

`TaskContext` holds them typed. The DAG writer (`dag/dagfile.py`) puts `to_env()` into every
pod's environment; in a pod, `TaskContext.from_env()` is the only reader of them (the runner,
the group's MLflow run, the transfer settings, finalize). Values are read with the same strict
readers as every other setting (`values.py`); a value that cannot be read is a
`ConfigError` naming the variable, except the task's start time, which only costs the
manifest its pod-start measurement (one warning).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.values import as_bool, as_count

logger = logging.getLogger(__name__)

RUN_PREFIX_ENV = "KEDRO_GCS_BRIDGE_RUN_PREFIX"
DAG_ID_ENV = "KEDRO_GCS_BRIDGE_DAG_ID"
RUN_ID_ENV = "KEDRO_GCS_BRIDGE_RUN_ID"
TASK_ENV = "KEDRO_GCS_BRIDGE_TASK"
PIPELINE_ENV = "KEDRO_GCS_BRIDGE_PIPELINE"
TRY_ENV = "KEDRO_GCS_BRIDGE_TRY_NUMBER"
KEDRO_ENV_ENV = "KEDRO_GCS_BRIDGE_KEDRO_ENV"
TASKS_ENV = "KEDRO_GCS_BRIDGE_TASKS"
ALLOW_PICKLE_ENV = "KEDRO_GCS_BRIDGE_ALLOW_PICKLE"
LOCAL_HANDOFF_ENV = "KEDRO_GCS_BRIDGE_LOCAL_HANDOFF"
PARALLEL_THRESHOLD_ENV = "KEDRO_GCS_BRIDGE_PARALLEL_THRESHOLD"
PARALLEL_CONCURRENCY_ENV = "KEDRO_GCS_BRIDGE_PARALLEL_CONCURRENCY"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "KEDRO_GCS_BRIDGE_MLFLOW_EXPERIMENT"
MLFLOW_REQUIRED_ENV = "KEDRO_GCS_BRIDGE_MLFLOW_REQUIRED"
MLFLOW_METRICS_ENV = "KEDRO_GCS_BRIDGE_MLFLOW_METRICS"
MLFLOW_BUDGET_ENV = "KEDRO_GCS_BRIDGE_MLFLOW_BUDGET"
STRUCTURED_LOGS_ENV = "KEDRO_GCS_BRIDGE_STRUCTURED_LOGS"
LOGICAL_DATE_ENV = "KEDRO_GCS_BRIDGE_LOGICAL_DATE"
TASK_STATES_ENV = "KEDRO_GCS_BRIDGE_TASK_STATES"
#: Set by `replay` only (not the DAG): how many tasks it runs at once (`--parallel`).
REPLAY_PARALLEL_ENV = "KEDRO_GCS_BRIDGE_REPLAY_PARALLEL"
#: Set by `replay` only: the task was forked from its warm server (Kedro already imported).
REPLAY_WARM_ENV = "KEDRO_GCS_BRIDGE_REPLAY_WARM"
UPSTREAM_ENV = "KEDRO_GCS_BRIDGE_UPSTREAM"
TAGS_ENV = "KEDRO_GCS_BRIDGE_TAGS"
TASK_START_ENV = "KEDRO_GCS_BRIDGE_TASK_START"


def _text(key: str, raw: str) -> str:
    return raw


def _bool(key: str, raw: str) -> bool:
    return as_bool(key, raw)


def _count(key: str, raw: str) -> int:
    return as_count(key, raw.strip(), minimum=1)


def _names(key: str, raw: str) -> tuple[str, ...]:
    return tuple(part for part in raw.split(",") if part)


def _seconds(key: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"'{key}' must be a number of seconds > 0, got {raw[:100]!r}.")
    return value


def _time(key: str, raw: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except ValueError as exc:
        raise ConfigError(f"{key} is not an ISO 8601 time: {raw[:100]!r}") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _mapping(key: str, raw: str) -> dict[str, str]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{key} is not valid JSON ({exc}): {raw[:200]!r}") from exc
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f"{key} must be a JSON object of strings (dataset -> task id).")
    return value


def _write(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


_Reader = Callable[[str, str], Any]
#: Field -> (its variable, its reader, the name errors give it: the airflow.yml key of a
#: boolean, else the variable), in the order the DAG file lists them.
_CONTRACT: Mapping[str, tuple[str, _Reader, str | None]] = {
    "run_prefix": (RUN_PREFIX_ENV, _text, None),
    "dag_id": (DAG_ID_ENV, _text, None),
    "run_id": (RUN_ID_ENV, _text, None),
    "pipeline": (PIPELINE_ENV, _text, None),
    "kedro_env": (KEDRO_ENV_ENV, _text, None),
    "try_number": (TRY_ENV, _count, None),
    "task_start": (TASK_START_ENV, _time, None),
    "local_handoff": (LOCAL_HANDOFF_ENV, _bool, "local_handoff"),
    "parallel_threshold": (PARALLEL_THRESHOLD_ENV, _count, None),
    "parallel_concurrency": (PARALLEL_CONCURRENCY_ENV, _count, None),
    "allow_pickle": (ALLOW_PICKLE_ENV, _bool, "allow_pickle"),
    "tracking_uri": (TRACKING_URI_ENV, _text, None),
    "experiment": (EXPERIMENT_ENV, _text, None),
    "logical_date": (LOGICAL_DATE_ENV, _text, None),
    "mlflow_required": (MLFLOW_REQUIRED_ENV, _bool, "mlflow_required"),
    "mlflow_metrics": (MLFLOW_METRICS_ENV, _names, None),
    "mlflow_budget": (MLFLOW_BUDGET_ENV, _seconds, None),
    "structured_logs": (STRUCTURED_LOGS_ENV, _bool, "structured_logs"),
    "tasks": (TASKS_ENV, _names, None),
    "tags": (TAGS_ENV, _names, None),
    "task": (TASK_ENV, _text, None),
    "upstream": (UPSTREAM_ENV, _mapping, None),
    "task_states": (TASK_STATES_ENV, _text, None),
    "replay_parallel": (REPLAY_PARALLEL_ENV, _count, None),
    "replay_warm": (REPLAY_WARM_ENV, _bool, None),
}
#: Fields whose unreadable value costs a measurement, not the task.
_SOFT = frozenset({"task_start", "replay_parallel", "replay_warm"})
#: Fields whose empty variable is refused (the DAG writes them from airflow.yml: an empty one
#: is a mistake); any other empty variable counts as unset.
_EMPTY_REFUSED = frozenset({"parallel_threshold", "parallel_concurrency"})


@dataclass(frozen=True)
class TaskContext:
    """What a generated DAG tells one pod, typed; None (or empty) means unset.

    Fields are in the order the DAG file lists the variables (`_CONTRACT` names them).
    """

    run_prefix: str | None = None
    dag_id: str | None = None
    run_id: str | None = None
    pipeline: str | None = None
    kedro_env: str | None = None
    #: The Airflow try number (`attempt` gives 1 when unset).
    try_number: int | None = None
    #: When the Airflow task instance started: the manifest's `pod_start_seconds` runs from it.
    task_start: dt.datetime | None = None
    #: `local_handoff`: local-disk catalog datasets that cross pods go through the run prefix.
    local_handoff: bool | None = None
    #: `parallel_threshold` (bytes) and `parallel_concurrency`: large frames as parallel parts.
    parallel_threshold: int | None = None
    parallel_concurrency: int | None = None
    allow_pickle: bool | None = None
    tracking_uri: str | None = None
    experiment: str | None = None
    #: The DAG run's logical date (or its run id when it has none): names the MLflow parent.
    logical_date: str | None = None
    #: True: a tracking failure fails the task; unset: tracking is best effort.
    mlflow_required: bool | None = None
    #: Datasets whose values (numbers, dicts of numbers) go to the group's child run.
    mlflow_metrics: tuple[str, ...] = ()
    #: Seconds all of a pod's tracking calls may take together (`mlflow` budget; tracking/).
    mlflow_budget: float | None = None
    #: `pod.structured_logs`: JSON log lines with Cloud Logging's severity and labels.
    structured_logs: bool | None = None
    #: Every group task of the DAG.
    tasks: tuple[str, ...] = ()
    #: The `--tags` the DAG was created with: the registered pipeline is filtered by them.
    tags: tuple[str, ...] = ()
    task: str | None = None
    #: Boundary dataset this task loads -> the task id that produces it (from the plan).
    upstream: Mapping[str, str] = field(default_factory=dict)
    #: Finalize only: JSON `{run_id: {task_id: state}}` as Airflow recorded them.
    task_states: str | None = None
    #: Replay only: how many tasks `kedro gcs-bridge replay` runs at once (a pod: unset).
    replay_parallel: int | None = None
    #: Replay only: the task started warm, so its measured pod start holds no cold Kedro start.
    replay_warm: bool | None = None

    @property
    def attempt(self) -> int:
        """The Airflow try number, 1 when none was given."""
        return self.try_number or 1

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, only: Collection[str] | None = None
    ) -> TaskContext:
        """The context a pod's environment gives (empty variables count as unset).

        Args:
            environ: The variables; default `os.environ`.
            only: The fields to read (the rest stay unset); default every field.

        Raises:
            ConfigError: A variable read holds a value its field cannot take (names it).
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, (env, read, key) in _CONTRACT.items():
            if only is not None and name not in only:
                continue
            raw = environ.get(env)
            if raw is None or (not raw and name not in _EMPTY_REFUSED):
                continue
            try:
                values[name] = read(key or env, raw)
            except ConfigError as exc:
                if name not in _SOFT:
                    raise ConfigError(f"{str(exc).rstrip('.')} (from {env}).") from exc
                logger.warning("No pod start measurement: %s", exc)
        return cls(**values)

    def to_env(self, rendered: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment variables of the fields that are set, in field order.

        Args:
            rendered: Field name -> a template Airflow renders on the worker (`{{ run_id }}`),
                written instead of the field's value.

        Raises:
            ValueError: `rendered` names a field that does not exist.
        """
        rendered = dict(rendered or {})
        unknown = set(rendered) - set(_CONTRACT)
        if unknown:
            raise ValueError(f"TaskContext has no field {', '.join(sorted(unknown))}")
        env: dict[str, str] = {}
        for name, (variable, _, _) in _CONTRACT.items():
            if name in rendered:
                env[variable] = rendered[name]
                continue
            value = getattr(self, name)
            if value is not None and value not in ((), {}):
                env[variable] = _write(value)
        return env
