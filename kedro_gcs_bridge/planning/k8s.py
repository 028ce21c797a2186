"""Readers of the production knobs of airflow.yml: the Airflow task settings (timeouts, pools,
callbacks, params, a deadline) and the Kubernetes pod settings (labels, env, Secrets, security
context, tolerations, affinity, pod templates).

Each reader takes `(key, value)` and returns the value in the shape the DAG file writes, or
raises a `ConfigError` naming the key, so `kedro airflow create` stops before a file is written
instead of Airflow or Kubernetes failing later. Kubernetes field names are the ones of its YAML
(camelCase), as a platform engineer copies them from a manifest. Nothing here imports Airflow
or the Kubernetes client: the rules are Kubernetes' and Airflow's, written as tables.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kedro_gcs_bridge.errors import ConfigError

#: The image recipe in docker/ creates this user and group (`useradd --uid 1000 --gid 1000`).
IMAGE_UID = 1000
IMAGE_GID = 1000

#: What Autopilot's policies accept and a reviewer expects: no root, no new privileges, no
#: capabilities, the runtime's default seccomp profile. `security_context:` overrides per field.
DEFAULT_POD_SECURITY: Mapping[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": IMAGE_UID,
    "runAsGroup": IMAGE_GID,
    "fsGroup": IMAGE_GID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
DEFAULT_CONTAINER_SECURITY: Mapping[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
}

#: Kubernetes PodSecurityContext and SecurityContext fields (core/v1).
_POD_SECURITY_FIELDS = frozenset(
    {
        "appArmorProfile",
        "fsGroup",
        "fsGroupChangePolicy",
        "runAsGroup",
        "runAsNonRoot",
        "runAsUser",
        "seLinuxOptions",
        "seccompProfile",
        "supplementalGroups",
        "supplementalGroupsPolicy",
        "sysctls",
        "windowsOptions",
    }
)
_CONTAINER_SECURITY_FIELDS = frozenset(
    {
        "allowPrivilegeEscalation",
        "appArmorProfile",
        "capabilities",
        "privileged",
        "procMount",
        "readOnlyRootFilesystem",
        "runAsGroup",
        "runAsNonRoot",
        "runAsUser",
        "seLinuxOptions",
        "seccompProfile",
        "windowsOptions",
    }
)
_SECURITY_PARTS = {"pod": _POD_SECURITY_FIELDS, "container": _CONTAINER_SECURITY_FIELDS}

ON_FINISH_ACTIONS = ("delete_succeeded_pod", "delete_pod", "keep_pod")
WEIGHT_RULES = ("downstream", "upstream", "absolute")
IMAGE_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
#: Deadline references: the run was queued (every run has it) or its logical date.
DEADLINE_REFERENCES = ("queued_at", "logical_date")

#: Labels the bridge and Airflow's pod operator set themselves: a user label would be lost.
BRIDGE_LABEL_PREFIX = "kedro-gcs-bridge/"
_RESERVED_LABELS = frozenset(
    {
        "app.kubernetes.io/managed-by",
        "dag_id",
        "task_id",
        "run_id",
        "try_number",
        "map_index",
        "kubernetes_pod_operator",
        "airflow_version",
        "airflow_kpo_in_cluster",
        "already_checked",
    }
)
#: The bridge's own pod environment (pod/context.py) and the tracking URI (its own key).
_RESERVED_ENV_PREFIX = "KEDRO_GCS_BRIDGE_"
_RESERVED_ENV = frozenset({"MLFLOW_TRACKING_URI"})
#: Names that say "credential": such values belong in a Kubernetes Secret (secret_env).
_SECRET_WORDS = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|CREDENTIAL|PRIVATE_KEY|API_KEY")

_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_DOTTED_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
_PARAM_KEY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_TOLERATION_FIELDS = frozenset({"key", "operator", "value", "effect", "tolerationSeconds"})
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_AFFINITY_FIELDS = frozenset({"nodeAffinity", "podAffinity", "podAntiAffinity"})
_POD_OVERRIDE_FIELDS = frozenset({"metadata", "spec"})


def _mapping(key: str, value: Any, example: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"'{key}' must be a mapping like {example}, got {value!r}.")
    return value


def _fields(
    key: str, value: Any, example: str, allowed: frozenset[str] | set[str], nested: str | None
) -> dict[str, Any]:
    """A mapping with only `allowed` keys; with `nested`, each value a mapping too."""
    fields = _mapping(key, value, example)
    bad = sorted(set(fields) - allowed)
    if bad:
        raise ConfigError(f"'{key}' has unknown field(s) {bad}; allowed: {sorted(allowed)}.")
    for name, part in fields.items() if nested is not None else ():
        _mapping(f"{key}.{name}", part, nested)
    return dict(fields)


def _one_of(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"'{key}: {value}' is not one of {list(choices)}.")
    return str(value)


def as_timeout_minutes(key: str, value: Any) -> float:
    """A timeout in minutes: a number > 0.

    Raises:
        ConfigError: Not a positive finite number.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"'{key}' is in minutes and must be a number, got {value!r}.")
    if value <= 0:
        raise ConfigError(f"'{key}' is in minutes and must be > 0, got {value!r}.")
    return float(value)


