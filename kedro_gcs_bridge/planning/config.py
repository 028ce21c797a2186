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
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.planning import k8s
from kedro_gcs_bridge.planning.machines import (
    DEFAULT_CLASS,
    MIB,
    MachineClass,
    memory_bytes,
    parse_machine_classes,
    selector_keys,
)
from kedro_gcs_bridge.planning.rules import (
    as_dag_id,
    as_namespace,
    as_schedule,
    as_service_account,
    as_tracking_uri,
)
from kedro_gcs_bridge.planning.values import as_bool, as_count, as_root_url

#: Keys that the stock kedro-airflow command passes to every template itself.
TEMPLATE_VARIABLES = frozenset(
    {"dag_name", "node_objs", "env", "pipeline_name", "package_name", "pipeline", "conf_source"}
)

#: Where a task's command runs: a GKE Autopilot pod, or a local process (rehearsal).
POD_BACKENDS = ("gke", "local")

#: The `local_disk` policy: stop, or write the DAG and warn (see planning/storage.py).
LOCAL_DISK_POLICIES = ("error", "warn")

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
    use_dns_endpoint: bool = False
    use_internal_ip: bool = False
    spot_retries: int = 3
    schedule_timeout_seconds: int = 1200
    startup_timeout_seconds: int = 600
    tags: tuple[str, ...] = ()
    pod_backend: str = "gke"
    local_root: str | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_experiment: str | None = None
    mlflow_required: bool = False
    mlflow_metrics: tuple[str, ...] = ()
    cleanup: str = "never"
    allow_pickle: bool = True
    local_handoff: bool = True
    local_disk: str = "error"
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Production knobs (planning/k8s.py reads them; README "Production checklist").
    execution_timeout: float | None = None
    dagrun_timeout: float | None = None
    pool: str | None = None
    pool_slots: int = 1
    priority_weight: int = 1
    weight_rule: str = "downstream"
    on_finish_action: str = "delete_succeeded_pod"
    image_pull_policy: str | None = None
    security_context: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: k8s.as_security_context("security_context", {})
    )
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    pod_annotations: Mapping[str, str] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    env_vars: Mapping[str, str] = field(default_factory=dict)
    env_from_secrets: tuple[str, ...] = ()
    secret_env: tuple[k8s.SecretRef, ...] = ()
    tolerations: tuple[Mapping[str, Any], ...] = ()
    affinity: Mapping[str, Any] | None = None
    pod_template_file: str | None = None
    pod_override: Mapping[str, Any] | None = None
    doc_md: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    on_failure_callback: str | None = None
    on_success_callback: str | None = None
    deadline: k8s.Deadline | None = None
    # Large frames cross as parallel parts (pod/transfer.py, which keeps the same defaults).
    parallel_threshold: int = 128 * MIB
    parallel_concurrency: int = 8

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


def accepted_keys() -> list[str]:
    """Every key `parse_config` reads, sorted (the init file and the README list each one)."""
    return sorted(_KNOWN)


#: The name a key's value is stored under when it is not its own (Airflow 2's name).
_ALIASES = {"schedule_interval": "schedule"}
#: Keys whose null value is a value (no schedule), not "use the default".
_NULLABLE = frozenset({"schedule"})
#: Schemes a root may have for the GKE backend: pods share nothing but GCS.
_GKE_ROOT_SCHEMES = ("gs", "gcs")
_BOOLS = (
    "allow_pickle",
    "local_handoff",
    "mlflow_required",
    "grouping",
    "strict",
    "catchup",
    "depends_on_past",
    "email_on_failure",
    "email_on_retry",
    "deferrable",
    "use_dns_endpoint",
    "use_internal_ip",
)
_INTS = (
    "retries",
    "spot_retries",
    "schedule_timeout_seconds",
    "startup_timeout_seconds",
    "priority_weight",
)


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


