"""The production knobs of airflow.yml shaped for the DAG file: operator arguments of every pod
and of each task, DAG arguments (timeouts, params, callbacks, deadline, docs), the imports they
need and the command that regenerates the file.

Values were validated by the config model (`config.py`); here they only become Python literals or
short expressions (`PyCode`) that `templates/gcs_bridge.j2` writes as they are. No value of a
Kubernetes Secret is ever known here: only Secret names and keys.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from kedro_gcs_bridge.config import TASK_CALLBACKS

if TYPE_CHECKING:
    from kedro_gcs_bridge.config import BridgeConfig
    from kedro_gcs_bridge.planning.plan import Plan, TaskPlan

#: The DAG-file names the user's callbacks are imported as: the DAG's, then the tasks'.
CALLBACK_NAMES = {
    "on_failure_callback": "_on_failure_callback",
    "on_success_callback": "_on_success_callback",
}
TASK_CALLBACK_NAMES = {name: f"_task{name}" for name in TASK_CALLBACKS}
_DEADLINE_REFERENCES = {
    "queued_at": "DeadlineReference.DAGRUN_QUEUED_AT",
    "logical_date": "DeadlineReference.DAGRUN_LOGICAL_DATE",
}
_TEMPLATE = "kedro airflow create -j templates/gcs_bridge.j2"
#: How often a deferred pod task wakes to fetch the pod's new log lines (None: none until the
#: pod ends).
LOGGING_INTERVAL_SECONDS = 60
#: The task instance's start (Airflow 3's `RuntimeTaskInstance.start_date`), rendered on the
#: worker right before the pod is created; empty where a context has no start (replay, tests).
TASK_START_TEMPLATE = (
    "{{ ti.start_date.isoformat() if ti.start_date is defined and ti.start_date else '' }}"
)


class PyCode(str):
    """A Python expression written into the DAG file as it is (not as a string literal)."""


def minutes(value: float) -> PyCode:
    """A `timedelta` expression for a number of minutes."""
    return PyCode(f"timedelta(minutes={value:g})")


def _call(function: str, *args: Any) -> PyCode:
    from kedro_gcs_bridge.dag.dagfile import py_literal

    return PyCode(f"{function}({', '.join(py_literal(arg) for arg in args)})")


def _secrets(config: BridgeConfig) -> list[PyCode]:
    """Airflow `Secret`s: whole Secrets as env (envFrom), then single keys as variables."""
    whole = [_call("Secret", "env", None, name) for name in config.pod.env_from_secrets]
    keys = [_call("Secret", "env", ref.env, ref.secret, ref.key) for ref in config.pod.secret_env]
    return whole + keys


def _override(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The override as a whole pod: a pod spec needs containers; the first one merges into
    the task's container, which KubernetesPodOperator names `base`."""
    if "spec" not in pod:
        return dict(pod)
    spec = dict(pod["spec"])
    spec.setdefault("containers", [{"name": "base"}])
    return {**pod, "spec": spec}


def pod_settings(config: BridgeConfig) -> dict[str, Any]:
    """Operator arguments every pod of the DAG shares, on top of `DagFile.pod_defaults`."""
    pod = config.pod
    settings: dict[str, Any] = {
        "on_finish_action": pod.on_finish_action,
        "security_context": dict(pod.security_context["pod"]),
        "container_security_context": dict(pod.security_context["container"]),
        # A failed container's last log lines become its termination message (pod status).
        "termination_message_policy": "FallbackToLogsOnError",
        "use_dns_endpoint": pod.use_dns_endpoint,
        "use_internal_ip": pod.use_internal_ip,
    }
    optional = {
        "logging_interval": pod.deferrable and LOGGING_INTERVAL_SECONDS,
        "secrets": _secrets(config),
        "pod_template_file": pod.template_file,
        "full_pod_spec": pod.override
        and _call("PodGenerator.deserialize_model_dict", _override(pod.override)),
    }
    return settings | {key: value for key, value in optional.items() if value}


