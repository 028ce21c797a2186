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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from kedro_gcs_bridge.config import TEMPLATE_VARIABLES, BridgeConfig, MachineClass, parse_config
from kedro_gcs_bridge.dag import pod_spec, providers
from kedro_gcs_bridge.dag.pod_spec import PyCode
from kedro_gcs_bridge.dag.variants import variant_doc, variant_suffix
from kedro_gcs_bridge.errors import ConfigError, GCSBridgeError
from kedro_gcs_bridge.planning.assets import AssetPlan, DatasetAsset
from kedro_gcs_bridge.planning.grouping import NodeSpec
from kedro_gcs_bridge.planning.naming import dag_id, local_runs_root, run_prefix_template
from kedro_gcs_bridge.planning.plan import (
    FINALIZE_RETRY_DELAY,
    Plan,
    TaskPlan,
    node_specs,
    plan_tasks,
)
from kedro_gcs_bridge.pod.context import TASK_ENV, TASKS_ENV, UPSTREAM_ENV, TaskContext
from kedro_gcs_bridge.pod.protocol import RunLayout

if TYPE_CHECKING:
    pass

RUNNER = "kedro_gcs_bridge.GCSRunner"

#: The finalize pod's view of this DAG run's task states, rendered on the worker right before
#: the pod starts (no XCom). Replay renders no `ti.get_task_states`: finalize then judges by
#: the manifests.
TASK_STATES_TEMPLATE = (
    "{{ ti.get_task_states(dag_id=dag.dag_id, run_ids=[run_id]) | tojson "
    "if ti.get_task_states is defined else '' }}"
)
#: The run's logical date names the MLflow parent run; manual Airflow 3 runs may have none.
LOGICAL_DATE_TEMPLATE = "{{ logical_date | default(run_id, true) }}"

LABEL_PREFIX = "kedro-gcs-bridge"
LINE_WIDTH = 100


#: A JSON string is a valid Python string literal, with double quotes (one encoder: `json.dumps`
#: with options builds a new one per call).
_string_literal = json.JSONEncoder(ensure_ascii=False).encode


