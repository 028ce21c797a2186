"""What `templates/gcs_bridge.j2` renders: a DAG file spec computed by the Python planner.

How the STOCK `kedro airflow create` reaches Python (the least magical way found): the
package's Kedro hook (registered through the `kedro.hooks` entry point, see `hooks.py`) puts a
`DagFileFactory` into the `airflow` config under the key `gcs_bridge`. kedro-airflow passes every
config key to the template, so the template can call `gcs_bridge.dag_file()`. That call is a
Jinja `pass_context` function: it reads the variables kedro-airflow gave the template
(`pipeline`, `pipeline_name`, `env`, `package_name`, `conf_source` and the merged config) and
runs `plan_tasks` on them. The template keeps only the layout of the DAG file; no grouping,
naming or sizing logic is written in Jinja, so nothing needs proving equal to the planner.

Values reach the file through `DagFile.py`, which writes Python literals, so the
template's autoescaping never mangles quotes.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from kedro_gcs_bridge.errors import GCSBridgeError
from kedro_gcs_bridge.planning.config import BridgeConfig, parse_config
from kedro_gcs_bridge.planning.machines import MachineClass
from kedro_gcs_bridge.planning.naming import dag_id, run_prefix_template
from kedro_gcs_bridge.planning.plan import Plan, TaskPlan, node_specs, plan_tasks
from kedro_gcs_bridge.pod.contract import (
    ALLOW_PICKLE_ENV,
    DAG_ID_ENV,
    EXPERIMENT_ENV,
    KEDRO_ENV_ENV,
    PIPELINE_ENV,
    RUN_ID_ENV,
    RUN_PREFIX_ENV,
    TASK_ENV,
    TASKS_ENV,
    TRACKING_URI_ENV,
    TRY_ENV,
)

RUNNER = "kedro_gcs_bridge.GCSRunner"
FINALIZE_TASK = "gcs_bridge_finalize"

LABEL_PREFIX = "kedro-gcs-bridge"
LINE_WIDTH = 100


def _flat_literal(value: Any) -> str:
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid Python string literal, with double quotes.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return (
            "{"
            + ", ".join(f"{_flat_literal(k)}: {_flat_literal(v)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flat_literal(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} into a DAG file")


def py_literal(value: Any, indent: int = 0, width: int = LINE_WIDTH) -> str:
    """A Python literal for a plain value (str, number, bool, None, list, tuple, dict).

    Containers that do not fit in `width` (counting `indent`) are split one item per line,
    as a code formatter would, so the DAG file reads well in review.
    """
    flat = _flat_literal(value)
    if indent + len(flat) <= width or not isinstance(value, Mapping | list | tuple) or not value:
        return flat
    pad = " " * (indent + 4)
    if isinstance(value, Mapping):
        items = [
            f"{pad}{_flat_literal(k)}: {py_literal(v, indent + 4, width)},"
            for k, v in value.items()
        ]
        return "{\n" + "\n".join(items) + "\n" + " " * indent + "}"
    items = [f"{pad}{py_literal(item, indent + 4, width)}," for item in value]
    return "[\n" + "\n".join(items) + "\n" + " " * indent + "]"


@dataclass(frozen=True)
class FinalizeTask:
    """The DAG's last task: runs once every group ended, whatever their outcome."""

    task_id: str
    pod_name: str
    var_name: str
    leaves: list[str]
    arguments: list[str]
    machine: Any


