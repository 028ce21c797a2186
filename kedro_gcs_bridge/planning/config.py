"""The `airflow` config of a project (conf/<env>/airflow.yml), read into one typed object.

kedro-airflow merges the file shallowly: `default:` keys, then the keys under the pipeline's
name, then `--params`. `merge_airflow_config` does exactly that, so `plan`, `validate`, the
hook and the template all see the same values. Key names follow the original kedro-airflow +
GKE setup (`grouping_prefix`, `resources_tag_prefix`, `gcp_project_id`, `retry_delay` in
minutes, ...).
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.planning.machines import DEFAULT_CLASS, MachineClass, parse_machine_classes
from kedro_gcs_bridge.planning.values import as_bool, as_count

#: Keys that the stock kedro-airflow command passes to every template itself.
TEMPLATE_VARIABLES = frozenset(
    {"dag_name", "node_objs", "env", "pipeline_name", "package_name", "pipeline", "conf_source"}
)

#: Where a task's command runs: a GKE Autopilot pod, or a local process (rehearsal).
POD_BACKENDS = ("gke", "local")

#: When a DAG run deletes its run prefix at the end.
CLEANUP_POLICIES = ("never", "on_success", "always")

#: Config keys that are read by later stages (runner, replay, MLflow) and accepted here.
_PASS_THROUGH = frozenset({"gcs_bridge"})


@dataclass(frozen=True)
class BridgeConfig:
    """Everything the planner and the template need from the merged airflow config."""

    grouping: bool = True
    grouping_prefix: str = "airflow."
    resources_tag_prefix: str = "machine."
    strict: bool = False
    machine_classes: Mapping[str, MachineClass] = field(
        default_factory=lambda: parse_machine_classes(None)
    )
    default_machine_class: str = DEFAULT_CLASS
    dag_id: str | None = None
    gcp_project_id: str | None = None
    gcp_region: str | None = None
    gcp_gke_cluster_name: str | None = None
    gcp_conn_id: str = "google_cloud_default"
    k8s_namespace: str = "default"
    k8s_service_account: str | None = None
    docker_image: str | None = None
    gcs_bridge_root: str | None = None
    start_date: tuple[int, ...] = (2023, 1, 1)
    schedule: str | None = None
    max_active_runs: int = 1
    catchup: bool = False
    owner: str = "airflow"
    depends_on_past: bool = False
    email_on_failure: bool = False
    email_on_retry: bool = False
    retries: int = 1
    retry_delay: float = 5.0
    deferrable: bool = False
    spot_retries: int = 3
    schedule_timeout_seconds: int = 1200
    startup_timeout_seconds: int = 600
    tags: tuple[str, ...] = ()
    pod_backend: str = "gke"
    local_root: str | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_experiment: str | None = None
    cleanup: str = "never"
    allow_pickle: bool = True

    @property
    def finalize(self) -> bool:
        """The DAG ends with a finalize task (MLflow parent status, run-prefix cleanup)."""
        return bool(self.mlflow_tracking_uri) or self.cleanup != "never"

    def missing_deployment_keys(self) -> list[str]:
        """Keys a DAG needs to reach GKE and GCS that are not set (none for local pods)."""
        if self.pod_backend == "local":
            return []
        needed = (
            "gcp_project_id",
            "gcp_region",
            "gcp_gke_cluster_name",
            "docker_image",
            "gcs_bridge_root",
        )
        return [key for key in needed if not getattr(self, key)]


_KNOWN = {f.name for f in fields(BridgeConfig)} | {"schedule_interval"}
_BOOLS = {
    "allow_pickle",
    "grouping",
    "strict",
    "catchup",
    "depends_on_past",
    "email_on_failure",
    "email_on_retry",
    "deferrable",
}
_INTS = {
    "max_active_runs",
    "retries",
    "spot_retries",
    "schedule_timeout_seconds",
    "startup_timeout_seconds",
}


def merge_airflow_config(
    raw: Mapping[str, Any], pipeline_name: str, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Merges the airflow config for one pipeline the way kedro-airflow 0.11 does.

    Args:
        raw: The whole `airflow` config (`default:` plus per-pipeline keys).
        pipeline_name: The registered pipeline the DAG is for.
        params: `--params` given on the command line; they win.

    Returns:
        One flat mapping of config keys.
    """
    merged: dict[str, Any] = {}
    merged.update(raw.get("default") or {})
    merged.update(raw.get(pipeline_name) or {})
    merged.update(params or {})
    return merged