def _flat_literal(value: Any) -> str:
    kind = type(value)
    if kind is str:  # most values of a DAG file's tables: checked first, exactly
        return _string_literal(value)
    if kind is list or kind is tuple:
        return "[" + ", ".join(map(_flat_literal, value)) + "]"
    if isinstance(value, PyCode):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, str):
        return _string_literal(value)
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
    #: The `--params` `kedro airflow create` was given (for the regenerate line).
    create_params: Mapping[str, Any] = field(default_factory=dict)
    #: The `--tags` of `kedro airflow create`: pods cut their boundaries from the registered
    #: pipeline filtered the same way (`KEDRO_GCS_BRIDGE_TAGS`).
    node_tags: tuple[str, ...] = ()
    #: Which task saves which catalog dataset as an Airflow asset, and which inputs other
    #: pipelines' DAGs make (`storage_check.with_assets`); None when the catalog was not read.
    assets: AssetPlan | None = None

    @staticmethod
    def py(value: Any, indent: int = 0) -> Markup:
        """A value as a Python literal, marked safe for the autoescaping template.

        Args:
            value: The value.
            indent: The indentation of the line the literal starts on.
        """
        return Markup(py_literal(value, indent))

    @staticmethod
    def flat(value: Any) -> Markup:
        """A value as a Python literal on one line (a table row)."""
        return Markup(_flat_literal(value))

    @property
    def local(self) -> bool:
        """Tasks run as local processes (`pod_backend: local`), not GKE pods."""
        return self.config.pod_backend == "local"

    @property
    def run_prefix(self) -> str:
        """The run prefix as an Airflow template."""
        if self.local:
            root = self.config.local_root or local_runs_root(self.project_path)
        else:
            root = self.config.gcs_bridge_root or ""
        return run_prefix_template(root)

    def local_command(self, task: TaskPlan) -> str:
        """The task's `kedro run` for a local process, with this environment's Python."""
        return shlex.join([sys.executable, "-m", "kedro", *self.arguments(task)])

    def create_command(self) -> str:
        """The command that regenerates this file: `-p`, `-e`, `--params`, `--tags` and
        `--conf-source` as given."""
        words = [pod_spec.create_command(self.pipeline_name, self.env, self.create_params)]
        if self.node_tags:
            words.append(f"--tags {shlex.quote(','.join(self.node_tags))}")
        if self.conf_source:
            words.append(f"--conf-source {shlex.quote(self.conf_source)}")
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
            **pod_spec.task_defaults(self.config),
        }

    def pod_defaults(self) -> dict[str, Any]:
        """Operator arguments every pod of the DAG shares."""
        cfg = self.config
        defaults: dict[str, Any] = {
            "project_id": cfg.gcp_project_id,
            "location": cfg.gcp_region,
            "cluster_name": cfg.gcp_gke_cluster_name,
            "gcp_conn_id": cfg.pod.gcp_conn_id,
            "namespace": cfg.k8s_namespace,
        }
        if cfg.k8s_service_account:
            defaults["service_account_name"] = cfg.k8s_service_account
        defaults |= {
            "image": cfg.docker_image,
            "cmds": ["kedro"],
            "get_logs": True,
            "do_xcom_push": False,
            "on_finish_action": cfg.pod.on_finish_action,
            "schedule_timeout_seconds": cfg.pod.schedule_timeout_seconds,
            "startup_timeout_seconds": cfg.pod.startup_timeout_seconds,
            "deferrable": cfg.pod.deferrable,
            # Run ids hold ':' and '+', which labels do not allow; annotations do.
            "annotations": {**cfg.pod.annotations, f"{LABEL_PREFIX}/run-id": "{{ run_id }}"},
        }
        return defaults | pod_spec.pod_settings(cfg)

    def newer_options(self) -> list[tuple[dict[str, str], dict[str, Any]]]:
        """(module -> version needed, options) the DAG file adds to `POD_DEFAULTS` at parse
        time, where the installed Airflow and providers have them (see dag/providers.py)."""
        return providers.newer_options()

    def task_settings(self, task: TaskPlan) -> dict[str, Any]:
        """One task's timeout, tolerations, affinity and doc (see dag/pod_spec.py)."""
        return pod_spec.task_settings(self.config, task, self.local)

    def node_selector(self, task: TaskPlan) -> dict[str, str]:
        """The task's node selectors: `node_selector` extras plus its machine class's."""
        return pod_spec.node_selector(self.config, task)

    def dag_settings(self) -> dict[str, Any]:
        """DAG arguments from the production knobs (timeouts, params, callbacks, deadline)."""
        return pod_spec.dag_settings(self.config)

    def what_runs(self) -> Markup:
        """The docstring's account of where tasks run (GKE pods, or a variant's)."""
        return Markup(variant_doc(self.config))

    def doc_lines(self) -> list[str]:
        """The DAG's doc in Airflow's UI, line by line (see `pod_spec.dag_doc`)."""
        return pod_spec.dag_doc(self.config, self.plan, self._title(), self.create_command())

    def _title(self) -> str:
        return f"Kedro pipeline `{self.pipeline_name}` of `{self.package_name}`, env `{self.env}`"

    def imports(self) -> list[str]:
        """Import lines the knobs in use need (Secret, PodGenerator, callbacks, deadline)."""
        return pod_spec.imports(self.config, self.local)

    def task_env(self, task: TaskPlan) -> dict[str, str]:
        """What one task's pod gets on top of `run_env`: its id, and which task made each
        boundary dataset it loads (the consumer reads that task's committed manifest)."""
        return TaskContext(task=task.task_id, upstream=dict(task.inputs)).to_env()

    def machine_classes(self) -> list[MachineClass]:
        """The machine classes the tasks use, each once, in task order."""
        seen: dict[str, MachineClass] = {}
        for task in self.plan.tasks if self.plan else ():
            seen.setdefault(task.machine.name, task.machine)
        if self.plan is not None and self.plan.finalize is not None:
            seen.setdefault(self.plan.finalize.machine.name, self.plan.finalize.machine)
        return list(seen.values())

    def run_env(self) -> dict[str, str]:
        """Environment every pod gets: where this run's handoff data lives, and who it is."""
        handoff = self.config.handoff
        mlflow = self.config.mlflow.tracking_uri
        context = TaskContext(
            run_prefix=self.run_prefix,
            pipeline=self.pipeline_name,
            kedro_env=self.env,
            local_handoff=handoff.local_handoff,
            parallel_threshold=handoff.parallel_threshold,
            parallel_concurrency=handoff.parallel_concurrency,
            allow_pickle=None if handoff.allow_pickle else False,
            tracking_uri=mlflow or None,
            experiment=(self.config.mlflow.experiment or self.package_name) if mlflow else None,
            mlflow_required=True if mlflow and self.config.mlflow.required else None,
            mlflow_metrics=tuple(self.config.mlflow.metrics) if mlflow else (),
            mlflow_budget=self.config.mlflow.budget_seconds if mlflow else None,
            structured_logs=True if self.config.pod.structured_logs else None,
            tasks=tuple(task.task_id for task in self.plan.tasks) if self.plan else (),
            tags=tuple(self.node_tags),
        )
        rendered = {
            "dag_id": "{{ dag.dag_id }}",
            "run_id": "{{ run_id }}",
            "try_number": "{{ ti.try_number }}",
            "task_start": pod_spec.TASK_START_TEMPLATE,
        }
        if mlflow:
            rendered["logical_date"] = LOGICAL_DATE_TEMPLATE
        # The user's plain variables first; the bridge's own win.
        return {**self.config.pod.env, **context.to_env(rendered)}

    @property
    def finalize(self) -> TaskPlan | None:
        """The last task (verdict, MLflow parent status, cleanup), planned by `plan_tasks`."""
        return None if self.plan is None else self.plan.finalize

    finalize_retry_delay = FINALIZE_RETRY_DELAY

    def finalize_arguments(self) -> list[str]:
        """The finalize container's arguments: the run-failed task fails a failed run."""
        return [
            "gcs-bridge",
            "finalize",
            "--cleanup",
            self.config.handoff.cleanup,
            "--failed-groups",
            "report",
        ]

    @property
    def run_failed(self) -> TaskPlan | None:
        """The task that fails the DAG run when a group failed (with finalize only)."""
        return None if self.plan is None else self.plan.run_failed

    def run_failed_command(self) -> str:
        """What the run-failed task runs on the Airflow worker: it only fails."""
        message = (
            "A group task of this DAG run failed (see its log); finalize set the MLflow "
            "parent run's status and cleaned up as configured."
        )
        return f"echo {shlex.quote(message)} >&2; exit 1"

    def finalize_command(self) -> str:
        """The finalize task's command for a local process."""
        return shlex.join([sys.executable, "-m", "kedro", *self.finalize_arguments()])

    def finalize_env(self, task: TaskPlan) -> dict[str, str]:
        """What the finalize pod gets on top of `run_env`: the task states Airflow recorded."""
        return TaskContext(task=task.task_id).to_env({"task_states": TASK_STATES_TEMPLATE})

    def upstream_vars(self, task: TaskPlan) -> list[str]:
        """The DAG-file variables of a task's upstream tasks."""
        return [self.plan.task(up).var_name for up in task.upstream] if self.plan else []

    def arguments(self, task: TaskPlan) -> list[str]:
        """The `kedro run` arguments of a task's container."""
        head, tail = self.run_arguments()
        return [*head, ",".join(task.nodes), *tail]

    def labels(self, task: TaskPlan) -> dict[str, str]:
        """Kubernetes labels of a task's pod (<= 63 characters, `[A-Za-z0-9._-]`)."""
        return {
            **self.config.pod.labels,
            "app.kubernetes.io/managed-by": LABEL_PREFIX,
            f"{LABEL_PREFIX}/group": task.pod_name,
            f"{LABEL_PREFIX}/machine-class": task.machine.name[:63],
        }

    # --- The lean layout: tables the DAG file loops over ----------------------------------

    def task_table(self) -> dict[str, list[Any]]:
        """Task id -> its row (`task_row`): the only per-task data the DAG file writes."""
        return {task.task_id: task_row(task) for task in self.plan.tasks} if self.plan else {}

    def run_arguments(self) -> tuple[list[str], list[str]]:
        """A task's `kedro run` arguments before and after its `--nodes` value."""
        head = ["run", "--runner", RUNNER, "--pipelines", self.pipeline_name, "--env", self.env]
        tail = ["--conf-source", self.conf_source] if self.conf_source else []
        return [*head, "--nodes"], tail + pod_spec.params_arguments(self.config)

    def local_command_parts(self) -> tuple[str, str]:
        """A local task's command before and after its (shell-quoted) `--nodes` value."""
        head, tail = self.run_arguments()
        before = shlex.join([sys.executable, "-m", "kedro", *head])
        return before, "".join(f" {shlex.quote(word)}" for word in tail)

    @staticmethod
    def task_env_names() -> tuple[str, str]:
        """The variables a task's pod gets on top of `run_env`: its id, and its upstream
        datasets' producers (`TaskContext.to_env`)."""
        return TASK_ENV, UPSTREAM_ENV

    @staticmethod
    def label_keys() -> tuple[str, str]:
        """The label keys of a pod's group and machine class."""
        return f"{LABEL_PREFIX}/group", f"{LABEL_PREFIX}/machine-class"

    def machine_table(self) -> dict[str, dict[str, Any]]:
        """Machine class -> the operator arguments its tasks share beyond their resources:
        node selectors, timeout, pull policy, tolerations and affinity (no doc)."""
        table: dict[str, dict[str, Any]] = {}
        for task in self.plan.tasks if self.plan else ():
            if task.machine.name not in table:
                settings = pod_spec.task_settings(self.config, task, self.local)
                settings.pop("doc_md")
                if not self.local:
                    settings = {"node_selector": self.node_selector(task), **settings}
                table[task.machine.name] = {"retries": task.retries, **settings}
            elif table[task.machine.name]["retries"] != task.retries:
                raise GCSBridgeError(
                    f"internal error: tasks of machine class {task.machine.name} differ in "
                    "retries; please report it"
                )
        return table

    def placement_models(self) -> bool:
        """Whether a machine class sets tolerations or affinity: the DAG file makes them
        Kubernetes models once per class, or the operator converts the same dicts per task."""
        return any(
            "tolerations" in settings or "affinity" in settings
            for settings in self.machine_table().values()
        )

    def file_run_env(self) -> dict[str, Any]:
        """`run_env` as the DAG file writes it: the task list as the keys of its `TASKS`."""
        env: dict[str, Any] = self.run_env()
        if TASKS_ENV in env:
            env[TASKS_ENV] = PyCode('",".join(TASKS)')
        return env

    def shared_labels(self) -> dict[str, str]:
        """The labels every group's pod has (its group and machine class are added)."""
        return {**self.config.pod.labels, "app.kubernetes.io/managed-by": LABEL_PREFIX}

    def doc_parts(self) -> tuple[list[str], list[str]]:
        """The DAG doc's lines before and after its one line per task."""
        return pod_spec.dag_doc_parts(self.config, self._title(), self.create_command())

    def outlet_table(self) -> dict[str, list[str]]:
        """Task id -> the assets its nodes save, for the tasks that save any."""
        if self.assets is None:
            return {}
        return {
            task_id: [asset.name for asset in saved]
            for task_id, saved in self.assets.outlets.items()
            if saved
        }

    # --- Airflow assets (planning/assets.py) ---------------------------------------------

    def sdk_imports(self) -> str:
        """What the DAG file imports from `airflow.sdk`."""
        names = ["DAG"]  # in isort's order: constants, then classes
        if self.asset_table():
            names.append("Asset")
        if self.save_versions():
            names.append("ObjectStoragePath")
        return ", ".join(names)

    def asset_table(self) -> tuple[DatasetAsset, ...]:
        """Every asset the DAG saves or is scheduled on, once (the DAG file's `ASSETS`)."""
        if self.assets is None:
            return ()
        waits_on = set(self.schedule_inputs())
        return tuple(
            asset
            for asset in self.assets.all_assets()
            if asset.name in waits_on or asset not in self.assets.inputs
        )

    def outlets(self, task: TaskPlan) -> list[PyCode]:
        """The task's outlets: the assets its nodes save."""
        saved = self.assets.outlets.get(task.task_id, ()) if self.assets is not None else ()
        return [_asset_ref(asset.name) for asset in saved]

    def schedule(self) -> Markup:
        """The DAG's `schedule`: the config's, or the assets of its inputs that other pipelines'
        DAGs make (`dag.schedule_on_inputs`: a list is all of them, `|` any of them)."""
        inputs = self.schedule_inputs()
        if not inputs:
            return self.py(self.config.schedule)
        if self.config.dag.schedule_on_inputs == "any" and len(inputs) > 1:
            return Markup("(" + " | ".join(_asset_ref(name) for name in inputs) + ")")
        return self.py([_asset_ref(name) for name in inputs], 4)

    def schedule_inputs(self) -> list[str]:
        """The datasets the DAG is scheduled on (none unless `dag.schedule_on_inputs`)."""
        if not self.config.dag.schedule_on_inputs or self.assets is None:
            return []
        return [asset.name for asset in self.assets.inputs]

    def asset_notes(self) -> list[str]:
        """What create says about the assets: `schedule_on_inputs` with nothing to wait for."""
        if not self.config.dag.schedule_on_inputs or self.assets is None or self.assets.inputs:
            return []
        return [
            "dag.schedule_on_inputs is set, but no input of this pipeline is a catalog dataset "
            "on GCS that another pipeline's DAG makes: the DAG keeps `schedule: null`."
        ]

    def save_versions(self) -> dict[str, dict[str, Any]]:
        """Task id -> where its pod records the Kedro save version (its manifest in the run
        prefix, an Airflow template) and the versioned datasets whose asset events carry it."""
        if self.assets is None:
            return {}
        table = {}
        for task in self.plan.tasks if self.plan else ():
            versioned = self.assets.versioned(task.task_id)
            if versioned:
                manifest = RunLayout(self.run_prefix).manifest(task.task_id)
                table[task.task_id] = {
                    "manifest": manifest,
                    "datasets": [asset.name for asset in versioned],
                }
        return table

    def storage_conn_id(self) -> str | None:
        """The Airflow connection the worker reads a GCS run prefix with (None: local)."""
        return None if self.local else self.config.pod.gcp_conn_id

    def tags(self) -> list[str]:
        """Airflow tags of the DAG."""
        return ["kedro", LABEL_PREFIX, self.package_name, *self.config.dag.tags]