def task_settings(config: BridgeConfig, task: TaskPlan, local: bool = False) -> dict[str, Any]:
    """Operator arguments of one task: its timeout (the task's, and its pod's active deadline),
    placement, pull policy and documentation.

    The machine class's `execution_timeout`, `image_pull_policy`, `tolerations` and `affinity`
    win over the DAG-wide keys; a local process (`pod_backend: local`) takes only the timeout
    and the doc.
    """
    machine = task.machine
    timeout = machine.execution_timeout or config.default_args.execution_timeout
    settings: dict[str, Any] = {"doc_md": task_doc(task)}
    if timeout:
        settings["execution_timeout"] = minutes(timeout)
    if local:
        return settings
    if timeout:
        # The pod stops too: a deferred task never enforces its timeout (apache/airflow#67227).
        settings["active_deadline_seconds"] = math.ceil(timeout * 60)
    pull_policy = machine.image_pull_policy or config.pod.image_pull_policy
    if pull_policy:
        settings["image_pull_policy"] = pull_policy
    tolerations = machine.tolerations if machine.tolerations is not None else config.pod.tolerations
    affinity = machine.affinity if machine.affinity is not None else config.pod.affinity
    if tolerations:
        settings["tolerations"] = [dict(item) for item in tolerations]
    if affinity:
        settings["affinity"] = dict(affinity)
    return settings


def node_selector(config: BridgeConfig, task: TaskPlan) -> dict[str, str]:
    """The task's node selectors: the DAG-wide extras, then its machine class's."""
    return {**config.pod.node_selector, **task.machine.node_selector()}


def task_defaults(config: BridgeConfig) -> dict[str, Any]:
    """Airflow `default_args` from `default_args:`: pool, slots, priority, the tasks'
    callbacks and the arguments passed as they are."""
    args = config.default_args
    defaults: dict[str, Any] = {"pool": args.pool} if args.pool else {}
    defaults |= {
        "pool_slots": args.pool_slots,
        "priority_weight": args.priority_weight,
        "weight_rule": args.weight_rule,
    }
    defaults |= {
        key: PyCode(name) for key, name in TASK_CALLBACK_NAMES.items() if getattr(args, key)
    }
    return defaults | args.as_is()


def dag_settings(config: BridgeConfig) -> dict[str, Any]:
    """DAG arguments: run timeout, params for the trigger form, documentation (the file's
    `DAG_DOC`), callbacks and the deadline alert."""
    dag, deadline = config.dag, config.dag.deadline
    settings: dict[str, Any] = {"doc_md": PyCode("DAG_DOC")}
    if dag.dagrun_timeout:
        settings["dagrun_timeout"] = minutes(dag.dagrun_timeout)
    if dag.params:
        settings["params"] = dict(dag.params)
    for key, name in CALLBACK_NAMES.items():
        if getattr(dag, key):
            settings[key] = PyCode(name)
    if deadline is not None:
        settings["deadline"] = PyCode(
            f"DeadlineAlert(reference={_DEADLINE_REFERENCES[deadline.reference]}, "
            f"interval={minutes(deadline.minutes)}, "
            f"callback=SyncCallback({deadline.callback!r}))"
        )
    return settings | dag.as_is()


def imports(config: BridgeConfig, local: bool) -> list[str]:
    """Import lines the knobs in use need, beyond the template's own."""
    lines = []
    if not local and (config.pod.env_from_secrets or config.pod.secret_env):
        lines.append("from airflow.providers.cncf.kubernetes.secret import Secret")
    if not local and config.pod.override:
        lines.append("from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator")
    if config.dag.deadline is not None:
        lines.append("from airflow.sdk import DeadlineAlert, DeadlineReference, SyncCallback")
    callbacks = [(config.dag, CALLBACK_NAMES), (config.default_args, TASK_CALLBACK_NAMES)]
    for settings, names in callbacks:
        for key, name in names.items():
            path = getattr(settings, key)
            if path:
                module, _, function = path.rpartition(".")
                lines.append(f"from {module} import {function} as {name}")
    return lines