def _as_start_date(value: Any) -> tuple[int, ...]:
    if isinstance(value, dt.datetime):
        return (value.year, value.month, value.day, value.hour, value.minute)
    if isinstance(value, dt.date):
        return (value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            parsed = dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ConfigError(
                f"'start_date' {value!r} is not a date; write [2023, 1, 1] or '2023-01-01'."
            ) from exc
        return (parsed.year, parsed.month, parsed.day)
    if isinstance(value, list | tuple) and 3 <= len(value) <= 6:
        try:
            parts = tuple(int(part) for part in value)
            dt.datetime(*parts)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"'start_date' {list(value)} is not a valid date: {exc}.") from exc
        return parts
    raise ConfigError(f"'start_date' must be a list like [2023, 1, 1], got {value!r}.")


def _as_tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(
        isinstance(tag, str | int) and not isinstance(tag, bool) for tag in value
    ):
        return tuple(str(tag) for tag in value)
    raise ConfigError(
        f"'tags' must be a list of Airflow tags like [nightly, team-x], got {value!r}."
    )


def _check_prefix(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"'{key}' must be a non-empty string like 'airflow.'.")
    if ":" in value:
        suggestion = value.replace(":", ".")
        raise ConfigError(
            f"'{key}: {value}' cannot match any node: Kedro 1.x only accepts tags matching "
            rf"[\w.-]+, so tags with ':' are rejected when the pipeline is built. "
            f"Tag nodes '{suggestion}<name>' and set '{key}: {suggestion}'."
        )
    return value


def unknown_keys(merged: Mapping[str, Any]) -> list[str]:
    """Config keys nobody reads, each with the closest known key when there is one."""
    notes = []
    for key in merged:
        if key in _KNOWN or key in TEMPLATE_VARIABLES or key in _PASS_THROUGH:
            continue
        close = difflib.get_close_matches(key, sorted(_KNOWN), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        notes.append(f"airflow config key '{key}' is not used by kedro-gcs-bridge{hint}")
    return notes


def parse_config(merged: Mapping[str, Any]) -> BridgeConfig:
    """Reads a merged airflow config into a `BridgeConfig`.

    Unknown keys are ignored here (see `unknown_keys`): the template context holds more than
    config, and teams keep their own keys in the file.

    Raises:
        ConfigError: A known key has a value of the wrong type or form.
    """
    values: dict[str, Any] = {}
    for key, value in merged.items():
        if key not in _KNOWN or (value is None and key != "schedule"):
            continue
        if key in _BOOLS:
            values[key] = as_bool(key, value)
        elif key in _INTS:
            values[key] = as_count(key, value)
        elif key in {"grouping_prefix", "resources_tag_prefix"}:
            values[key] = _check_prefix(key, value)
        elif key == "start_date":
            values[key] = _as_start_date(value)
        elif key == "retry_delay":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"'retry_delay' is in minutes and must be a number: {value!r}.")
            values[key] = float(value)
        elif key == "machine_classes":
            values[key] = parse_machine_classes(value)
        elif key == "tags":
            values[key] = _as_tags(value)
        elif key == "schedule_interval":
            if "schedule" in merged and merged["schedule"] != value:
                raise ConfigError(
                    "Both 'schedule' and 'schedule_interval' are set with different values; "
                    "keep one ('schedule' is the Airflow 3 name)."
                )
            values["schedule"] = None if value is None else str(value)
        elif key == "schedule":
            values[key] = None if value is None else str(value)
        elif key == "cleanup":
            if value not in CLEANUP_POLICIES:
                raise ConfigError(
                    f"'cleanup: {value}' is not one of {list(CLEANUP_POLICIES)}: when the DAG "
                    "run's prefix is deleted (never, on_success, always)."
                )
            values[key] = str(value)
        elif key == "pod_backend":
            if value not in POD_BACKENDS:
                raise ConfigError(
                    f"'pod_backend: {value}' is not one of {list(POD_BACKENDS)}: 'gke' runs "
                    "each group in a GKE pod, 'local' as a local process (for airflow dags test)."
                )
            values[key] = str(value)
        else:
            values[key] = str(value)
    config = BridgeConfig(**values)
    if config.default_machine_class not in config.machine_classes:
        raise ConfigError(
            f"default_machine_class '{config.default_machine_class}' is not a machine class; "
            f"known: {sorted(config.machine_classes)}."
        )
    return config