def _asset_ref(name: str) -> PyCode:
    return PyCode(f"ASSETS[{py_literal(name)}]")


def build_dag_file(
    variables: Mapping[str, Any],
    project_path: str = "",
    create_params: Mapping[str, Any] | None = None,
    node_tags: Sequence[str] = (),
    registered: Sequence[NodeSpec] = (),
    nodes: Sequence[NodeSpec] | None = None,
) -> DagFile:
    """Plans a DAG file from template variables (kedro-airflow's plus the merged config);
    `create_params` are the `--params` of `kedro airflow create` (for the regenerate line),
    `node_tags` its `--tags` (the pods filter the registered pipeline by them too),
    `registered` the nodes of every registered pipeline (for `groups:` warnings), `nodes`
    the pipeline's `node_specs` where the caller has them already.

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
    # The local and ungrouped variants never share the GKE DAG's id (dag/variants.py).
    name = (config.dag_id or dag_id(package_name, pipeline_name, env)) + variant_suffix(config)
    nodes = node_specs(pipeline) if nodes is None else nodes
    plan, error = _plan(nodes, pipeline_name, config, registered)
    return DagFile(
        name,
        package_name,
        pipeline_name,
        env,
        conf_source,
        config,
        plan,
        error,
        project_path,
        dict(create_params or {}),
        tuple(node_tags),
    )


def _plan(
    nodes: Sequence[NodeSpec],
    pipeline_name: str,
    config: BridgeConfig,
    registered: Sequence[NodeSpec],
) -> tuple[Plan | None, str | None]:
    """The plan, or the error that stops it (a config missing what a GKE DAG needs)."""
    try:
        plan = plan_tasks(pipeline_name, nodes, config, "", registered)
        providers.check_supported(config)
        missing = config.missing_deployment_keys()
        if missing:
            raise ConfigError(
                f"airflow config for pipeline {pipeline_name} misses {missing}: set them in "
                "conf/base/airflow.yml (see `kedro gcs-bridge init`)."
            )
    except GCSBridgeError as exc:
        return None, str(exc)
    return plan, None


#: Template variables that are not config: kedro-airflow's own, and the factory itself.
_NOT_CONFIG = TEMPLATE_VARIABLES | {"gcs_bridge"}


def _plan_key(variables: Mapping[str, Any]) -> tuple[str, ...]:
    """What a plan depends on: the pipeline, env, package, conf source and merged config."""
    config = {key: value for key, value in variables.items() if key not in _NOT_CONFIG}
    return (
        str(variables["pipeline_name"]),
        str(variables["env"]),
        str(variables["package_name"]),
        str(variables.get("conf_source") or ""),
        json.dumps(config, sort_keys=True, default=repr),
    )


class DagFileFactory:
    """The object the template sees as `gcs_bridge`."""

    def __init__(
        self,
        project_path: str = "",
        create_params: Mapping[str, Any] | None = None,
        node_tags: Sequence[str] = (),
        planned: Mapping[str, DagFile] | None = None,
    ):
        self.project_path = project_path
        self.create_params = dict(create_params or {})
        self.node_tags = tuple(node_tags)
        self.planned = dict(planned or {})
        self._planned: dict[tuple[str, ...], DagFile] = {}

    def plan(self, variables: Mapping[str, Any]) -> DagFile:
        """The DAG file of one pipeline, planned once per pipeline, env and config."""
        key = _plan_key(variables)
        if key not in self._planned:
            self._planned[key] = build_dag_file(
                variables, self.project_path, self.create_params, self.node_tags
            )
        return self._planned[key]

    @pass_context
    def dag_file(self, context: Context) -> DagFile:
        """The DAG `kedro airflow create` planned for this pipeline before writing (so it is
        planned once, from the config merged group by group), else one planned from the
        variables kedro-airflow passed to the template."""
        planned = self.planned.get(str(context.get("pipeline_name")))
        if planned is not None:
            return planned
        jinja_globals = context.environment.globals  # `range`, `dict`, ...: not config
        return self.plan({k: v for k, v in context.get_all().items() if k not in jinja_globals})

    def __repr__(self) -> str:
        return "<kedro-gcs-bridge DAG file factory>"


# --- The lean layout: per-task data once, in tables the DAG file loops over --------------


def default_pod_name(task_id: str) -> str:
    """The pod name the DAG file derives from a task id when its row gives none (the same
    expression is written in the file's loop)."""
    return task_id.replace("_", "-").lower()


def task_row(task: TaskPlan) -> list[Any]:
    """One row of the DAG file's `TASKS` table: only what is this task's own (what its
    machine class or the whole DAG decides is in the file once). A column the file can derive
    from the others is None: the group (its task id), the pod name (`default_pod_name`) and
    the tasks it waits for (the tasks that make what it reads)."""
    makers = sorted({up for _, up in task.inputs})
    return [
        None if task.group == task.task_id else task.group,
        None if task.pod_name == default_pod_name(task.task_id) else task.pod_name,
        task.machine.name,
        list(task.nodes),
        [[dataset, up] for dataset, up in task.inputs],
        list(task.outputs),
        None if list(task.upstream) == makers else list(task.upstream),
    ]