@dataclass(frozen=True)
class DagFile:
    """Everything one generated DAG file says, ready to render.

    `error` is set instead of a plan when planning failed; the template then writes a file
    that fails to import in Airflow with that message.
    """

    dag_id: str
    package_name: str
    pipeline_name: str
    env: str
    conf_source: str
    config: BridgeConfig
    plan: Plan | None
    error: str | None = None
    project_path: str = ""

    task_env_key = TASK_ENV

    @staticmethod
    def py(value: Any, indent: int = 0) -> Markup:
        """A value as a Python literal, marked safe for the autoescaping template.

        Args:
            value: The value.
            indent: The indentation of the line the literal starts on.
        """
        return Markup(py_literal(value, indent))

    @property
    def local(self) -> bool:
        """Tasks run as local processes (`pod_backend: local`), not GKE pods."""
        return self.config.pod_backend == "local"

    @property
    def run_prefix(self) -> str:
        """The run prefix as an Airflow template."""
        if self.local:
            root = self.config.local_root or (Path(self.project_path) / ".gcs-bridge-runs").as_uri()
        else:
            root = self.config.gcs_bridge_root or ""
        return run_prefix_template(root)

    def local_command(self, task: TaskPlan) -> str:
        """The task's `kedro run` for a local process, with this environment's Python."""
        return shlex.join([sys.executable, "-m", "kedro", *self.arguments(task)])

    def create_command(self) -> str:
        """The command that regenerates this file."""
        words = ["kedro airflow create -j templates/gcs_bridge.j2"]
        if self.pipeline_name != "__default__":
            words.append(f"-p {self.pipeline_name}")
        if self.env != "local":
            words.append(f"-e {self.env}")
        return " ".join(words)

    def start_date(self) -> Markup:
        """`start_date` as a `datetime(...)` expression in UTC."""
        parts = ", ".join(str(part) for part in self.config.start_date)
        return Markup(f"datetime({parts}, tzinfo=timezone.utc)")

    def default_args(self) -> dict[str, Any]:
        """Airflow default_args (retry_delay is rendered separately as a timedelta)."""
        return {
            "owner": self.config.owner,
            "depends_on_past": self.config.depends_on_past,
            "email_on_failure": self.config.email_on_failure,
            "email_on_retry": self.config.email_on_retry,
            "retries": self.config.retries,
        }

    def pod_defaults(self) -> dict[str, Any]:
        """Operator arguments every pod of the DAG shares."""
        cfg = self.config
        defaults: dict[str, Any] = {
            "project_id": cfg.gcp_project_id,
            "location": cfg.gcp_region,
            "cluster_name": cfg.gcp_gke_cluster_name,
            "gcp_conn_id": cfg.gcp_conn_id,
            "namespace": cfg.k8s_namespace,
        }
        if cfg.k8s_service_account:
            defaults["service_account_name"] = cfg.k8s_service_account
        defaults |= {
            "image": cfg.docker_image,
            "cmds": ["kedro"],
            "get_logs": True,
            "do_xcom_push": False,
            "on_finish_action": "delete_pod",
            "schedule_timeout_seconds": cfg.schedule_timeout_seconds,
            "startup_timeout_seconds": cfg.startup_timeout_seconds,
            "deferrable": cfg.deferrable,
            # Run ids hold ':' and '+', which labels do not allow; annotations do.
            "annotations": {f"{LABEL_PREFIX}/run-id": "{{ run_id }}"},
        }
        return defaults

    def machine_classes(self) -> list[MachineClass]:
        """The machine classes the tasks use, each once, in task order."""
        seen: dict[str, MachineClass] = {}
        for task in self.plan.tasks if self.plan else ():
            seen.setdefault(task.machine.name, task.machine)
        return list(seen.values())

    def run_env(self) -> dict[str, str]:
        """Environment every pod gets: where this run's handoff data lives, and who it is."""
        env = {
            RUN_PREFIX_ENV: self.run_prefix,
            DAG_ID_ENV: "{{ dag.dag_id }}",
            RUN_ID_ENV: "{{ run_id }}",
            PIPELINE_ENV: self.pipeline_name,
            KEDRO_ENV_ENV: self.env,
            TRY_ENV: "{{ ti.try_number }}",
        }
        if not self.config.allow_pickle:
            env[ALLOW_PICKLE_ENV] = "false"
        if self.config.mlflow_tracking_uri:
            env[TRACKING_URI_ENV] = self.config.mlflow_tracking_uri
            env[EXPERIMENT_ENV] = self.config.mlflow_experiment or self.package_name
        if self.plan is not None:
            env[TASKS_ENV] = ",".join(task.task_id for task in self.plan.tasks)
        return env

    @property
    def finalize(self) -> FinalizeTask | None:
        """The last task (MLflow parent status, cleanup), when the config asks for one."""
        if not self.config.finalize or self.plan is None:
            return None
        taken = {task.task_id for task in self.plan.tasks}
        task_id = next(
            name
            for i in range(len(taken) + 1)
            if (name := FINALIZE_TASK + (f"_{i}" if i else "")) not in taken
        )
        with_downstream = {up for task in self.plan.tasks for up in task.upstream}
        leaves = [task.var_name for task in self.plan.tasks if task.task_id not in with_downstream]
        arguments = ["gcs-bridge", "finalize", "--cleanup", self.config.cleanup]
        return FinalizeTask(
            task_id=task_id,
            pod_name=task_id.replace("_", "-"),
            var_name=task_id,
            leaves=leaves,
            arguments=arguments,
            machine=self.config.machine_classes["small"],
        )

    def finalize_command(self, task: FinalizeTask) -> str:
        """The finalize task's command for a local process."""
        return shlex.join([sys.executable, "-m", "kedro", *task.arguments])

    def arguments(self, task: TaskPlan) -> list[str]:
        """The `kedro run` arguments of a task's container."""
        args = ["run", "--runner", RUNNER, "--pipelines", self.pipeline_name, "--env", self.env]
        args += ["--nodes", ",".join(task.nodes)]
        if self.conf_source:
            args += ["--conf-source", self.conf_source]
        return args

    def labels(self, task: TaskPlan) -> dict[str, str]:
        """Kubernetes labels of a task's pod (<= 63 characters, `[A-Za-z0-9._-]`)."""
        return {
            "app.kubernetes.io/managed-by": LABEL_PREFIX,
            f"{LABEL_PREFIX}/group": task.pod_name,
            f"{LABEL_PREFIX}/machine-class": task.machine.name[:63],
        }

    def tags(self) -> list[str]:
        """Airflow tags of the DAG."""
        return ["kedro", LABEL_PREFIX, self.package_name, *self.config.tags]