def params_arguments(config: BridgeConfig) -> list[str]:
    """`kedro run --params` with each DAG param, rendered by Airflow from the run's params
    (the trigger form's values); JSON keeps strings, numbers, booleans and null typed."""
    if not config.dag.params:
        return []
    # Double quotes inside: a local process's command is single-quoted by shlex.
    pairs = ",".join(
        f"{name}={{{{ params[{json.dumps(name)}] | tojson }}}}" for name in config.dag.params
    )
    return ["--params", pairs]


def _flat(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for key, value in params.items():
        if isinstance(value, Mapping):
            pairs += _flat(value, f"{prefix}{key}.")
        else:
            pairs.append((f"{prefix}{key}", value))
    return pairs


def _cli_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    text = str(value)
    parts = urlsplit(text)
    if parts.password:  # a password in a URL is never written, not even in the header
        netloc = f"{parts.username}:PASSWORD@{parts.hostname}"
        netloc += f":{parts.port}" if parts.port else ""
        return urlunsplit(parts._replace(netloc=netloc))
    return text


def create_command(pipeline_name: str, env: str, create_params: Mapping[str, Any]) -> str:
    """The `kedro airflow create` that regenerates the file: `-p`, `-e` and `--params`."""
    words = [_TEMPLATE]
    if pipeline_name != "__default__":
        words.append(f"-p {shlex.quote(pipeline_name)}")
    if env != "local":
        words.append(f"-e {shlex.quote(env)}")
    pairs = _flat(create_params)
    if pairs:
        given = ",".join(f"{key}={_cli_value(value)}" for key, value in pairs)
        words.append(f"--params {shlex.quote(given)}")
    return " ".join(words)


def task_doc(task: TaskPlan) -> str:
    """A task's doc in Airflow's UI: its nodes and the datasets it reads and writes."""
    if not task.nodes:
        return "Ends the run once every group ended: verdict, MLflow parent status, cleanup."
    lines = [f"Kedro group `{task.group}` on machine class `{task.machine.name}`.", ""]
    lines += ["Nodes:", *(f"- `{name}`" for name in task.nodes)]
    if task.inputs:
        lines += ["", "Reads:", *(f"- `{ds}` (from `{up}`)" for ds, up in task.inputs)]
    if task.outputs:
        lines += ["", "Writes:", *(f"- `{ds}`" for ds in task.outputs)]
    return "\n".join(lines)


def dag_doc_parts(config: BridgeConfig, title: str, create: str) -> tuple[list[str], list[str]]:
    """The DAG doc's lines before and after its table's one row per task (`dag_doc_row`)."""
    head = [f"# {title}", ""]
    if config.dag.doc_md:
        head += [config.dag.doc_md, ""]
    head += [
        "| task | machine class | nodes | datasets it reads from other tasks |",
        "|---|---|---|---|",
    ]
    return head, ["", f"Regenerate with `{create}`."]


def dag_doc_row(task: TaskPlan) -> str:
    """A task's row in the DAG doc's table (the DAG file builds it from its `TASKS` alike)."""
    reads = ", ".join(f"`{ds}`" for ds, _ in task.inputs) or "-"
    nodes = ", ".join(f"`{name}`" for name in task.nodes)
    return f"| `{task.task_id}` | `{task.machine.name}` | {nodes} | {reads} |"


def dag_doc(config: BridgeConfig, plan: Plan, title: str, create: str) -> list[str]:
    """The DAG's doc, line by line: the pipeline's groups and nodes, the datasets crossing
    between groups, and `doc_md` from the config first."""
    head, tail = dag_doc_parts(config, title, create)
    return [*head, *(dag_doc_row(task) for task in plan.tasks), *tail]