def as_on_finish_action(key: str, value: Any) -> str:
    """What happens to a pod when its task ends (failed pods stay by default, for kubectl)."""
    return _one_of(key, value, ON_FINISH_ACTIONS)


def as_weight_rule(key: str, value: Any) -> str:
    """Airflow's priority weight rule."""
    return _one_of(key, value, WEIGHT_RULES)


def as_image_pull_policy(key: str, value: Any) -> str:
    """A container image pull policy."""
    return _one_of(key, value, IMAGE_PULL_POLICIES)


def as_pool(key: str, value: Any) -> str:
    """An Airflow pool name (the pool itself is created in Airflow, not here)."""
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise ConfigError(f"'{key}' must be the name of an Airflow pool, got {value!r}.")
    return value


def _label_key_problem(name: str) -> str | None:
    """What is wrong with a Kubernetes label/annotation key ([prefix/]name); None if fine."""
    prefix, _, short = name.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return "its prefix must be a DNS subdomain (lowercase, digits, '-', '.')"
    if not short or len(short) > 63 or not _LABEL_NAME.match(short):
        return "its name must be 1-63 letters, digits, '-', '_' or '.', alphanumeric at each end"
    return None


def _check_label_key(key: str, name: Any) -> str:
    problem = _label_key_problem(name) if isinstance(name, str) else "it is not a string"
    if problem:
        raise ConfigError(f"'{key}': {name!r} is not a Kubernetes label key: {problem}.")
    if name in _RESERVED_LABELS or name.startswith(BRIDGE_LABEL_PREFIX):
        raise ConfigError(
            f"'{key}': {name!r} is set by kedro-gcs-bridge or Airflow on every pod; choose "
            "another key."
        )
    return name


def _scalar_text(key: str, value: Any) -> str:
    if value is None or isinstance(value, Mapping | list | tuple):
        raise ConfigError(f"'{key}' must be a plain value (text, number, true/false): {value!r}.")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def as_pod_labels(key: str, value: Any) -> dict[str, str]:
    """Extra pod labels (cost attribution, policy): Kubernetes label keys and values.

    Raises:
        ConfigError: A key or value Kubernetes refuses, or a key the bridge or Airflow sets.
    """
    labels = {}
    for name, raw in _mapping(key, value, "{team: data, cost-center: cc-42}").items():
        text = _scalar_text(f"{key}.{name}", raw)
        if len(text) > 63 or (text and not _LABEL_NAME.match(text)):
            raise ConfigError(
                f"'{key}.{name}': {text!r} is not a Kubernetes label value: at most 63 letters, "
                "digits, '-', '_' or '.', alphanumeric at each end. Use pod_annotations for "
                "free text."
            )
        labels[_check_label_key(key, name)] = text
    return labels


