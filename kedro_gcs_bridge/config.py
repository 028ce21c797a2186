"""The typed `airflow` config of a project (conf/<env>/airflow.yml): the only reader of it.

One pydantic model, nested by concern: the origin's kedro-airflow + GKE keys stay at the top
level with their meaning (`grouping_prefix`, `gcp_project_id`, `retry_delay` in minutes, ...);
pod spec knobs sit under `pod:`, tracking under `mlflow:`, other Airflow task arguments under
`default_args:`, other DAG arguments under `dag:` and the run prefix's data policies under
`handoff:`. Every value is checked with the rules Airflow, Kubernetes and MLflow apply later;
`parse_config` collects every problem, each naming its key path, into one `ConfigError`. The
old flat spellings (`pod_labels`, `mlflow_tracking_uri`, ...) are read with a one-line
deprecation warning naming the new one. The config reference (docs/config.md) and the init file
are generated from the fields here (`python -m kedro_gcs_bridge.config` rewrites both).
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import difflib
import functools
import itertools
import json
import keyword
import math
import os
import re
import warnings
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic.dataclasses import rebuild_dataclass

from kedro_gcs_bridge.errors import ConfigError, DeprecatedKeyWarning
from kedro_gcs_bridge.values import (
    MIB,
    bool_value,
    byte_size_value,
    count_value,
    cpu_millis,
    memory_bytes,
    root_url_value,
)


class _InvalidError(ValueError):
    """What is wrong with a value; `at` continues the key path below the field."""

    def __init__(self, problem: str, *at: str | int) -> None:
        super().__init__(problem)
        self.at = at


def _check(read: Callable[[Any], Any]) -> BeforeValidator:
    return BeforeValidator(read)


# --- plain values ------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None or isinstance(value, Mapping | list | tuple):
        raise _InvalidError(f"must be a plain value (text, number, true/false), got {value!r}.")
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _minutes(value: Any, above_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        bound = "> 0" if above_zero else ">= 0"
        raise _InvalidError(f"is in minutes and must be a number {bound}, got {value!r}.")
    if value < 0 or (above_zero and value == 0):
        raise _InvalidError(
            f"is in minutes and must be {'> 0' if above_zero else '>= 0'}, got {value}."
        )
    return float(value)


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise _InvalidError(f"must be a number of seconds > 0, got {value!r}.")
    return float(value)


def _start_date(value: Any) -> tuple[int, ...]:
    if isinstance(value, dt.datetime):
        return (value.year, value.month, value.day, value.hour, value.minute)
    if isinstance(value, dt.date):
        return (value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            parsed = dt.date.fromisoformat(value)
        except ValueError as exc:
            raise _InvalidError(
                f"{value!r} is not a date; write [2023, 1, 1] or '2023-01-01'."
            ) from exc
        return (parsed.year, parsed.month, parsed.day)
    if isinstance(value, list | tuple) and 3 <= len(value) <= 6:
        try:
            parts = tuple(int(part) for part in value)
            dt.datetime(*parts)
        except (TypeError, ValueError) as exc:
            raise _InvalidError(f"{list(value)} is not a valid date: {exc}.") from exc
        return parts
    raise _InvalidError(f"must be a list like [2023, 1, 1], got {value!r}.")


def _tag_prefix(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _InvalidError("must be a non-empty string like 'airflow.'.")
    if ":" in value:
        dot = value.replace(":", ".")
        raise _InvalidError(
            rf"'{value}' cannot match any node: Kedro 1.x only accepts tags matching [\w.-]+, "
            f"so tags with ':' are rejected when the pipeline is built. Tag nodes "
            f"'{dot}<name>' and set '{dot}' instead."
        )
    return value


def _words(value: Any) -> tuple[str, ...]:
    """A list of names or tags: a list, or one string (comma-separated names)."""
    listed = [part.strip() for part in value.split(",")] if isinstance(value, str) else value
    if isinstance(listed, list | tuple) and all(
        isinstance(item, str | int) and not isinstance(item, bool) and str(item) for item in listed
    ):
        return tuple(str(item) for item in listed)
    raise _InvalidError(f"must be a list of names like [nightly, metrics], got {value!r}.")


_GROUP_NAME = re.compile(r"^[\w.-]+$")
_SELECTOR_KINDS = ("tag:", "namespace:", "namespace=")


def _groups(value: Any) -> dict[str, tuple[str, ...]]:
    """`groups:`: group name -> node names or selectors (`tag:<tag>`, `namespace:<ns>`,
    `namespace=<ns>`)."""
    example = "like {split: [create_model_input_table_node, split_data_node]}"
    if not isinstance(value, Mapping):
        raise _InvalidError(f"must map group names to lists of nodes, {example}.")
    groups: dict[str, tuple[str, ...]] = {}
    for name, entries in value.items():
        if not isinstance(name, str) or not _GROUP_NAME.match(name):
            raise _InvalidError(
                f"group name {name!r} must be letters, digits, '_', '.' or '-' (as in an "
                "airflow.<group> tag)."
            )
        listed = [entries] if isinstance(entries, str) else entries
        if not isinstance(listed, list | tuple) or not listed:
            raise _InvalidError(f"must list its nodes, {example}.", name)
        bad = [e for e in listed if not isinstance(e, str) or not e or e in _SELECTOR_KINDS]
        if bad:
            raise _InvalidError(
                f"has entries {bad!r} that are not node names, 'tag:<tag>', "
                "'namespace:<namespace>' (nested namespaces too) or 'namespace=<namespace>' "
                "(that namespace alone).",
                name,
            )
        groups[name] = tuple(listed)
    return groups


def _root_url(value: Any) -> str:
    return "" if value == "" else root_url_value(value)  # "": unset, a missing deployment key


Bool = Annotated[bool, _check(bool_value)]
Count = Annotated[int, _check(count_value)]
AtLeastOne = Annotated[int, _check(lambda value: count_value(value, 1))]
Text = Annotated[str, _check(_text)]
Minutes = Annotated[float, _check(_minutes)]
RootUrl = Annotated[str, _check(_root_url)]

# --- Airflow and MLflow rules ------------------------------------------------------------------

#: Airflow 3's schedule presets (`@once`, `@continuous` and its CRON_PRESETS).
AIRFLOW_PRESETS = (
    "@once",
    "@continuous",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@quarterly",
    "@yearly",
)
#: Airflow's KEY_REGEX for DAG and task ids, and their length limit.
DAG_ID = re.compile(r"^[\w.-]+$")
DAG_ID_MAX = 250
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _schedule(value: Any) -> str | None:
    """None, an Airflow preset, or a cron expression croniter (Airflow's parser) accepts."""
    if value is None or str(value) in AIRFLOW_PRESETS:
        return None if value is None else str(value)
    text = str(value)
    try:
        from croniter import croniter
    except ImportError as exc:  # pragma: no cover - the `dag` extra installs it
        raise _InvalidError(
            "needs croniter to be checked: pip install 'kedro-gcs-bridge[dag]'"
        ) from exc
    try:
        croniter(text)
    except (ValueError, KeyError) as exc:  # croniter's errors are ValueErrors
        close = difflib.get_close_matches(text, AIRFLOW_PRESETS, n=1) if text[:1] == "@" else []
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise _InvalidError(
            f"{text!r} is not a cron expression or an Airflow preset{hint}: "
            f"{str(exc).rstrip('.')}. Write a cron like '0 3 * * *' or one of "
            f"{list(AIRFLOW_PRESETS)}."
        ) from exc
    return text


def _on_inputs(value: Any) -> Literal[False, "all", "any"]:
    """`dag.schedule_on_inputs`: false (off), `all` or `any`."""
    if value is None or value is False or str(value).lower() in ("false", "no", "off"):
        return False
    if value in ("all", "any"):
        return value
    raise _InvalidError(
        f"must be `all` (run once every input another pipeline's DAG makes was updated), "
        f"`any` (once one was) or false, got {value!r}."
    )


def _dag_id(value: Any) -> str:
    text = str(value)
    if not DAG_ID.match(text):
        raise _InvalidError(
            f"{text!r} may only hold letters, digits, '_', '.' and '-' (Airflow's rule)."
        )
    if len(text) > DAG_ID_MAX:
        raise _InvalidError(f"is {len(text)} characters long; Airflow allows {DAG_ID_MAX}.")
    return text


def _kubernetes_name(pattern: re.Pattern[str], limit: int) -> Callable[[Any], str]:
    def read(value: Any) -> str:
        text = str(value)
        if not pattern.match(text):
            dots = " and ." if pattern is _DNS_SUBDOMAIN else ""
            raise _InvalidError(
                f"{text!r} is not an RFC 1123 name: lowercase letters, digits and '-'{dots}, "
                "starting and ending with a letter or digit."
            )
        if len(text) > limit:
            raise _InvalidError(f"is {len(text)} characters long; Kubernetes allows {limit}.")
        return text

    return read


def _url_problem(uri: str, example: str | None) -> str | None:
    """With `example`, the URI needs a local absolute path; without, a host."""
    parts = urlsplit(uri)
    if example is None:
        return None if parts.hostname else f"write {parts.scheme}://host[:port][/path]"
    ok = parts.netloc in {"", "localhost"} and parts.path.startswith("/") and parts.path != "/"
    return None if ok else f"write {example}"


def _databricks(uri: str) -> str | None:
    ok = uri in {"databricks", "databricks-uc"} or urlsplit(uri).netloc
    return None if ok else "write databricks"


#: MLflow's tracking stores by scheme, each with the check of the URI's shape.
_TRACKING_SCHEMES: dict[str, Callable[[str], str | None]] = {
    **dict.fromkeys(
        ("http", "https", "postgresql", "mysql", "mssql"), lambda u: _url_problem(u, None)
    ),
    "databricks": _databricks,
    "databricks-uc": _databricks,
    "file": lambda uri: _url_problem(uri, "file:///absolute/path/mlruns"),
    "sqlite": lambda uri: _url_problem(uri, "sqlite:///absolute/path/mlflow.db"),
}


def _tracking_uri(value: Any) -> str:
    """An MLflow tracking URI of a known store, in its shape, without a password."""
    text = str(value).strip()
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        password = None
    if password is not None:
        host = parts.netloc.rsplit("@", 1)[-1]
        shown = parts._replace(netloc=f"{parts.username}:***@{host}").geturl()
        raise _InvalidError(
            f"holds a password ({shown}): the DAG file would carry it in plain text. Write the "
            "URI without credentials and give pods MLFLOW_TRACKING_USERNAME / "
            "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) from a Kubernetes Secret."
        )
    scheme = text if text in {"databricks", "databricks-uc"} else urlsplit(text).scheme
    check = _TRACKING_SCHEMES.get(scheme.split("+", 1)[0].lower())
    if check is None:
        close = difflib.get_close_matches(scheme, list(_TRACKING_SCHEMES), n=1) if scheme else []
        hint = f"did you mean '{close[0]}'? " if close else ""
        if not scheme:
            hint = "a path is not a URI: write file:///absolute/path/mlruns. "
        raise _InvalidError(
            f"{text!r} is not an MLflow tracking URI: {hint}Known schemes: "
            f"{sorted(_TRACKING_SCHEMES)}."
        )
    problem = check(text)
    if problem:
        raise _InvalidError(f"{text!r} misses its host or path: {problem}.")
    return text


_DOTTED_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
_PARAM_KEY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _dotted_path(value: Any) -> str:
    """The import path of a callable, `package.module.function`, which the DAG file imports."""
    text = value.strip() if isinstance(value, str) else ""
    if not _DOTTED_PATH.match(text) or any(keyword.iskeyword(p) for p in text.split(".")):
        raise _InvalidError(
            f"must be the import path of a function, like my_team.alerts.notify, got {value!r}."
        )
    return text


def _params(value: Any) -> dict[str, Any]:
    """DAG params: Kedro parameter names, scalars `kedro run --params` can pass (no ',')."""
    params = {}
    for name, raw in _mapping(value, "{learning_rate: 0.01, model: ridge}").items():
        if not isinstance(name, str) or not _PARAM_KEY.match(name):
            raise _InvalidError(f"{name!r} is not a Kedro parameter name like model.alpha.")
        if raw is not None and not isinstance(raw, str | int | float | bool):
            raise _InvalidError(f"must be text, a number or true/false: {raw!r}.", name)
        if isinstance(raw, str) and "," in raw:
            raise _InvalidError(f"`kedro run --params` cannot pass a ',' in {raw!r}.", name)
        params[name] = raw
    return params


def _pool(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise _InvalidError(f"must be the name of an Airflow pool, got {value!r}.")
    return value


def _as_is(value: Any) -> Any:
    """A value the DAG file writes as a literal: text, numbers, booleans, lists, mappings."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_as_is(item) for item in value]
    if isinstance(value, Mapping) and all(isinstance(key, str) for key in value):
        return {key: _as_is(item) for key, item in value.items()}
    raise _InvalidError(f"must be text, a number, true/false, a list or a mapping, got {value!r}.")


DottedPath = Annotated[str, _check(_dotted_path)]

# --- Kubernetes rules --------------------------------------------------------------------------

#: The image recipe in docker/ creates this user and group (`useradd --uid 1000 --gid 1000`).
IMAGE_UID = 1000
IMAGE_GID = 1000
#: What Autopilot's policies accept and a reviewer expects: no root, no new privileges, no
#: capabilities, the runtime's default seccomp profile. `pod.security_context` overrides fields.
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
_COMMON_SECURITY = {"appArmorProfile", "runAsGroup", "runAsNonRoot", "runAsUser"}
_COMMON_SECURITY |= {"seLinuxOptions", "seccompProfile", "windowsOptions"}
#: Kubernetes PodSecurityContext and SecurityContext fields (core/v1).
_SECURITY_PARTS = {
    "pod": frozenset(
        {"fsGroup", "fsGroupChangePolicy", "supplementalGroups", "supplementalGroupsPolicy"}
        | {"sysctls"}
        | _COMMON_SECURITY
    ),
    "container": frozenset(
        {"allowPrivilegeEscalation", "capabilities", "privileged", "procMount"}
        | {"readOnlyRootFilesystem"}
        | _COMMON_SECURITY
    ),
}
#: Labels the bridge and Airflow's pod operator set themselves: a user label would be lost.
BRIDGE_LABEL_PREFIX = "kedro-gcs-bridge/"
_RESERVED_LABELS = frozenset(
    {"app.kubernetes.io/managed-by", "dag_id", "task_id", "run_id", "try_number", "map_index"}
    | {"kubernetes_pod_operator", "airflow_version", "airflow_kpo_in_cluster", "already_checked"}
)
#: The bridge's own pod environment (pod/context.py) and the tracking URI (its own key).
_RESERVED_ENV_PREFIX = "KEDRO_GCS_BRIDGE_"
_RESERVED_ENV = frozenset({"MLFLOW_TRACKING_URI"})
#: Names that say "credential": such values belong in a Kubernetes Secret (secret_env).
_SECRET_WORDS = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|CREDENTIAL|PRIVATE_KEY|API_KEY")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

COMPUTE_CLASS_KEY = "cloud.google.com/compute-class"
SPOT_KEY = "cloud.google.com/gke-spot"
ACCELERATOR_KEY = "cloud.google.com/gke-accelerator"
MACHINE_FAMILY_KEY = "cloud.google.com/machine-family"
ARCH_KEY = "kubernetes.io/arch"
GPU_RESOURCE = "nvidia.com/gpu"
#: The node selector keys machine classes set (a DAG-wide `pod.node_selector` must not).
SELECTOR_KEYS = (COMPUTE_CLASS_KEY, SPOT_KEY, ACCELERATOR_KEY, MACHINE_FAMILY_KEY, ARCH_KEY)


def _mapping(value: Any, example: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _InvalidError(f"must be a mapping like {example}, got {value!r}.")
    return value


def _only(value: Any, example: str, allowed: frozenset[str], nested: bool) -> dict[str, Any]:
    """A mapping with only `allowed` keys; with `nested`, each value a mapping too."""
    fields = _mapping(value, example)
    bad = sorted(set(fields) - allowed)
    if bad:
        raise _InvalidError(f"has unknown field(s) {bad}; allowed: {sorted(allowed)}.")
    for name, part in fields.items() if nested else ():
        if not isinstance(part, Mapping):
            raise _InvalidError(f"must be a mapping, got {part!r}.", name)
    return dict(fields)


def _label_key(name: Any, owned: bool = True) -> str:
    """A Kubernetes label/annotation key ([prefix/]name); `owned`: not one the bridge sets."""
    prefix, _, short = name.rpartition("/") if isinstance(name, str) else ("", "", "")
    problem = None
    if not isinstance(name, str):
        problem = "it is not a string"
    elif prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        problem = "its prefix must be a DNS subdomain (lowercase, digits, '-', '.')"
    elif not short or len(short) > 63 or not _LABEL_NAME.match(short):
        problem = "its name must be 1-63 letters, digits, '-', '_' or '.', alphanumeric at each end"
    if problem:
        raise _InvalidError(f"{name!r} is not a Kubernetes label key: {problem}.")
    if owned and (name in _RESERVED_LABELS or name.startswith(BRIDGE_LABEL_PREFIX)):
        raise _InvalidError(
            f"{name!r} is set by kedro-gcs-bridge or Airflow on every pod; choose another key."
        )
    return name


def _item(read: Callable[[Any], Any], value: Any, name: str) -> Any:
    """`read(value)`, its problem placed below `name`."""
    try:
        return read(value)
    except _InvalidError as exc:
        raise _InvalidError(str(exc), name, *exc.at) from exc


def _labels(value: Any) -> dict[str, str]:
    labels = {}
    for name, raw in _mapping(value, "{team: data, cost-center: cc-42}").items():
        text = _item(_text, raw, name)
        if len(text) > 63 or (text and not _LABEL_NAME.match(text)):
            raise _InvalidError(
                f"{text!r} is not a Kubernetes label value: at most 63 letters, digits, '-', '_' "
                "or '.', alphanumeric at each end. Use pod.annotations for free text.",
                name,
            )
        labels[_label_key(name)] = text
    return labels


def _annotations(value: Any) -> dict[str, str]:
    example = "{policy.example.com/owner: data-team}"
    return {_label_key(k): _item(_text, v, k) for k, v in _mapping(value, example).items()}


def _node_selector(value: Any) -> dict[str, str]:
    example = "{cloud.google.com/gke-nodepool: x}"
    selector = {
        _label_key(k, False): _item(_text, v, k) for k, v in _mapping(value, example).items()
    }
    owned = sorted(set(selector) & set(SELECTOR_KEYS))
    if owned:
        raise _InvalidError(
            f"sets {owned}, which machine classes set (compute_class, spot, accelerator, "
            "machine_family, arch): set them under machine_classes instead."
        )
    return selector


def _env_name(name: Any) -> str:
    if not isinstance(name, str) or not _ENV_NAME.match(name):
        raise _InvalidError(f"{name!r} is not an environment variable name (A-Z, 0-9, '_').")
    if name.startswith(_RESERVED_ENV_PREFIX) or name in _RESERVED_ENV:
        raise _InvalidError(f"{name} is set by kedro-gcs-bridge itself (from its own config keys).")
    return name


def _env(value: Any) -> dict[str, str]:
    env = {}
    for name, raw in _mapping(value, "{LOG_LEVEL: INFO}").items():
        if _SECRET_WORDS.search(_env_name(name)):
            raise _InvalidError(
                f"{name} looks like a credential, and a DAG file is no place for one. Put it in "
                f"a Kubernetes Secret and use 'pod.secret_env: {{{name}: <secret>:<key>}}'."
            )
        env[name] = _item(_text, raw, name)
    return env


def _secret_name(name: Any) -> str:
    if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise _InvalidError(
            f"{name!r} is not a Kubernetes Secret name (lowercase letters, digits, '-' and '.')."
        )
    return name


def _secret_names(value: Any) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple):
        raise _InvalidError("must be a list of Secret names like [mlflow-auth].")
    return tuple(_secret_name(name) for name in names)


@dataclasses.dataclass(frozen=True)
class SecretRef:
    """One environment variable read from one key of a Kubernetes Secret."""

    env: str
    secret: str
    key: str


def _secret_ref(env: str, ref: Any) -> SecretRef:
    if isinstance(ref, str) and ref.count(":") == 1:
        secret, _, item = ref.partition(":")
    elif isinstance(ref, Mapping) and set(ref) == {"secret", "key"}:
        secret, item = ref["secret"], ref["key"]
    else:
        raise _InvalidError(
            f"must be '<secret>:<key>' or {{secret: <name>, key: <key>}}, got {ref!r}."
        )
    if not isinstance(item, str) or not re.match(r"^[-._A-Za-z0-9]+$", item):
        raise _InvalidError(f"{item!r} is not a key of a Kubernetes Secret.")
    return SecretRef(env, _secret_name(secret), item)


def _secret_env(value: Any) -> tuple[SecretRef, ...]:
    refs = _mapping(value, "{MLFLOW_TRACKING_TOKEN: mlflow-auth:token}")
    return tuple(
        ref
        if isinstance(ref, SecretRef)
        else _item(lambda r, e=env: _secret_ref(_env_name(e), r), ref, env)
        for env, ref in refs.items()
    )


def _security_context(value: Any) -> dict[str, dict[str, Any]]:
    """`{pod: {...}, container: {...}}` merged field by field over the defaults."""
    example = "{pod: {runAsUser: 1001}, container: {readOnlyRootFilesystem: true}}"
    given = _mapping(value, example)
    unknown = set(given) - set(_SECURITY_PARTS)
    if unknown:
        raise _InvalidError(f"has unknown part(s) {sorted(unknown)}; use pod and container.")
    merged = {"pod": dict(DEFAULT_POD_SECURITY), "container": dict(DEFAULT_CONTAINER_SECURITY)}
    for part, allowed in _SECURITY_PARTS.items():
        fields = _item(lambda v: _mapping(v, "{runAsUser: 1001}"), given.get(part) or {}, part)
        bad = sorted(set(fields) - allowed)
        if bad:
            raise _InvalidError(
                f"has unknown field(s) {bad}; Kubernetes knows {sorted(allowed)}.", part
            )
        merged[part].update(fields)
        if merged[part].get("runAsNonRoot") and merged[part].get("runAsUser") == 0:
            raise _InvalidError(
                "runAsUser 0 is root, and runAsNonRoot is true: the pod would never start.", part
            )
    return merged


def _toleration(item: Any) -> dict[str, Any]:
    example = "{key: dedicated, operator: Equal, value: ml, effect: NoSchedule}"
    allowed = frozenset({"key", "operator", "value", "effect", "tolerationSeconds"})
    fields = _only(item, example, allowed, nested=False)
    operator = fields.get("operator", "Equal")
    if operator not in ("Equal", "Exists"):
        raise _InvalidError(f"operator {operator!r} is not Equal or Exists.")
    if operator == "Exists" and fields.get("value"):
        raise _InvalidError("operator Exists takes no value.")
    if fields.get("effect", "") not in ("", *_TAINT_EFFECTS):
        raise _InvalidError(f"effect {fields['effect']!r} is not one of {list(_TAINT_EFFECTS)}.")
    return fields


def _tolerations(value: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list | tuple):
        raise _InvalidError(f"must be a list of tolerations, got {value!r}.")
    return tuple(_item(_toleration, item, i) for i, item in enumerate(value))  # type: ignore[arg-type]


def _affinity(value: Any) -> dict[str, Any]:
    allowed = frozenset({"nodeAffinity", "podAffinity", "podAntiAffinity"})
    return _only(value, "{nodeAffinity: {...}}", allowed, nested=True)


def _template_file(value: Any) -> str:
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or not value.endswith((".yaml", ".yml", ".json"))
    ):
        raise _InvalidError(
            "must be an absolute path of a pod YAML on the Airflow workers, like "
            f"/opt/airflow/pod_templates/base.yaml, got {value!r}."
        )
    return value


def _override(value: Any) -> dict[str, Any]:
    pod = _only(value, "{spec: {priorityClassName: batch}}", frozenset({"metadata", "spec"}), True)
    containers = pod.get("spec", {}).get("containers")
    if containers is not None and not (
        isinstance(containers, list) and all(isinstance(c, Mapping) for c in containers)
    ):
        raise _InvalidError("must be a list of containers.", "spec", "containers")
    return pod


PullPolicy = Literal["Always", "IfNotPresent", "Never"]
Tolerations = Annotated[tuple[dict[str, Any], ...], _check(_tolerations)]
Affinity = Annotated[dict[str, Any], _check(_affinity)]

# --- the model ---------------------------------------------------------------------------------


#: Each model is built once, at import, by `_build_models` (below), not as its class is made.
_STRICT = ConfigDict(frozen=True, extra="forbid", defer_build=True)


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid", defer_build=True))
class MachineClass:
    """A named pod size (`machine.<name>` tag): resource requests plus the node selectors that
    pick the hardware, and pod settings of its tasks over the DAG-wide keys."""

    name: str
    cpu: Text = "500m"
    """CPU request, a Kubernetes quantity"""
    memory: Text = "2Gi"
    """memory request"""
    ephemeral_storage: Text = "1Gi"
    """ephemeral storage request"""
    compute_class: Text | None = None
    """Autopilot compute class; none = general-purpose"""
    spot: Bool = False
    """Spot pods: cheaper, preemptible (tasks get spot_retries more)"""
    accelerator: Text | None = None
    """GPU type (cloud.google.com/gke-accelerator)"""
    gpu_count: Count = 0
    """nvidia.com/gpu limit"""
    machine_family: Text | None = None
    """cloud.google.com/machine-family"""
    arch: Text | None = None
    """kubernetes.io/arch (arm64 needs Scale-Out)"""
    execution_timeout: Minutes | None = None
    """minutes; over default_args.execution_timeout"""
    image_pull_policy: PullPolicy | None = None
    """over pod.image_pull_policy"""
    tolerations: Tolerations | None = None
    """over pod.tolerations, Kubernetes YAML form"""
    affinity: Affinity | None = None
    """over pod.affinity, Kubernetes YAML form"""

    def requests(self) -> dict[str, str]:
        """The pod's resource requests."""
        return {"cpu": self.cpu, "memory": self.memory, "ephemeral-storage": self.ephemeral_storage}

    def limits(self) -> dict[str, str]:
        """The pod's resource limits: only GPUs (Autopilot derives the rest from requests)."""
        return {GPU_RESOURCE: str(self.gpu_count)} if self.gpu_count else {}

    def node_selector(self) -> dict[str, str]:
        """The node selectors that make Autopilot provision the right hardware."""
        values = (self.compute_class, "true" if self.spot else None, self.accelerator)
        values += (self.machine_family, self.arch)
        return {key: value for key, value in zip(SELECTOR_KEYS, values, strict=True) if value}

    def size_key(self) -> tuple[int, float, float]:
        """Orders classes from smallest to largest: GPUs, then CPU, then memory."""
        return (self.gpu_count, cpu_millis(self.cpu), memory_bytes(self.memory))

    def describe(self) -> str:
        """One line for plans and messages: requests and selectors."""
        parts = [f"cpu={self.cpu}", f"memory={self.memory}", f"ephemeral={self.ephemeral_storage}"]
        parts += [f"{key}={value}" for key, value in self.limits().items()]
        parts += [f"{key}={value}" for key, value in self.node_selector().items()]
        return " ".join(parts)


DEFAULT_CLASS = "default"
CLASS_FIELDS = tuple(f.name for f in dataclasses.fields(MachineClass) if f.name != "name")


def _machine_classes(raw: Any) -> dict[str, Any]:
    """`machine_classes:` over the built-ins: a known name keeps the figures it does not set, a
    new name starts from the default class's."""
    if raw is not None and not isinstance(raw, Mapping):
        raise _InvalidError(
            "must be a mapping of class name to its figures, like {big: {cpu: '4', memory: "
            f"16Gi}}, got {type(raw).__name__} {raw!r}."
        )
    classes: dict[str, Any] = dict(BUILTIN_CLASSES)
    for name, spec in (raw or {}).items():
        if isinstance(spec, MachineClass):
            classes[str(name)] = spec
            continue
        if not isinstance(spec, Mapping):
            raise _InvalidError(
                f"must be a mapping of {list(CLASS_FIELDS)}, got {spec!r}.", str(name)
            )
        base = classes.get(str(name), BUILTIN_CLASSES[DEFAULT_CLASS])
        given = {str(key).replace("-", "_"): value for key, value in spec.items()}
        figures = {f: getattr(base, f) for f in CLASS_FIELDS}
        classes[str(name)] = {**figures, **given, "name": str(name)}
    return classes


class _Group(BaseModel):
    model_config = _STRICT


class Deadline(_Group):
    """An Airflow 3 deadline alert on each DAG run."""

    minutes: Minutes
    callback: DottedPath
    reference: Literal["queued_at", "logical_date"] = "queued_at"


class PodSettings(_Group):
    """`pod:`: the Kubernetes pod of every task, in Kubernetes' own field names."""

    labels: Annotated[dict[str, str], _check(_labels)] = {}
    """extra labels (cost attribution, policy); the bridge's and Airflow's own are refused"""
    annotations: Annotated[dict[str, str], _check(_annotations)] = {}
    """extra annotations (any text values)"""
    security_context: Annotated[dict[str, dict[str, Any]], _check(_security_context)] = Field(
        default_factory=lambda: _security_context({})
    )
    """`{pod: {...}, container: {...}}` merged field by field over the defaults: pod `runAsNonRoot:
    true`, `runAsUser`/`runAsGroup`/`fsGroup` 1000 (the image's user), `seccompProfile:
    RuntimeDefault`; container `allowPrivilegeEscalation: false`, `capabilities: {drop: [ALL]}`,
    `runAsNonRoot: true`"""
    env: Annotated[dict[str, str], _check(_env)] = {}
    """plain, non-secret variables; names that say PASSWORD/TOKEN/SECRET/... are refused (use
    `pod.secret_env`)"""
    env_from_secrets: Annotated[tuple[str, ...], _check(_secret_names)] = ()
    """Kubernetes Secrets whose every key becomes a variable (envFrom)"""
    secret_env: Annotated[tuple[SecretRef, ...], _check(_secret_env)] = ()
    """`{VAR: <secret>:<key>}`: one variable from one Secret key; only names reach the DAG file"""
    node_selector: Annotated[dict[str, str], _check(_node_selector)] = {}
    """extra node selectors (compute class, Spot, GPU, machine family and arch belong to machine
    classes)"""
    tolerations: Tolerations = ()
    """in Kubernetes YAML form; a machine class's own win"""
    affinity: Affinity | None = None
    """in Kubernetes YAML form; a machine class's own wins"""
    template_file: Annotated[str, _check(_template_file)] | None = None
    """absolute path of a pod YAML on the Airflow workers, under every pod"""
    override: Annotated[dict[str, Any], _check(_override)] | None = None
    """`{metadata: ..., spec: ...}` merged under every pod (the keys above win)"""
    image_pull_policy: PullPolicy | None = None
    """`Always`, `IfNotPresent`, `Never`; a machine class's own wins"""
    on_finish_action: Literal["delete_succeeded_pod", "delete_pod", "keep_pod"] = (
        "delete_succeeded_pod"
    )
    """failed pods stay for `kubectl logs` / `describe`"""
    schedule_timeout_seconds: Count = 1200
    """Autopilot may need minutes to add a node"""
    startup_timeout_seconds: Count = 600
    """image pull and start"""
    deferrable: Bool = False
    """no Airflow worker slot is held while a pod runs"""
    gcp_conn_id: Text = "google_cloud_default"
    """Airflow connection that reaches the cluster"""
    use_dns_endpoint: Bool = False
    """reach the cluster by its DNS endpoint"""
    use_internal_ip: Bool = False
    """reach the cluster by its private IP"""
    structured_logs: Bool = False
    """pods log JSON lines with severity and dag_id/task/run_id labels (Cloud Logging)"""


class MlflowSettings(_Group):
    """`mlflow:`: one MLflow parent run per DAG run, a child run per group."""

    tracking_uri: Annotated[str, _check(_tracking_uri)] | None = None
    """MLflow on (none = off): `http(s)://host`, `databricks[://profile]`, `file:///abs/path`,
    `sqlite:///abs/path.db`, `postgresql`/`mysql`/`mssql[+driver]://host/db`; a token goes in
    `pod.secret_env`"""
    experiment: Text | None = None
    """experiment of the parent runs"""
    required: Bool = False
    """`true`: a tracking failure fails the task; `false`: best effort"""
    metrics: Annotated[tuple[str, ...], _check(_words)] = ()
    """datasets whose values (a number, or a dict of numbers) are logged as metrics on the child run
    of the group that outputs them"""
    budget_seconds: Annotated[float, _check(_seconds)] = 30
    """seconds all tracking calls of one pod may take; then tracking is off for the pod"""


#: Airflow task arguments `default_args:` passes as they are (a subset of BaseOperator's).
TASK_ARGS_AS_IS = frozenset(
    {"email", "queue", "executor", "executor_config", "max_active_tis_per_dag"}
    | {"max_active_tis_per_dagrun", "max_retry_delay", "retry_exponential_backoff"}
    | {"run_as_user", "trigger_rule", "wait_for_downstream", "ignore_first_depends_on_past"}
    | {"wait_for_past_depends_before_skipping", "logger_name", "sla"}
)
TASK_CALLBACKS = ("on_failure_callback", "on_success_callback", "on_retry_callback")
TASK_CALLBACKS += ("on_execute_callback", "on_skipped_callback")
#: DAG arguments `dag:` passes as they are (a subset of DAG's).
DAG_ARGS_AS_IS = frozenset(
    {"max_active_tasks", "max_consecutive_failed_dag_runs", "is_paused_upon_creation"}
    | {"fail_fast", "dag_display_name", "owner_links", "access_control", "template_searchpath"}
    | {"render_template_as_native_obj"}
)
#: Keys the top level holds (the origin's): never under `default_args:`.
_TOP_TASK_ARGS = ("owner", "depends_on_past", "email_on_failure", "email_on_retry", "retries")
_TOP_TASK_ARGS += ("retry_delay",)


class _AsIs(_Group):
    """A group that also passes other Airflow arguments as they are (`_as_is` names them)."""

    model_config = ConfigDict(frozen=True, extra="allow", defer_build=True)
    _as_is: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _check_as_is(self) -> _AsIs:
        for name, value in (self.model_extra or {}).items():
            if name in _TOP_TASK_ARGS:
                raise _InvalidError(
                    f"is a top-level key of the airflow config: set '{name}' there.", name
                )
            if name not in self._as_is:
                close = difflib.get_close_matches(name, [*self._as_is, *type(self).model_fields])
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise _InvalidError(
                    f"is not an argument the DAG passes as is{hint}; known: "
                    f"{sorted([*type(self).model_fields, *self._as_is])}.",
                    name,
                )
            _item(_as_is, value, name)
        return self

    def as_is(self) -> dict[str, Any]:
        """The other arguments, as given."""
        return {name: _as_is(value) for name, value in (self.model_extra or {}).items()}


class DefaultArgs(_AsIs):
    """`default_args:`: Airflow arguments of every task; these others pass as they are:
    `email`, `queue`, `executor`, `executor_config`, `max_active_tis_per_dag`,
    `max_active_tis_per_dagrun`, `max_retry_delay`, `retry_exponential_backoff`, `run_as_user`,
    `trigger_rule`, `wait_for_downstream`, `ignore_first_depends_on_past`,
    `wait_for_past_depends_before_skipping`, `logger_name`, `sla`."""

    _as_is = TASK_ARGS_AS_IS
    execution_timeout: Minutes | None = None
    """minutes a task may run (> 0); a machine class's own wins"""
    pool: Annotated[str, _check(_pool)] | None = None
    """Airflow pool of every task (create it in Airflow)"""
    pool_slots: AtLeastOne = 1
    """slots each task takes in its pool"""
    priority_weight: Count = 1
    """Airflow priority"""
    weight_rule: Literal["downstream", "upstream", "absolute"] = "downstream"
    """how priority weights add up"""
    on_failure_callback: DottedPath | None = None
    """import path of a function called when a task fails (also `on_success_callback`,
    `on_retry_callback`, `on_execute_callback`, `on_skipped_callback`)"""
    on_success_callback: DottedPath | None = None
    """likewise, when a task succeeds"""
    on_retry_callback: DottedPath | None = None
    """likewise, when a task is retried"""
    on_execute_callback: DottedPath | None = None
    """likewise, when a task starts"""
    on_skipped_callback: DottedPath | None = None
    """likewise, when a task is skipped"""


class DagSettings(_AsIs):
    """`dag:`: arguments of the DAG beyond the top-level ones; these others pass as they are:
    `max_active_tasks`, `max_consecutive_failed_dag_runs`, `is_paused_upon_creation`,
    `fail_fast`, `dag_display_name`, `owner_links`, `access_control`, `template_searchpath`,
    `render_template_as_native_obj`."""

    _as_is = DAG_ARGS_AS_IS
    tags: Annotated[tuple[str, ...], _check(_words)] = ()
    """extra Airflow tags"""
    doc_md: Text | None = None
    """text put first in the DAG's doc in Airflow's UI"""
    params: Annotated[dict[str, Any], _check(_params)] = {}
    """trigger-form params passed to every group's `kedro run --params` as rendered for the run;
    scalars without `,`"""
    dagrun_timeout: Minutes | None = None
    """minutes a DAG run may take (> 0)"""
    deadline: Deadline | None = None
    """`{minutes: N, callback: import.path, reference: queued_at or logical_date}`: an Airflow 3
    deadline alert per DAG run"""
    on_failure_callback: DottedPath | None = None
    """import path of a function called when a DAG run fails (also `on_success_callback`); it must
    be importable on the scheduler and workers"""
    on_success_callback: DottedPath | None = None
    """likewise, when a DAG run succeeds"""
    schedule_on_inputs: Annotated[Literal[False, "all", "any"], _check(_on_inputs)] = False
    """`all`: the DAG runs once other pipelines' DAGs updated every catalog input they make (Airflow
    assets, listed from the catalog); `any`: once one of them did; needs `schedule: null`"""


class HandoffSettings(_Group):
    """`handoff:`: what crosses the run prefix between pods, and when the prefix goes."""

    allow_pickle: Bool = True
    """`false`: a value only pickle can carry fails its task. `true` trusts whoever can write the
    run prefix: a pickle there runs code in the pods (see the trust boundary)"""
    local_handoff: Bool = True
    """a catalog dataset on local disk that crosses pods travels through the run prefix in its own
    catalog type; `false`: such a dataset is an error"""
    local_disk: Literal["error", "warn"] = "error"
    """`warn`: raw inputs missing from the image and outputs left on a pod's disk only warn (the DAG
    is written and the warning says what is lost)"""
    cleanup: Literal["never", "on_success", "always"] = "never"
    """`on_success` / `always`: the last task deletes the run prefix"""
    parallel_threshold: Annotated[int, _check(byte_size_value)] = 128 * MIB
    """frames this large in memory cross as parallel parts: bytes or a quantity (`256Mi`)"""
    parallel_concurrency: AtLeastOne = 8
    """parts uploaded, or ranges read, at once"""


_GROUPS: dict[str, type[_Group]] = {
    "pod": PodSettings,
    "mlflow": MlflowSettings,
    "default_args": DefaultArgs,
    "dag": DagSettings,
    "handoff": HandoffSettings,
}


class BridgeConfig(BaseModel):
    """Everything the planner and the template need from the merged airflow config."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    gcp_project_id: Text | None = None
    """GCP project of the GKE cluster"""
    gcp_region: Text | None = None
    """cluster location (region or zone)"""
    gcp_gke_cluster_name: Text | None = None
    """GKE Autopilot cluster"""
    docker_image: Text | None = None
    """the project's image (see `docker/`); pin it by `@sha256` in production"""
    gcs_bridge_root: RootUrl | None = None
    """`gs://bucket[/path]` (with `pod_backend: local` any absolute URL): run prefixes live under
    `<root>/<dag_id>/<run_id>/`"""
    k8s_namespace: Annotated[str, _check(_kubernetes_name(_DNS_LABEL, 63))] = "default"
    """namespace of the pods (RFC 1123 label, <= 63 characters)"""
    k8s_service_account: Annotated[str, _check(_kubernetes_name(_DNS_SUBDOMAIN, 253))] | None = None
    """Kubernetes SA bound to a GCP SA (Workload Identity)"""
    grouping: Bool = True
    """`false`: every node is its own task"""
    grouping_prefix: Annotated[str, _check(_tag_prefix)] = "airflow."
    """tag prefix that groups nodes"""
    groups: Annotated[dict[str, tuple[str, ...]], _check(_groups)] = {}
    """group name -> node names, `tag:<t>`, `namespace:<ns>` (nested too) or `namespace=<ns>`"""
    resources_tag_prefix: Annotated[str, _check(_tag_prefix)] = "machine."
    """tag prefix that picks the machine class"""
    machine_classes: Annotated[dict[str, MachineClass], _check(_machine_classes)] = Field(
        default_factory=lambda: dict(BUILTIN_CLASSES)
    )
    """redefine or add classes (below)"""
    default_machine_class: Text = DEFAULT_CLASS
    """class of groups with no machine tag"""
    spot_retries: Count = 3
    """extra retries for tasks on a Spot class"""
    strict: Bool = False
    """warnings (mixed machine tags, raised requests, keys nothing reads) become errors"""
    dag_id: Annotated[str, _check(_dag_id)] | None = None
    """DAG id; letters, digits, `_`, `.`, `-`, <= 250 characters"""
    start_date: Annotated[tuple[int, ...], _check(_start_date)] = (2023, 1, 1)
    """a list like `[2023, 1, 1]` or `'2023-01-01'` (UTC)"""
    schedule: Annotated[str | None, _check(_schedule)] = None
    """`schedule_interval` (or its Airflow 3 name `schedule`): a cron (checked with croniter, as
    Airflow does), an Airflow preset (`@once`, `@daily`, ...) or null"""
    max_active_runs: AtLeastOne = 1
    """at least 1"""
    catchup: Bool = False
    owner: Text = "airflow"
    depends_on_past: Bool = False
    email_on_failure: Bool = False
    email_on_retry: Bool = False
    retries: Count = 1
    retry_delay: Annotated[float, _check(lambda v: _minutes(v, above_zero=False))] = 5.0
    """minutes, >= 0"""
    pod_backend: Literal["gke", "local"] = "gke"
    """`local`: the same tasks as local processes, for `airflow dags test`"""
    local_root: RootUrl | None = None
    """run prefixes of the `local` backend (an absolute URL)"""
    pod: PodSettings = Field(default_factory=PodSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    default_args: DefaultArgs = Field(default_factory=DefaultArgs)
    dag: DagSettings = Field(default_factory=DagSettings)
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)

    @property
    def finalize(self) -> bool:
        """The DAG ends with a finalize task (MLflow parent status, run-prefix cleanup)."""
        return bool(self.mlflow.tracking_uri) or self.handoff.cleanup != "never"

    def missing_deployment_keys(self) -> list[str]:
        """Keys a DAG needs to reach GKE and GCS that are not set (none for local pods)."""
        if self.pod_backend == "local":
            return []
        needed = ("gcp_project_id", "gcp_region", "gcp_gke_cluster_name", "docker_image")
        return [key for key in (*needed, "gcs_bridge_root") if not getattr(self, key)]


_NO_PLUGINS = "PYDANTIC_DISABLE_PLUGINS"


@contextmanager
def _plugin_scan_skipped() -> Iterator[None]:
    """pydantic, the first time a process builds a model, reads the entry points of every
    installed distribution for its plugins (~17 ms of each `kedro airflow create` with
    Airflow's and MLflow's ~330 distributions installed). Setting its variable while the
    config's models build skips that for them alone: the variable is restored after, so a
    project's own models still get its plugins. The config's validation is not a plugin's
    business (tracing, logging)."""
    before = os.environ.get(_NO_PLUGINS)
    os.environ[_NO_PLUGINS] = "__all__"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(_NO_PLUGINS, None)
        else:
            os.environ[_NO_PLUGINS] = before


def _build_models() -> None:
    """Builds every model's validator now, inner models first, as pydantic does for a class
    without `defer_build`, but with no plugin scan."""
    with _plugin_scan_skipped():
        rebuild_dataclass(MachineClass, force=True)
        for model in (Deadline, *_GROUPS.values(), BridgeConfig):
            model.model_rebuild(force=True)


_build_models()

#: The machine classes every project has (made once the models are built).
BUILTIN_CLASSES: Mapping[str, MachineClass] = {
    # Autopilot's own default for a pod that requests nothing.
    DEFAULT_CLASS: MachineClass(DEFAULT_CLASS, cpu="500m", memory="2Gi", ephemeral_storage="1Gi"),
    "small": MachineClass("small", cpu="250m", memory="1Gi", ephemeral_storage="1Gi"),
    "medium": MachineClass("medium", cpu="1", memory="4Gi", ephemeral_storage="2Gi"),
    "large": MachineClass("large", cpu="4", memory="16Gi", ephemeral_storage="5Gi"),
    "xlarge": MachineClass(
        "xlarge", cpu="8", memory="32Gi", ephemeral_storage="10Gi", compute_class="Balanced"
    ),
    "gpu": MachineClass(
        "gpu",
        cpu="4",
        memory="16Gi",
        ephemeral_storage="10Gi",
        accelerator="nvidia-l4",
        gpu_count=1,
    ),
}

#: How the reference and the init file show keys: the default as the reference writes it, an
#: example (in the init file's comment), the value the init file writes.
_SHOWN = {
    "pod.security_context": "non-root",
    "pod.secret_env": "`{}`",
    "pod.image_pull_policy": "Kubernetes'",
    "mlflow.experiment": "the package name",
    "handoff.parallel_threshold": "`128Mi`",
    "gcp_project_id": "required",
    "gcp_region": "required",
    "gcp_gke_cluster_name": "required",
    "docker_image": "required",
    "gcs_bridge_root": "required",
    "machine_classes": "built-ins",
    "dag_id": "`<package>__<pipeline>__<env>`",
    "local_root": "`file://<project>/.gcs-bridge-runs`",
}
_EXAMPLES = {
    "pod.labels": "{team: data, cost-center: cc-42}",
    "pod.annotations": "{policy.example.com/owner: data-team}",
    "pod.security_context": "{container: {readOnlyRootFilesystem: true}}",
    "pod.env": "{LOG_LEVEL: INFO}",
    "pod.secret_env": "{MLFLOW_TRACKING_TOKEN: mlflow-auth:token}",
    "pod.node_selector": "{topology.kubernetes.io/zone: europe-west1-b}",
    "pod.affinity": "{nodeAffinity: {...}}",
    "pod.template_file": "/opt/airflow/pod_templates/base.yaml",
    "pod.override": "{spec: {priorityClassName: batch}}",
    "mlflow.tracking_uri": "https://mlflow.example.com",
    "mlflow.metrics": "[metrics]",
    "default_args.execution_timeout": 60,
    "default_args.pool": "kedro",
    "default_args.on_failure_callback": "my_team.alerts.task_failed",
    "dag.tags": "[nightly, team-x]",
    "dag.params": "{learning_rate: 0.01, model: ridge}",
    "dag.dagrun_timeout": 480,
    "dag.deadline": "{minutes: 120, callback: my_team.alerts.late_run}",
    "dag.on_failure_callback": "my_team.alerts.notify",
    "gcp_project_id": "my-project",
    "gcp_region": "europe-west1",
    "gcp_gke_cluster_name": "my-autopilot",
    "docker_image": "europe-west1-docker.pkg.dev/my-project/kedro/my-project:latest",
    "gcs_bridge_root": "gs://my-bucket/kedro-gcs-bridge",
    "k8s_service_account": "kedro",
    "groups": "{split: [create_model_input_table_node, split_data_node]}",
    "local_root": "file:///tmp/kedro-runs",
}
_INIT_VALUES = {
    "pod.security_context": "{}",
    "pod.secret_env": "{}",
    "handoff.parallel_threshold": "128Mi",
}
#: Keys the init file sets (uncommented): the origin's and the deployment's.
_INIT_SET = frozenset(
    {
        "catchup",
        "depends_on_past",
        "docker_image",
        "email_on_failure",
        "email_on_retry",
        "gcp_gke_cluster_name",
        "gcp_project_id",
        "gcp_region",
        "gcs_bridge_root",
        "k8s_namespace",
        "k8s_service_account",
        "max_active_runs",
        "owner",
        "retries",
        "retry_delay",
        "schedule",
        "start_date",
    }
)

# --- reading a merged config -------------------------------------------------------------------

#: Keys that the stock kedro-airflow command passes to every template itself.
TEMPLATE_VARIABLES = frozenset(
    {"dag_name", "node_objs", "env", "pipeline_name", "package_name", "pipeline", "conf_source"}
)
#: Config keys read by later stages (the template's DAG file factory).
_PASS_THROUGH = frozenset({"gcs_bridge"})
#: The old flat spellings of grouped keys -> their path now (read with a deprecation warning).
MOVED: dict[str, str] = {
    **{f"pod_{k}": f"pod.{k}" for k in ("labels", "annotations", "template_file", "override")},
    **{k: f"pod.{k}" for k in ("security_context", "env_from_secrets", "secret_env")},
    **{k: f"pod.{k}" for k in ("tolerations", "affinity", "node_selector", "image_pull_policy")},
    **{k: f"pod.{k}" for k in ("on_finish_action", "deferrable", "gcp_conn_id")},
    **{k: f"pod.{k}" for k in ("schedule_timeout_seconds", "startup_timeout_seconds")},
    "env_vars": "pod.env",
    **{f"mlflow_{k}": f"mlflow.{k}" for k in ("tracking_uri", "experiment", "required", "metrics")},
    **{k: f"default_args.{k}" for k in ("execution_timeout", "pool", "pool_slots")},
    **{k: f"default_args.{k}" for k in ("priority_weight", "weight_rule")},
    **{k: f"dag.{k}" for k in ("tags", "doc_md", "params", "dagrun_timeout", "deadline")},
    **{k: f"dag.{k}" for k in ("on_failure_callback", "on_success_callback")},
    **{k: f"handoff.{k}" for k in ("allow_pickle", "local_handoff", "local_disk", "cleanup")},
    **{k: f"handoff.{k}" for k in ("parallel_threshold", "parallel_concurrency")},
}
#: The origin's name of `schedule` (Airflow 2's); either may be set, not both differently.
_SCHEDULE_ALIAS = "schedule_interval"
#: Keys whose null value is a value (no schedule), not "use the default".
_NULLABLE = frozenset({"schedule", _SCHEDULE_ALIAS})


def _nest(params: Mapping[str, Any]) -> dict[str, Any]:
    """`{"mlflow.required": True}` -> `{"mlflow": {"required": True}}` for the groups."""
    nested: dict[str, Any] = {}
    for key, value in params.items():
        group, _, field = str(key).partition(".")
        if field and group in _GROUPS:
            nested.setdefault(group, {})[field] = value
        else:
            nested[key] = value
    return nested


def merge_airflow_config(
    raw: Mapping[str, Any], pipeline_name: str, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Merges the airflow config for one pipeline in kedro-airflow 0.11's order: `default:`,
    then the keys under the pipeline's name, then `--params`. Other keys are replaced whole, as
    kedro-airflow does; the groups (`pod:`, `mlflow:`, ...) merge key by key, so `--params
    mlflow.required=true` sets one key of `mlflow:`.
    """
    merged: dict[str, Any] = {}
    for layer in (raw.get("default") or {}, raw.get(pipeline_name) or {}, _nest(params or {})):
        for key, value in layer.items():
            before = merged.get(key)
            both = isinstance(before, Mapping) and isinstance(value, Mapping)
            merged[key] = {**before, **value} if key in _GROUPS and both else value
    return merged


def _normalize(
    merged: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[tuple[str, ...], str], list[str]]:
    """The config in the model's shape; how the user spelled moved keys; what clashes."""
    data: dict[str, Any] = {}
    spelled: dict[tuple[str, ...], str] = {}
    problems: list[str] = []
    for key, value in merged.items():
        if key in TEMPLATE_VARIABLES or key in _PASS_THROUGH or key in MOVED:
            continue
        if value is not None or key in _NULLABLE:
            data[key] = (
                {k: v for k, v in value.items() if v is not None}
                if key in _GROUPS and isinstance(value, Mapping)
                else value
            )
    interval = data.pop(_SCHEDULE_ALIAS, None)
    if interval is not None and data.get("schedule", interval) != interval:
        problems.append(
            "Both 'schedule' and 'schedule_interval' are set with different values; keep one "
            "('schedule' is the Airflow 3 name)."
        )
    elif interval is not None or "schedule" not in data:
        data["schedule"] = interval
        spelled[("schedule",)] = _SCHEDULE_ALIAS
    for old, new in MOVED.items():
        if merged.get(old) is None:
            continue
        warnings.warn(
            f"airflow config key '{old}' is deprecated: write it as '{new}'.",
            DeprecatedKeyWarning,
            stacklevel=3,
        )
        group, field = new.split(".")
        section = data.get(group, {})
        if not isinstance(section, Mapping):
            continue  # the group's own error names it
        if field in section:
            problems.append(f"'{old}' and '{new}' are both set; keep '{new}'.")
            continue
        data[group] = {**section, field: merged[old]}
        spelled[(group, field)] = old
    return data, spelled, problems


def _path(loc: tuple[Any, ...], spelled: Mapping[tuple[str, ...], str]) -> str:
    """A key path as the user wrote it: `pod.labels.team`, `pod_labels.team`, `tolerations[0]`."""
    head, rest = "", loc
    for n in range(len(loc), 0, -1):
        if loc[:n] in spelled:
            head, rest = spelled[loc[:n]], loc[n:]
            break
    for part in rest:
        head += f"[{part}]" if isinstance(part, int) else f".{part}" if head else str(part)
    return head


def _known_under(loc: tuple[Any, ...]) -> list[str]:
    """The keys a mapping at `loc` may hold."""
    if loc[:1] == ("machine_classes",):
        return list(CLASS_FIELDS)
    if loc == ("dag", "deadline"):
        return list(Deadline.model_fields)
    group = _GROUPS.get(loc[0]) if loc else None
    return list(group.model_fields) if group else []


def _problem(error: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """What one pydantic error says, and where below its location."""
    kind, loc, given = error["type"], tuple(error["loc"]), error.get("input")
    if kind in ("value_error", "assertion_error"):
        cause = error["ctx"]["error"]
        return str(cause), getattr(cause, "at", ())
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        known = _known_under(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"is not a known key{hint}; known: {known}.", ()
    if kind == "missing":
        return "is required.", ()
    if kind == "literal_error":
        return f"must be one of {error['ctx']['expected']}, got {given!r}.", ()
    return f"{error['msg'].replace('Input should be', 'must be')}, got {given!r}.", ()


def _cross_checks(config: BridgeConfig, path: Callable[..., str]) -> list[str]:
    """Problems of keys together, each naming the keys as written."""
    problems = []
    if config.default_machine_class not in config.machine_classes:
        problems.append(
            f"'default_machine_class' {config.default_machine_class!r} is not a machine class; "
            f"known: {sorted(config.machine_classes)}."
        )
    gke = config.pod_backend == "gke"
    if config.gcs_bridge_root and gke:
        try:
            root_url_value(config.gcs_bridge_root, ("gs", "gcs"))
        except ValueError as exc:
            problems.append(f"'gcs_bridge_root' {exc}")
    on_inputs = config.dag.schedule_on_inputs
    if on_inputs and config.schedule is not None:
        problems.append(
            f"'{path('dag', 'schedule_on_inputs')}: {on_inputs}' schedules the DAG on the "
            f"assets of its inputs; it cannot be combined with '{path('schedule')}: "
            f"{config.schedule}'. Set '{path('schedule')}: null' for this pipeline, or drop "
            "'dag.schedule_on_inputs'."
        )
    uri = config.mlflow.tracking_uri or ""
    if (
        gke
        and uri
        and not uri.startswith("databricks")
        and urlsplit(uri).scheme in ("", "sqlite", "file")
    ):
        problems.append(
            f"'{path('mlflow', 'tracking_uri')}: {uri}' is a local store; GKE pods cannot share a "
            "local file. Point it at a tracking server (http(s)://...), or use it with "
            "'pod_backend: local' or `kedro gcs-bridge replay --tracking-uri`."
        )
    return problems


def parse_config(merged: Mapping[str, Any]) -> BridgeConfig:
    """Reads a merged airflow config into a `BridgeConfig`.

    An unknown top-level key close to a known one is a problem (a typo would leave the
    default in place); other unknown keys are kept (see `unknown_keys`: the template context
    holds more than config, and teams keep their own keys in the file) unless `strict: true`.
    Old flat spellings warn.

    Raises:
        ConfigError: Every value of the wrong type or form and every clash, each naming its
            key path and what to write instead.
    """
    data, spelled, problems = _normalize(merged)
    unknown = _unknown(merged)
    problems += [_misspelled(key, close) for key, close, typo in unknown if close and typo]
    try:
        config = BridgeConfig.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            problem, below = _problem(error)
            problems.append(f"'{_path((*error['loc'], *below), spelled)}' {problem}")
    else:
        problems += _cross_checks(config, lambda *loc: _path(loc, spelled))
        if config.strict:
            problems += [_unread_when_strict(key) for key, _, typo in unknown if not typo]
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise ConfigError(f"The airflow config has {len(problems)} problems:\n{lines}")
    return config


def accepted_keys() -> list[str]:
    """Every key `parse_config` reads, nested ones as paths (`pod.labels`), sorted."""
    top = [name for name in BridgeConfig.model_fields if name not in _GROUPS]
    nested = [f"{group}.{name}" for group, model in _GROUPS.items() for name in model.model_fields]
    return sorted([*top, _SCHEDULE_ALIAS, *_GROUPS, *nested])


#: How alike an unknown key and a known one must be to call it a typo (`k8s_namspace`: 0.96,
#: `retires`: 0.86) rather than a team's own key (`team_owner` / `owner`: 0.67, a hint only).
_TYPO = 0.8


def _unknown(merged: Mapping[str, Any]) -> list[tuple[str, str | None, bool]]:
    """Top-level keys nobody reads: each with the closest known key (None: none is close) and
    whether it is that close a typo."""
    known = sorted({*BridgeConfig.model_fields, _SCHEDULE_ALIAS, *MOVED})
    skip = {*known, *TEMPLATE_VARIABLES, *_PASS_THROUGH}
    found = []
    for key in map(str, merged):
        if key in skip:
            continue
        close = next(iter(difflib.get_close_matches(key, known, n=1)), None)
        typo = close is not None and difflib.SequenceMatcher(None, key, close).ratio() >= _TYPO
        found.append((key, close, typo))
    return found


def _misspelled(key: str, close: str) -> str:
    return (
        f"'{key}' is not a key of the airflow config (did you mean '{close}'?): as written, "
        "the default stays in place. Rename it."
    )


def _unread_when_strict(key: str) -> str:
    return (
        f"'{key}' is not a key of the airflow config, and `strict: true` refuses keys nothing "
        "reads: remove it, or keep it with `strict: false`."
    )


def unknown_keys(merged: Mapping[str, Any]) -> list[str]:
    """Top-level config keys nobody reads that are not typos of a known key (a team's own
    keys), each with the closest known key when there is one: said as warnings. Typos are
    `parse_config`'s problems."""
    return [
        f"airflow config key '{key}' is not used by kedro-gcs-bridge"
        + (f" (did you mean '{close}'?)" if close else "")
        for key, close, typo in _unknown(merged)
        if not typo
    ]


def section_problems(
    raw: Mapping[str, Any], registered: Collection[str]
) -> tuple[list[str], list[str]]:
    """(problems, notes) about the airflow config file's top-level sections, which
    kedro-airflow reads as `default:` and pipeline names only. A config key there, or a name
    close to a registered pipeline's, is a problem; any other name is a note."""
    known = {*BridgeConfig.model_fields, _SCHEDULE_ALIAS, *MOVED}
    problems, notes = [], []
    for name in map(str, raw):
        if name == "default" or name in registered:
            continue
        close = next(iter(difflib.get_close_matches(name, sorted(registered), n=1)), None)
        if name in known:
            problems.append(
                f"airflow config: '{name}' is a config key at the file's top level, where "
                "kedro-airflow reads only `default:` and pipeline names: indent it under "
                "`default:` (every pipeline) or under a pipeline's name."
            )
        elif close and difflib.SequenceMatcher(None, name, close).ratio() >= _TYPO:
            problems.append(
                f"airflow config: section '{name}' names no registered pipeline (did you mean "
                f"'{close}'?); its keys are read by nobody. Rename it."
            )
        else:
            hint = f" (did you mean '{close}'?)" if close else ""
            notes.append(
                f"airflow config: section '{name}' names no registered pipeline{hint}; nothing "
                "reads it."
            )
    return problems, notes


# --- the config reference and the init file, generated from the fields above ----------------

REPO = Path(__file__).resolve().parents[1]
INIT_FILE = Path(__file__).with_name("project_files") / "airflow.yml"
#: The config reference, generated as a whole (the README links to it).
REFERENCE = REPO / "docs" / "config.md"
REFERENCE_TITLE = "# Config reference (`conf/<env>/airflow.yml`)"
_INTRO = """\
`default:` keys apply to every pipeline; a key named after a pipeline overrides them for that
pipeline's DAG; `kedro airflow create --params k=v` overrides both (kedro-airflow's merge;
the groups `pod:`, `mlflow:`, `default_args:`, `dag:` and `handoff:` merge key by key, and
`--params mlflow.required=true` sets one key of a group). Every key is checked when the DAG is
created, with the rules Airflow, Kubernetes and MLflow apply later: a bad value stops `kedro
airflow create` with an error naming each key path, and no DAG file is written; so does a
misspelled key (close to a known one), a config key at the file's top level instead of under
`default:`, and a section named close to a registered pipeline. Other keys nothing reads (a
team's own) warn, and stop it under `strict: true`. Booleans are
`true`/`false`, `yes`/`no`, `on`/`off` or `1`/`0` (any case) on every route. The old flat
spellings of grouped keys (`pod_labels`, `mlflow_tracking_uri`, `cleanup`, ...) are still read,
each with a one-line deprecation warning naming its new path. This table and the file `kedro
gcs-bridge init` writes are generated from `kedro_gcs_bridge/config.py` (`python -m
kedro_gcs_bridge.config`)."""
_CLASSES_TEXT = """\
A class has {fields} ({tasks} are over the DAG-wide keys of the same name). Each is checked against
Autopilot's limits for its compute class (Scale-Out on `arch: arm64` has its own) or GPU type: a
request Autopilot would reject (above a maximum) is an error; one it would silently raise (under
a minimum, off the memory:CPU ratio, CPU not a multiple of 250m on clusters without bursting) is
a warning that shows the figure Autopilot would bill. The figures come from Google's Autopilot
cost calculator (`GoogleCloudPlatform/autopilot-cost-calculator`, `config.ini`), which copies
Google's "Resource requests in Autopilot" page. For `nvidia-l4` and `nvidia-tesla-t4` only the
per-pod bounds are verified; going above the per-GPU-count rows this package knows is a warning
that says they are unverified. Other GPU types are left to Autopilot."""
#: Machine classes the init file shows, as YAML text per field (every field once).
_CLASS_EXAMPLES = {
    "highmem": {"cpu": '"2"', "memory": "12Gi", "ephemeral_storage": "5Gi"}
    | {"compute_class": "Balanced", "spot": "true", "arch": "amd64", "machine_family": "n2d"},
    "trainer": {"cpu": '"4"', "memory": "16Gi", "accelerator": "nvidia-l4", "gpu_count": "1"}
    | {"execution_timeout": "240", "image_pull_policy": "IfNotPresent"}
    | {"tolerations": "[{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]"}
    | {"affinity": "{nodeAffinity: {}}"},
}


@functools.cache
def _docstrings() -> dict[str, str]:
    """`Class.field` -> the string under the field here (read when the docs are generated, so
    importing the model does not parse its own source)."""
    docs = {}
    for cls in ast.parse(Path(__file__).read_text(encoding="utf-8")).body:
        for field, text in itertools.pairwise(getattr(cls, "body", [])):
            if isinstance(field, ast.AnnAssign) and isinstance(text, ast.Expr):
                docs[f"{cls.name}.{ast.unparse(field.target)}"] = " ".join(text.value.value.split())
    return docs


def _described(path: str, model: type | None = None) -> str:
    """A key path's description: `pod.labels`, `retries`, or a field of `model`."""
    group, _, name = path.rpartition(".")
    owner = model or _GROUPS.get(group, BridgeConfig)
    return _docstrings().get(f"{owner.__name__}.{name}", "")


def _default(info: Any) -> Any:
    return info.default_factory() if info.default_factory else info.default


def _yaml(value: Any) -> str:
    """A default as YAML flow text."""
    if isinstance(value, tuple | list | Mapping):
        value = list(value) if not isinstance(value, Mapping) else dict(value)
        return json.dumps(value).replace('"', "")
    if isinstance(value, float):
        return f"{value:g}"
    return "null" if value is None else json.dumps(value) if isinstance(value, bool) else str(value)


def _fields() -> list[tuple[str, Any]]:
    """(key path, field) of every key, the groups' after the top level's, in model order."""
    top = [(name, info) for name, info in BridgeConfig.model_fields.items() if name not in _GROUPS]
    nested = [
        (f"{group}.{name}", info)
        for group, model in _GROUPS.items()
        for name, info in model.model_fields.items()
    ]
    return top + nested


def _group_doc(model: type[_Group]) -> str:
    return " ".join((model.__doc__ or "").split("`: ", 1)[-1].split())


def _label(path: str) -> str:
    return f"`{_SCHEDULE_ALIAS}` / `schedule`" if path == "schedule" else f"`{path}`"


def reference_markdown() -> str:
    """The config reference, docs/config.md."""
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for path, info in _fields():
        group = _GROUPS.get(path.split(".")[0]) if "." in path else None
        if group is not None and path.endswith(f".{next(iter(group.model_fields))}"):
            rows.append(f"| `{path.split('.')[0]}:` | | {_group_doc(group)} |")
        shown = _SHOWN.get(path) or f"`{_yaml(_default(info))}`"
        shown = "none" if shown == "`null`" else shown
        rows.append(f"| {_label(path)} | {shown} | {_described(path)} |")
    classes = [
        "| class | cpu | memory | ephemeral | selectors |",
        "| --- | --- | --- | --- | --- |",
    ]
    for machine in BUILTIN_CLASSES.values():
        selectors = ", ".join(f"`{k}: {v}`" for k, v in machine.node_selector().items())
        limits = ", ".join(f"`{k}: {v}`" for k, v in machine.limits().items())
        figures = f"{machine.cpu} | {machine.memory} | {machine.ephemeral_storage}"
        classes.append(
            f"| `{machine.name}` | {figures} | {', '.join(filter(None, (selectors, limits)))} |"
        )
    fields = ", ".join(f"`{name}`" for name in CLASS_FIELDS)
    tasks = ", ".join(f"`{name}`" for name in CLASS_FIELDS[-4:])
    parts = [
        REFERENCE_TITLE,
        _INTRO,
        "\n".join(rows),
        "Machine classes (built-in):",
        "\n".join(classes),
    ]
    return "\n\n".join([*parts, _CLASSES_TEXT.format(fields=fields, tasks=tasks)]) + "\n"


def _init_line(path: str, info: Any, prefix: str | None = None, key: str = "") -> str:
    example, chosen = _EXAMPLES.get(path), path in _INIT_SET
    shows_example = chosen and _default(info) is None and example is not None
    value = example if shows_example else _INIT_VALUES.get(path) or _yaml(_default(info))
    note = _described(path) + (f"; e.g. {example}" if example and not shows_example else "")
    line = f"{prefix or ('  ' if chosen else '  # ')}{key or path.rsplit('.', 1)[-1]}: {value}"
    return _noted(line, note) if note else line


_INIT_HEADER = """\
# kedro-gcs-bridge: how `kedro airflow create -j templates/gcs_bridge.j2` builds the DAG.
# `default:` applies to every pipeline; a key named after a pipeline overrides it for that
# pipeline's DAG; `kedro airflow create --params key=value` overrides both.
# A commented key shows its default: remove the `# ` to set it. kedro-gcs-bridge's
# docs/config.md says what each key does (generated: python -m kedro_gcs_bridge.config).
default:"""


def _noted(line: str, note: str) -> str:
    return f"{line:<39} # {note}"


def _class_lines() -> list[str]:
    notes = {name: _described(name, MachineClass) for name in CLASS_FIELDS}
    lines = [_noted("  # machine_classes:", "over the built-ins; a new class starts from default")]
    for name, figures in _CLASS_EXAMPLES.items():
        lines.append(f"  #   {name}:")
        lines += [_noted(f"  #     {key}: {value}", notes[key]) for key, value in figures.items()]
    return lines


def init_yaml() -> str:
    """The commented airflow.yml `kedro gcs-bridge init` writes."""
    lines = [_INIT_HEADER]
    for name, info in BridgeConfig.model_fields.items():
        model = _GROUPS.get(name)
        if name == "schedule":
            lines.append(_init_line("schedule", info, "  ", _SCHEDULE_ALIAS))
            lines.append(_noted("  # schedule: null", "Airflow 3's name of schedule_interval"))
        elif name == "machine_classes":
            lines += _class_lines()
        elif model is not None:
            lines.append(_noted(f"  # {name}:", _group_doc(model).split(";")[0]))
            fields = model.model_fields.items()
            lines += [_init_line(f"{name}.{key}", field, "  #   ") for key, field in fields]
        else:
            lines.append(_init_line(name, info))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m kedro_gcs_bridge.config: rewrite both
    INIT_FILE.write_text(init_yaml(), encoding="utf-8")
    REFERENCE.write_text(reference_markdown(), encoding="utf-8")