def build_dag_file(variables: Mapping[str, Any], project_path: str = "") -> DagFile:
    """Plans a DAG file from template variables (kedro-airflow's plus the merged config).

    Planning errors do not raise: they come back in `DagFile.error`, so the hook can stop
    `kedro airflow create` with them and the template can write a DAG that fails with them.
    """
    pipeline = variables["pipeline"]
    pipeline_name = str(variables["pipeline_name"])
    env = str(variables["env"])
    package_name = str(variables["package_name"])
    conf_source = str(variables.get("conf_source") or "")
    try:
        config = parse_config(variables)
    except GCSBridgeError as exc:
        return DagFile(
            "invalid", package_name, pipeline_name, env, conf_source, BridgeConfig(), None, str(exc)
        )
    name = config.dag_id or dag_id(package_name, pipeline_name, env)
    try:
        plan = plan_tasks(pipeline_name, node_specs(pipeline), config, pod_prefix="")
        missing = config.missing_deployment_keys()
        if missing:
            raise GCSBridgeError(
                f"airflow config for pipeline {pipeline_name} misses {missing}: set them in "
                "conf/base/airflow.yml (see `kedro gcs-bridge init`)."
            )
    except GCSBridgeError as exc:
        return DagFile(
            name,
            package_name,
            pipeline_name,
            env,
            conf_source,
            config,
            None,
            str(exc),
            project_path,
        )
    return DagFile(
        name, package_name, pipeline_name, env, conf_source, config, plan, None, project_path
    )


class DagFileFactory:
    """The object the template sees as `gcs_bridge`."""

    def __init__(self, project_path: str = "") -> None:
        self.project_path = project_path

    @pass_context
    def dag_file(self, context: Context) -> DagFile:
        """Plans the DAG from the variables kedro-airflow passed to the template."""
        return build_dag_file(context.get_all(), self.project_path)

    def __repr__(self) -> str:
        return "<kedro-gcs-bridge DAG file factory>"