def as_pod_annotations(key: str, value: Any) -> dict[str, str]:
    """Extra pod annotations: Kubernetes keys, any text values.

    Raises:
        ConfigError: A key Kubernetes refuses or one the bridge sets.
    """
    example = "{policy.example.com/owner: data-team}"
    return {
        _check_label_key(key, name): _scalar_text(f"{key}.{name}", raw)
        for name, raw in _mapping(key, value, example).items()
    }


def as_node_selector(key: str, value: Any) -> dict[str, str]:
    """Extra node selectors: label keys and values (machine-class selectors are refused in
    config.py, which knows them)."""
    selector = {}
    for name, raw in _mapping(key, value, "{cloud.google.com/gke-nodepool: x}").items():
        problem = _label_key_problem(name) if isinstance(name, str) else "it is not a string"
        if problem:
            raise ConfigError(f"'{key}': {name!r} is not a Kubernetes label key: {problem}.")
        selector[name] = _scalar_text(f"{key}.{name}", raw)
    return selector


def _env_name(key: str, name: Any) -> str:
    if not isinstance(name, str) or not _ENV_NAME.match(name):
        raise ConfigError(f"'{key}': {name!r} is not an environment variable name (A-Z, 0-9, '_').")
    if name.startswith(_RESERVED_ENV_PREFIX) or name in _RESERVED_ENV:
        raise ConfigError(
            f"'{key}': {name} is set by kedro-gcs-bridge itself (from its own config keys)."
        )
    return name


def as_env_vars(key: str, value: Any) -> dict[str, str]:
    """Plain, non-secret environment variables of every pod.

    Raises:
        ConfigError: A bad or reserved name, a non-scalar value, or a name that says it holds
            a credential (those come from a Secret: `secret_env`).
    """
    env = {}
    for name, raw in _mapping(key, value, "{LOG_LEVEL: INFO}").items():
        checked = _env_name(key, name)
        if _SECRET_WORDS.search(checked):
            raise ConfigError(
                f"'{key}': {checked} looks like a credential, and a DAG file is no place for "
                f"one. Put it in a Kubernetes Secret and use 'secret_env: {{{checked}: "
                "<secret>:<key>}'."
            )
        env[checked] = _scalar_text(f"{key}.{name}", raw)
    return env


def _secret_name(key: str, name: Any) -> str:
    if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise ConfigError(
            f"'{key}': {name!r} is not a Kubernetes Secret name (lowercase letters, digits, "
            "'-' and '.')."
        )
    return name