def _as_names(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if isinstance(value, list | tuple) and all(isinstance(name, str) and name for name in value):
        return tuple(value)
    raise ConfigError(f"'{key}' must be a list of dataset names like [metrics], got {value!r}.")


_GROUP_NAME = re.compile(r"^[\w.-]+$")
_SELECTOR_KINDS = ("tag:", "namespace:")


def _as_groups(key: str, value: Any) -> dict[str, tuple[str, ...]]:
    """`groups:`: group name -> node names or selectors (`tag:<tag>`, `namespace:<ns>`)."""
    example = "like {split: [create_model_input_table_node, split_data_node]}"
    if not isinstance(value, Mapping):
        raise ConfigError(f"'{key}' must map group names to lists of nodes, {example}.")
    groups: dict[str, tuple[str, ...]] = {}
    for name, entries in value.items():
        if not isinstance(name, str) or not _GROUP_NAME.match(name):
            raise ConfigError(
                f"'{key}': group name {name!r} must be letters, digits, '_', '.' or '-' (as in "
                "an airflow.<group> tag)."
            )
        listed = [entries] if isinstance(entries, str) else entries
        if not isinstance(listed, list | tuple) or not listed:
            raise ConfigError(f"'{key}': group '{name}' must list its nodes, {example}.")
        bad = [e for e in listed if not isinstance(e, str) or not e or e in _SELECTOR_KINDS]
        if bad:
            raise ConfigError(
                f"'{key}': group '{name}' has entries {bad!r} that are not node names, "
                "'tag:<tag>' or 'namespace:<namespace>'."
            )
        groups[name] = tuple(listed)
    return groups


#: Tracking stores that live in one machine's files (no scheme: a path): pods cannot share them.
_LOCAL_STORE_SCHEMES = frozenset({"", "sqlite", "file"})


def _check_tracking_uri(merged: Mapping[str, Any], config: BridgeConfig) -> None:
    uri = config.mlflow_tracking_uri
    if not uri or config.pod_backend != "gke" or uri.startswith("databricks"):
        return
    if urlsplit(uri).scheme in _LOCAL_STORE_SCHEMES:
        raise ConfigError(
            f"'mlflow_tracking_uri: {uri}' is a local store; GKE pods cannot share a local "
            "file. Point it at a tracking server (http(s)://...), or use it with "
            "'pod_backend: local' or `kedro gcs-bridge replay --tracking-uri`."
        )


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


def _as_text(key: str, value: Any) -> str:
    return str(value)


def _as_minutes(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"'{key}' is in minutes and must be a number: {value!r}.")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"'{key}' is in minutes and must be a number >= 0, got {value!r}.")
    return float(value)


def _one_of(choices: tuple[str, ...], meaning: str) -> Callable[[str, Any], str]:
    def read(key: str, value: Any) -> str:
        if value not in choices:
            raise ConfigError(f"'{key}: {value}' is not one of {list(choices)}: {meaning}.")
        return str(value)

    return read


def _at_least_one(key: str, value: Any) -> int:
    return as_count(key, value, minimum=1)


def _as_byte_size(key: str, value: Any) -> int:
    """A positive whole number of bytes, given as bytes (134217728) or a quantity ('128Mi')."""
    problem = (
        f"'{key}' must be a whole number of bytes >= 1, like 134217728 or a quantity like "
        f"'128Mi' or '1Gi', got {value!r}."
    )
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(problem)
    try:
        size = memory_bytes(value)
    except ConfigError as exc:
        raise ConfigError(problem) from exc
    if size < 1 or size != int(size):
        raise ConfigError(problem)
    return int(size)


def _as_machine_classes(key: str, value: Any) -> Mapping[str, MachineClass]:
    return parse_machine_classes(value)


_Reader = Callable[[str, Any], Any]

