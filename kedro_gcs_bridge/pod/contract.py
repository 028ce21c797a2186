"""The contract between a generated DAG and its pods: the environment variables a task sets.

The DAG side writes these names into every pod's environment (`dag/dagfile.py`); the pod side
(the runner, the group's MLflow run, finalize) reads them here and nowhere else. Values are read
with the same strict readers as every other setting (`planning/values.py`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

RUN_PREFIX_ENV = "KEDRO_GCS_BRIDGE_RUN_PREFIX"
DAG_ID_ENV = "KEDRO_GCS_BRIDGE_DAG_ID"
RUN_ID_ENV = "KEDRO_GCS_BRIDGE_RUN_ID"
TASK_ENV = "KEDRO_GCS_BRIDGE_TASK"
PIPELINE_ENV = "KEDRO_GCS_BRIDGE_PIPELINE"
TRY_ENV = "KEDRO_GCS_BRIDGE_TRY_NUMBER"
KEDRO_ENV_ENV = "KEDRO_GCS_BRIDGE_KEDRO_ENV"
TASKS_ENV = "KEDRO_GCS_BRIDGE_TASKS"
ALLOW_PICKLE_ENV = "KEDRO_GCS_BRIDGE_ALLOW_PICKLE"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "KEDRO_GCS_BRIDGE_MLFLOW_EXPERIMENT"


def env_value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """An environment variable of the contract; empty counts as unset."""
    value = (os.environ if environ is None else environ).get(name)
    return value or None


def env_list(name: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """A comma-separated variable of the contract (`KEDRO_GCS_BRIDGE_TASKS`) as a list."""
    return [part for part in (env_value(name, environ) or "").split(",") if part]