def as_secret_names(key: str, value: Any) -> tuple[str, ...]:
    """Kubernetes Secrets whose every key becomes an environment variable (envFrom)."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple):
        raise ConfigError(f"'{key}' must be a list of Secret names like [mlflow-auth].")
    return tuple(_secret_name(key, name) for name in names)


@dataclass(frozen=True)
class SecretRef:
    """One environment variable read from one key of a Kubernetes Secret."""

    env: str
    secret: str
    key: str


def _secret_ref(key: str, env: str, ref: Any) -> SecretRef:
    if isinstance(ref, str) and ref.count(":") == 1:
        secret, _, item = ref.partition(":")
    elif isinstance(ref, Mapping) and set(ref) == {"secret", "key"}:
        secret, item = ref["secret"], ref["key"]
    else:
        raise ConfigError(
            f"'{key}.{env}' must be '<secret>:<key>' or {{secret: <name>, key: <key>}}, "
            f"got {ref!r}."
        )
    if not isinstance(item, str) or not re.match(r"^[-._A-Za-z0-9]+$", item):
        raise ConfigError(f"'{key}.{env}': {item!r} is not a key of a Kubernetes Secret.")
    return SecretRef(env, _secret_name(f"{key}.{env}", secret), item)


def as_secret_env(key: str, value: Any) -> tuple[SecretRef, ...]:
    """Environment variables from Secret keys: `{MLFLOW_TRACKING_TOKEN: mlflow-auth:token}`.

    Raises:
        ConfigError: A bad variable name, Secret name or key.
    """
    refs = _mapping(key, value, "{MLFLOW_TRACKING_TOKEN: mlflow-auth:token}")
    return tuple(_secret_ref(key, _env_name(key, env), ref) for env, ref in refs.items())


def as_security_context(key: str, value: Any) -> dict[str, dict[str, Any]]:
    """`{pod: {...}, container: {...}}` merged field by field over the defaults.

    Raises:
        ConfigError: An unknown part or field, or `runAsNonRoot: true` with `runAsUser: 0`
            (the pod would never start).
    """
    given = _mapping(
        key, value, "{pod: {runAsUser: 1001}, container: {readOnlyRootFilesystem: true}}"
    )
    unknown = set(given) - set(_SECURITY_PARTS)
    if unknown:
        raise ConfigError(f"'{key}' has unknown part(s) {sorted(unknown)}; use pod and container.")
    merged = {"pod": dict(DEFAULT_POD_SECURITY), "container": dict(DEFAULT_CONTAINER_SECURITY)}
    for part, allowed in _SECURITY_PARTS.items():
        fields = _mapping(f"{key}.{part}", given.get(part) or {}, "{runAsUser: 1001}")
        bad = sorted(set(fields) - allowed)
        if bad:
            raise ConfigError(
                f"'{key}.{part}' has unknown field(s) {bad}; Kubernetes knows {sorted(allowed)}."
            )
        merged[part].update(fields)
        if merged[part].get("runAsNonRoot") and merged[part].get("runAsUser") == 0:
            raise ConfigError(
                f"'{key}.{part}': runAsUser 0 is root, and runAsNonRoot is true: the pod "
                "would never start."
            )
    return merged


def _toleration(key: str, item: Any) -> dict[str, Any]:
    example = "{key: dedicated, operator: Equal, value: ml, effect: NoSchedule}"
    fields = _fields(key, item, example, _TOLERATION_FIELDS, None)
    operator = fields.get("operator", "Equal")
    if operator not in ("Equal", "Exists"):
        raise ConfigError(f"'{key}': operator {operator!r} is not Equal or Exists.")
    if operator == "Exists" and fields.get("value"):
        raise ConfigError(f"'{key}': operator Exists takes no value.")
    if fields.get("effect", "") not in ("", *_TAINT_EFFECTS):
        raise ConfigError(
            f"'{key}': effect {fields['effect']!r} is not one of {list(_TAINT_EFFECTS)}."
        )
    return dict(fields)


def as_tolerations(key: str, value: Any) -> tuple[dict[str, Any], ...]:
    """Pod tolerations, in Kubernetes YAML form.

    Raises:
        ConfigError: Not a list of tolerations with known fields, operator and effect.
    """
    if not isinstance(value, list | tuple):
        raise ConfigError(f"'{key}' must be a list of tolerations, got {value!r}.")
    return tuple(_toleration(f"{key}[{i}]", item) for i, item in enumerate(value))


def as_affinity(key: str, value: Any) -> dict[str, Any]:
    """A pod affinity in Kubernetes YAML form (nodeAffinity, podAffinity, podAntiAffinity).

    Raises:
        ConfigError: Not a mapping of those fields, each a mapping.
    """
    nested = "{requiredDuringSchedulingIgnoredDuringExecution: ...}"
    return _fields(key, value, "{nodeAffinity: {...}}", _AFFINITY_FIELDS, nested)


def as_pod_template_file(key: str, value: Any) -> str:
    """The path of a pod template YAML on the Airflow workers (read when a task starts)."""
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or not value.endswith((".yaml", ".yml", ".json"))
    ):
        raise ConfigError(
            f"'{key}' must be an absolute path of a pod YAML on the Airflow workers, like "
            f"/opt/airflow/pod_templates/base.yaml, got {value!r}."
        )
    return value


def as_pod_override(key: str, value: Any) -> dict[str, Any]:
    """A partial pod (`metadata`, `spec`) in Kubernetes YAML form, merged under every pod.

    Raises:
        ConfigError: Other top-level fields, or a `spec.containers` that is not a list.
    """
    example = "{spec: {priorityClassName: batch}}"
    pod = _fields(key, value, example, _POD_OVERRIDE_FIELDS, "{...}")
    containers = pod.get("spec", {}).get("containers")
    if containers is not None and not (
        isinstance(containers, list) and all(isinstance(c, Mapping) for c in containers)
    ):
        raise ConfigError(f"'{key}.spec.containers' must be a list of containers.")
    return dict(pod)


def as_dotted_path(key: str, value: Any) -> str:
    """The import path of a callable, `package.module.function`, which the DAG file imports.

    Raises:
        ConfigError: Not a dotted path of Python identifiers (with a module part).
    """
    text = value.strip() if isinstance(value, str) else ""
    if not _DOTTED_PATH.match(text) or any(keyword.iskeyword(p) for p in text.split(".")):
        raise ConfigError(
            f"'{key}' must be the import path of a function, like my_team.alerts.notify, "
            f"got {value!r}."
        )
    return text


def as_params(key: str, value: Any) -> dict[str, Any]:
    """DAG params (the trigger form's defaults) passed to `kedro run --params`.

    Raises:
        ConfigError: A key Kedro cannot take, or a value that is not a plain scalar or holds a
            comma (`kedro run --params` splits on commas).
    """
    params = {}
    for name, raw in _mapping(key, value, "{learning_rate: 0.01, model: ridge}").items():
        if not isinstance(name, str) or not _PARAM_KEY.match(name):
            raise ConfigError(f"'{key}': {name!r} is not a Kedro parameter name like model.alpha.")
        if raw is not None and not isinstance(raw, str | int | float | bool):
            raise ConfigError(f"'{key}.{name}' must be text, a number or true/false: {raw!r}.")
        if isinstance(raw, str) and "," in raw:
            raise ConfigError(f"'{key}.{name}': `kedro run --params` cannot pass a ',' in {raw!r}.")
        params[name] = raw
    return params


@dataclass(frozen=True)
class Deadline:
    """An Airflow 3 deadline alert on each DAG run."""

    minutes: float
    callback: str
    reference: str = "queued_at"


def as_deadline(key: str, value: Any) -> Deadline:
    """`{minutes: 120, callback: my_team.alerts.late_run, reference: queued_at}`.

    Raises:
        ConfigError: Missing or unknown fields, or bad values (each field's key named).
    """
    fields = _mapping(key, value, "{minutes: 120, callback: my_team.alerts.late_run}")
    bad = sorted(set(fields) - {"minutes", "callback", "reference"})
    missing = sorted({"minutes", "callback"} - set(fields))
    if bad or missing:
        raise ConfigError(
            f"'{key}' needs minutes and callback (reference optional); unknown {bad}, "
            f"missing {missing}."
        )
    return Deadline(
        as_timeout_minutes(f"{key}.minutes", fields["minutes"]),
        as_dotted_path(f"{key}.callback", fields["callback"]),
        _one_of(f"{key}.reference", fields.get("reference", "queued_at"), DEADLINE_REFERENCES),
    )


#: The readers of this module's keys, for config.py's table.
READERS: dict[str, Callable[[str, Any], Any]] = {
    "execution_timeout": as_timeout_minutes,
    "dagrun_timeout": as_timeout_minutes,
    "pool": as_pool,
    "weight_rule": as_weight_rule,
    "on_finish_action": as_on_finish_action,
    "image_pull_policy": as_image_pull_policy,
    "security_context": as_security_context,
    "pod_labels": as_pod_labels,
    "pod_annotations": as_pod_annotations,
    "node_selector": as_node_selector,
    "env_vars": as_env_vars,
    "env_from_secrets": as_secret_names,
    "secret_env": as_secret_env,
    "tolerations": as_tolerations,
    "affinity": as_affinity,
    "pod_template_file": as_pod_template_file,
    "pod_override": as_pod_override,
    "on_failure_callback": as_dotted_path,
    "on_success_callback": as_dotted_path,
    "params": as_params,
    "deadline": as_deadline,
}