#: How each key is read; a key not listed is text.
_READERS: dict[str, _Reader] = {
    **dict.fromkeys(_BOOLS, as_bool),
    **dict.fromkeys(_INTS, as_count),
    **k8s.READERS,
    "max_active_runs": _at_least_one,
    "pool_slots": _at_least_one,
    "parallel_concurrency": _at_least_one,
    "parallel_threshold": _as_byte_size,
    "grouping_prefix": _check_prefix,
    "resources_tag_prefix": _check_prefix,
    "start_date": lambda key, value: _as_start_date(value),
    "retry_delay": _as_minutes,
    "machine_classes": _as_machine_classes,
    "tags": lambda key, value: _as_tags(value),
    "schedule": as_schedule,
    "schedule_interval": as_schedule,
    "dag_id": as_dag_id,
    "k8s_namespace": as_namespace,
    "k8s_service_account": as_service_account,
    "mlflow_tracking_uri": as_tracking_uri,
    "mlflow_metrics": _as_names,
    "groups": _as_groups,
    "local_root": as_root_url,
    "cleanup": _one_of(
        CLEANUP_POLICIES, "when the DAG run's prefix is deleted (never, on_success, always)"
    ),
    "local_disk": _one_of(
        LOCAL_DISK_POLICIES,
        "what to do about raw inputs missing from the image and outputs left on a pod's "
        "disk ('error' stops the DAG from being written, 'warn' writes it and says what is lost)",
    ),
    "pod_backend": _one_of(
        POD_BACKENDS,
        "'gke' runs each group in a GKE pod, 'local' as a local process (for airflow dags test)",
    ),
}


def _check_schedule_alias(merged: Mapping[str, Any], config: BridgeConfig) -> None:
    interval = merged.get("schedule_interval")
    if interval is not None and "schedule" in merged and merged["schedule"] != interval:
        raise ConfigError(
            "Both 'schedule' and 'schedule_interval' are set with different values; "
            "keep one ('schedule' is the Airflow 3 name)."
        )


def _check_default_class(merged: Mapping[str, Any], config: BridgeConfig) -> None:
    if config.default_machine_class not in config.machine_classes:
        raise ConfigError(
            f"default_machine_class '{config.default_machine_class}' is not a machine class; "
            f"known: {sorted(config.machine_classes)}."
        )


def _check_root(merged: Mapping[str, Any], config: BridgeConfig) -> None:
    if config.gcs_bridge_root:  # unset: reported as a missing deployment key
        schemes = None if config.pod_backend == "local" else _GKE_ROOT_SCHEMES
        as_root_url("gcs_bridge_root", config.gcs_bridge_root, schemes)


#: Checks of keys together, after each key was read.
def _check_node_selector(merged: Mapping[str, Any], config: BridgeConfig) -> None:
    owned = sorted(set(config.node_selector) & set(selector_keys()))
    if owned:
        raise ConfigError(
            f"'node_selector' sets {owned}, which machine classes set (compute_class, spot, "
            "accelerator, machine_family, arch): set them under machine_classes instead."
        )


_CHECKS = (
    _check_schedule_alias,
    _check_default_class,
    _check_root,
    _check_tracking_uri,
    _check_node_selector,
)


def _raise_all(problems: list[str]) -> None:
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise ConfigError(f"The airflow config has {len(problems)} problems:\n{lines}")


def parse_config(merged: Mapping[str, Any]) -> BridgeConfig:
    """Reads a merged airflow config into a `BridgeConfig`, each key by its reader.

    Unknown keys are ignored here (see `unknown_keys`): the template context holds more than
    config, and teams keep their own keys in the file.

    Raises:
        ConfigError: Known keys with values of the wrong type or form (all of them named), or
            keys that do not fit together.
    """
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in merged.items():
        if key not in _KNOWN or (value is None and key not in _NULLABLE):
            continue
        try:
            values[_ALIASES.get(key, key)] = _READERS.get(key, _as_text)(key, value)
        except ConfigError as exc:
            problems.append(str(exc))
    # The keys read so far are checked together too, so one run names every problem.
    config = BridgeConfig(**values)
    for check in _CHECKS:
        try:
            check(merged, config)
        except ConfigError as exc:
            problems.append(str(exc))
    _raise_all(problems)
    return config
