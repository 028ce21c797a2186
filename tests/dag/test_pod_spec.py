"""Issue 15, a production-grade DAG: every knob of airflow.yml reaches the DAG that a real
Airflow DagBag loads, and the pod that the operator builds offline (`build_pod_request_obj`
with `dry_run=True`), after rendering its templated fields as Airflow does for a run."""

from __future__ import annotations

import copy
import sys
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from conftest import EXAMPLE, RUN_ID, TEMPLATE, template_context
from kedro.pipeline import Pipeline, node

from kedro_gcs_bridge.dag.dagfile import build_dag_file

#: A module the DAG file imports the callbacks from, as a user's package would provide them.
ALERTS = """
def notify(context):
    return None


def late(context):
    return None
"""
POD_TEMPLATE = """
apiVersion: v1
kind: Pod
metadata:
  annotations: {from-template: "yes"}
spec:
  schedulerName: team-scheduler
  containers:
    - name: base
"""
AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
            ]
        }
    }
}
BATCH_TOLERATION = {
    "key": "dedicated",
    "operator": "Equal",
    "value": "batch",
    "effect": "NoSchedule",
}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
#: Every knob of issue 15 at once.
ALL_KNOBS: dict[str, Any] = {
    "handoff": {"cleanup": "on_success", "parallel_threshold": "64Mi", "parallel_concurrency": 4},
    "default_args": {
        "execution_timeout": 30,
        "pool": "kedro",
        "pool_slots": 2,
        "priority_weight": 5,
        "weight_rule": "absolute",
        "on_retry_callback": "alerts15.notify",
        "queue": "kedro-queue",
        "max_active_tis_per_dag": 3,
    },
    "pod": {
        "on_finish_action": "delete_pod",
        "image_pull_policy": "Always",
        "security_context": {"container": {"readOnlyRootFilesystem": True}},
        "labels": {"team": "data", "cost-center": "cc-42"},
        "annotations": {"policy.example.com/owner": "Data team"},
        "node_selector": {"cloud.google.com/gke-nodepool": "batch"},
        "env": {"LOG_LEVEL": "INFO"},
        "env_from_secrets": ["bulk-env"],
        "secret_env": {"MLFLOW_TRACKING_TOKEN": "mlflow-auth:token"},
        "tolerations": [BATCH_TOLERATION],
        "affinity": AFFINITY,
        "override": {
            "metadata": {"annotations": {"from-override": "yes"}},
            "spec": {"priorityClassName": "batch-low"},
        },
    },
    "dag": {
        "dagrun_timeout": 240,
        "doc_md": "Nightly training of the spaceflights model.",
        "params": {"lr": 0.1, "model": "ridge"},
        "on_failure_callback": "alerts15.notify",
        "on_success_callback": "alerts15.notify",
        "deadline": {"minutes": 300, "callback": "alerts15.late"},
        "max_active_tasks": 7,
    },
    "machine_classes": {
        "gpu": {
            "execution_timeout": 90,
            "tolerations": [GPU_TOLERATION],
            "image_pull_policy": "IfNotPresent",
        }
    },
}


def nested(path: str, value: Any) -> dict[str, Any]:
    """`("pod.labels", v)` -> `{"pod": {"labels": v}}`."""
    group, _, key = path.rpartition(".")
    return {group: {key: value}} if group else {key: value}


def identity(value: Any) -> Any:
    return value


def three_nodes() -> Pipeline:
    """a -> b -> c, with b on the built-in GPU class."""
    return Pipeline(
        [
            node(identity, "d0", "d1", name="a"),
            node(identity, "d1", "d2", name="b", tags=["machine.gpu"]),
            node(identity, "d2", "d3", name="c"),
        ]
    )


def chain(size: int) -> Pipeline:
    """`size` nodes in a line, every third on the built-in GPU class."""
    return Pipeline(
        [
            node(identity, f"d{i}", f"d{i + 1}", name=f"n{i}", tags=["machine.gpu"][: i % 3 == 1])
            for i in range(size)
        ]
    )


def render(
    folder: Path,
    create_params: dict[str, Any] | None = None,
    pipeline: Pipeline | None = None,
    **config: Any,
) -> Path:
    """templates/gcs_bridge.j2 rendered in-process, as `kedro airflow create` renders it
    (`three_nodes` unless another pipeline is given)."""
    from slugify import slugify

    from kedro_gcs_bridge.dag.dagfile import DagFileFactory

    example = yaml.safe_load((EXAMPLE / "conf/base/airflow.yml").read_text(encoding="utf-8"))
    loader = jinja2.FileSystemLoader(TEMPLATE.parent)
    jinja_env = jinja2.Environment(autoescape=True, loader=loader, lstrip_blocks=True)
    jinja_env.filters["slugify"] = slugify
    pipeline = pipeline or three_nodes()
    target = folder / "pkg_dag.py"
    jinja_env.get_template(TEMPLATE.name).stream(
        dag_name="pkg",
        node_objs=pipeline.group_nodes_by(),
        env="local",
        pipeline_name="__default__",
        package_name="pkg",
        pipeline=pipeline,
        conf_source="",
        **{**example["default"], **config, "gcs_bridge": DagFileFactory("", create_params)},
    ).dump(str(target))
    return target


def load(path: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(path.parent))
    assert not bag.import_errors, bag.import_errors
    (dag,) = bag.dags.values()
    return dag


def pods(dag: Any, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    """task id -> V1Pod, templates rendered with the run's params (trigger form values in
    `conf`, merged over the DAG's params as Airflow's task runner does)."""
    from airflow.sdk.definitions.param import process_params

    built = {}
    # A run works on its own copy: rendering replaces the templates and conf sets the params.
    dag = copy.deepcopy(dag)
    for task in dag.tasks:
        if not hasattr(task, "build_pod_request_obj"):
            continue  # the run-failed task runs no pod
        context = {
            **template_context(dag),
            "params": process_params(dag, task, conf, suppress_exception=False),
        }
        task.render_template_fields(context)
        built[task.task_id] = task.build_pod_request_obj(dry_run=True)
    return built


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="kedro-gcs-bridge-issue15-"))
    (folder / "alerts15.py").write_text(ALERTS, encoding="utf-8")
    (folder / "pod.yaml").write_text(POD_TEMPLATE, encoding="utf-8")
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))


KNOBS_PARAMS = {"mlflow_tracking_uri": "https://mlflow.example.com"}


def knobs_config(workdir: Path) -> dict[str, Any]:
    """`ALL_KNOBS` with the pod template file the module wrote."""
    return {**ALL_KNOBS, "pod": {**ALL_KNOBS["pod"], "template_file": str(workdir / "pod.yaml")}}


@pytest.fixture(scope="module")
def knobs_dag(workdir: Path) -> Any:
    folder = workdir / "all"
    folder.mkdir()
    return load(render(folder, KNOBS_PARAMS, **knobs_config(workdir)))


@pytest.fixture(scope="module")
def knobs_pods(knobs_dag: Any) -> dict[str, Any]:
    return pods(knobs_dag)


@pytest.fixture(scope="module")
def default_dag(workdir: Path) -> Any:
    folder = workdir / "defaults"
    folder.mkdir()
    return load(render(folder, handoff={"cleanup": "on_success"}))


def container(pod: Any) -> Any:
    return pod.spec.containers[0]


class TestTaskKnobs:
    def test_execution_timeout_per_task_with_class_override(self, knobs_dag: Any) -> None:
        timeouts = {task.task_id: task.execution_timeout for task in knobs_dag.tasks}
        assert timeouts == {
            "a": timedelta(minutes=30),
            "b": timedelta(minutes=90),  # machine class gpu
            "c": timedelta(minutes=30),
            "gcs_bridge_finalize": timedelta(minutes=30),
            "gcs_bridge_run_failed": None,  # on the worker, it only fails
        }

    def test_a_failed_group_fails_the_run_through_a_task_that_is_never_retried(
        self, knobs_dag: Any
    ) -> None:
        watcher = knobs_dag.get_task("gcs_bridge_run_failed")
        assert str(getattr(watcher.trigger_rule, "value", watcher.trigger_rule)) == "one_failed"
        assert watcher.retries == 0
        assert watcher.upstream_task_ids == {"a", "b", "c"}
        assert watcher.downstream_task_ids == set()
        finalize = container(pods(knobs_dag)["gcs_bridge_finalize"])
        assert finalize.args[-2:] == ["--failed-groups", "report"]

    def test_dagrun_timeout(self, knobs_dag: Any, default_dag: Any) -> None:
        assert knobs_dag.dagrun_timeout == timedelta(minutes=240)
        assert default_dag.dagrun_timeout is None

    def test_pool_slots_priority_and_weight_rule(self, knobs_dag: Any) -> None:
        for task in knobs_dag.tasks:
            assert (task.pool, task.pool_slots, task.priority_weight) == ("kedro", 2, 5)
            assert str(task.weight_rule).lower().endswith("absolute")

    @pytest.mark.parametrize(
        ("dag", "action"), [("default_dag", "delete_succeeded_pod"), ("knobs_dag", "delete_pod")]
    )
    def test_on_finish_action(self, dag: str, action: str, request: pytest.FixtureRequest) -> None:
        pod_tasks = [
            task
            for task in request.getfixturevalue(dag).tasks
            if hasattr(task, "build_pod_request_obj")
        ]
        assert len(pod_tasks) == 4
        for task in pod_tasks:
            assert task.on_finish_action.value == action

    def test_doc_md_of_dag_and_tasks(self, knobs_dag: Any) -> None:
        doc = knobs_dag.doc_md
        assert doc.startswith("# Kedro pipeline `__default__` of `pkg`")
        assert "Nightly training of the spaceflights model." in doc
        assert "| `b` | `gpu` | `b` | `d1` |" in doc
        assert "kedro airflow create" in doc
        task_doc = knobs_dag.get_task("b").doc_md
        assert "Nodes:\n- `b`" in task_doc and "`d1` (from `a`)" in task_doc
        assert "Writes:\n- `d2`" in task_doc

    def test_default_args_reach_every_task_as_they_are(self, knobs_dag: Any) -> None:
        import alerts15

        for task in knobs_dag.tasks:
            if task.task_id == "gcs_bridge_run_failed":
                continue
            assert (task.queue, task.max_active_tis_per_dag) == ("kedro-queue", 3)
            callbacks = task.on_retry_callback
            assert alerts15.notify in (callbacks if isinstance(callbacks, list) else [callbacks])
        assert knobs_dag.max_active_tasks == 7

    def test_callbacks_are_the_users_functions(self, knobs_dag: Any) -> None:
        import alerts15

        for callbacks in (knobs_dag.on_failure_callback, knobs_dag.on_success_callback):
            assert alerts15.notify in (callbacks if isinstance(callbacks, list) else [callbacks])

    def test_deadline_alert(self, knobs_dag: Any) -> None:
        from airflow.sdk import DeadlineReference

        (alert,) = knobs_dag.deadline
        assert alert.interval == timedelta(minutes=300)
        assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
        assert alert.callback.path == "alerts15.late"


class TestPodKnobs:
    def test_security_context_defaults(self, default_dag: Any) -> None:
        pod = pods(default_dag)["a"]
        assert pod.spec.security_context == {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "fsGroup": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert container(pod).security_context == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
        }

    def test_security_context_override(self, knobs_pods: dict[str, Any]) -> None:
        context = container(knobs_pods["a"]).security_context
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False

    def test_labels_and_annotations_keep_the_bridges(self, knobs_pods: dict[str, Any]) -> None:
        meta = knobs_pods["b"].metadata
        assert {"team": "data", "cost-center": "cc-42"}.items() <= meta.labels.items()
        assert meta.labels["kedro-gcs-bridge/group"] == "b"
        assert meta.labels["app.kubernetes.io/managed-by"] == "kedro-gcs-bridge"
        assert meta.annotations["policy.example.com/owner"] == "Data team"
        assert meta.annotations["kedro-gcs-bridge/run-id"] == RUN_ID

    def test_env_vars_and_secrets_by_reference_only(self, knobs_pods: dict[str, Any]) -> None:
        main = container(knobs_pods["a"])
        env = {var.name: var for var in main.env}
        assert env["LOG_LEVEL"].value == "INFO"
        token = env["MLFLOW_TRACKING_TOKEN"]
        assert token.value is None
        assert (token.value_from.secret_key_ref.name, token.value_from.secret_key_ref.key) == (
            "mlflow-auth",
            "token",
        )
        assert [source.secret_ref.name for source in main.env_from if source.secret_ref] == [
            "bulk-env"
        ]

    @pytest.mark.parametrize(
        ("dag", "threshold", "concurrency"),
        [("default_dag", 128 * 2**20, 8), ("knobs_dag", 64 * 2**20, 4)],
    )
    def test_parallel_transfer_settings_reach_every_pod(
        self, dag: str, threshold: int, concurrency: int, request: pytest.FixtureRequest
    ) -> None:
        from kedro_gcs_bridge.pod.context import PARALLEL_CONCURRENCY_ENV as CONCURRENCY_ENV
        from kedro_gcs_bridge.pod.context import PARALLEL_THRESHOLD_ENV as THRESHOLD_ENV
        from kedro_gcs_bridge.pod.transfer import TransferSettings

        for pod in pods(request.getfixturevalue(dag)).values():
            env = {var.name: var.value for var in container(pod).env}
            assert (env[THRESHOLD_ENV], env[CONCURRENCY_ENV]) == (str(threshold), str(concurrency))
            settings = TransferSettings.from_env(env)  # as the pod reads them
            assert (settings.threshold, settings.concurrency) == (threshold, concurrency)

    def test_image_pull_policy_with_class_override(self, knobs_pods: dict[str, Any]) -> None:
        policies = {task: container(pod).image_pull_policy for task, pod in knobs_pods.items()}
        assert policies == {
            "a": "Always",
            "b": "IfNotPresent",  # machine class gpu
            "c": "Always",
            "gcs_bridge_finalize": "Always",
        }

    def test_tolerations_and_affinity_per_machine_class(self, knobs_pods: dict[str, Any]) -> None:
        def tolerations(task: str) -> list[tuple[str, str]]:
            return [(t.key, t.operator) for t in knobs_pods[task].spec.tolerations]

        assert tolerations("a") == [("dedicated", "Equal")]
        assert tolerations("b") == [("nvidia.com/gpu", "Exists")]
        terms = knobs_pods["a"].spec.affinity.node_affinity
        expression = terms.required_during_scheduling_ignored_during_execution.node_selector_terms[
            0
        ].match_expressions[0]
        assert (expression.key, expression.values) == ("zone", ["a"])

    def test_node_selector_extras_and_gpu_pod(self, knobs_pods: dict[str, Any]) -> None:
        gpu = knobs_pods["b"]
        assert gpu.spec.node_selector == {
            "cloud.google.com/gke-nodepool": "batch",
            "cloud.google.com/gke-accelerator": "nvidia-l4",
        }
        assert container(gpu).resources.limits == {"nvidia.com/gpu": "1"}
        assert container(gpu).resources.requests["cpu"] == "4"
        assert knobs_pods["a"].spec.node_selector == {"cloud.google.com/gke-nodepool": "batch"}

    def test_a_users_gpu_class_gets_its_accelerator_and_gpu_limit(self, workdir: Path) -> None:
        folder = workdir / "gpu"
        folder.mkdir()
        t4 = {"accelerator": "nvidia-tesla-t4", "gpu_count": 2, "cpu": "8", "memory": "30Gi"}
        built = pods(load(render(folder, machine_classes={"gpu": t4})))
        gpu, plain = built["b"], built["a"]
        assert gpu.spec.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
        assert container(gpu).resources.limits == {"nvidia.com/gpu": "2"}
        assert (container(gpu).resources.requests["cpu"], plain.spec.node_selector) == ("8", {})
        assert not container(plain).resources.limits

    def test_pod_template_file_and_pod_override_are_merged(
        self, knobs_pods: dict[str, Any]
    ) -> None:
        for pod in knobs_pods.values():
            assert pod.spec.scheduler_name == "team-scheduler"  # from the template file
            assert pod.spec.priority_class_name == "batch-low"  # from pod_override
            assert pod.metadata.annotations["from-override"] == "yes"
            assert container(pod).args[0] in {"run", "gcs-bridge"}  # the bridge's own stay
            assert pod.spec.node_selector["cloud.google.com/gke-nodepool"] == "batch"


class TestParams:
    def test_dag_params_are_the_trigger_forms_defaults(self, knobs_dag: Any) -> None:
        assert dict(knobs_dag.params.dump()) == {"lr": 0.1, "model": "ridge"}

    def test_a_value_given_at_trigger_reaches_kedro_run(self, knobs_dag: Any) -> None:
        args = container(pods(knobs_dag, {"lr": 0.5})["c"]).args
        assert args[-2:] == ["--params", 'lr=0.5,model="ridge"']
        assert "--params" not in container(pods(knobs_dag)["gcs_bridge_finalize"]).args

    def test_defaults_reach_kedro_run_when_nothing_is_given(
        self, knobs_pods: dict[str, Any]
    ) -> None:
        assert container(knobs_pods["a"]).args[-1] == 'lr=0.1,model="ridge"'

    def test_kedro_parses_the_rendered_params_back(self) -> None:
        from omegaconf import OmegaConf

        parsed = OmegaConf.to_container(
            OmegaConf.from_dotlist(["lr=0.5", 'model="ridge"', "on=true"])
        )
        assert parsed == {"lr": 0.5, "model": "ridge", "on": True}

    def test_a_local_process_gets_them_too(self, workdir: Path) -> None:
        from airflow.sdk.definitions.param import process_params

        folder = workdir / "local"
        folder.mkdir()
        dag = load(
            render(
                folder,
                pod_backend="local",
                local_root=(workdir / "runs").as_uri(),
                params={"lr": 0.1, "model": "it's"},
            )
        )
        task = copy.deepcopy(dag).get_task("a")
        params = process_params(dag, task, {"lr": 0.5}, suppress_exception=False)
        task.render_template_fields({**template_context(dag), "params": params})
        assert task.bash_command.endswith("--params 'lr=0.5,model=\"it\\u0027s\"'")


class TestRegenerateLine:
    VARIABLES: dict[str, Any] = {
        "pipeline_name": "ds",
        "env": "prod",
        "package_name": "pkg",
        "gcp_project_id": "p",
        "gcp_region": "r",
        "gcp_gke_cluster_name": "c",
        "docker_image": "i",
        "gcs_bridge_root": "gs://b/r",
    }

    def test_repeats_pipeline_env_and_params(self) -> None:
        dag = build_dag_file(
            {**self.VARIABLES, "pipeline": three_nodes()},
            create_params={"mlflow_tracking_uri": "https://m.example.com", "x": {"y": True}},
        )
        assert dag.create_command() == (
            "kedro airflow create -j templates/gcs_bridge.j2 -p ds -e prod "
            "--params mlflow_tracking_uri=https://m.example.com,x.y=true"
        )

    def test_never_repeats_a_password(self) -> None:
        dag = build_dag_file(
            {**self.VARIABLES, "pipeline": three_nodes()},
            create_params={"mlflow_tracking_uri": "https://alice:pw-4715@m.example.com:8443"},
        )
        assert "pw-4715" not in dag.create_command()
        assert "alice:PASSWORD@m.example.com:8443" in dag.create_command()

    def test_is_in_the_file_header(self, workdir: Path) -> None:
        folder = workdir / "header"
        folder.mkdir()
        text = render(folder, {"mlflow_tracking_uri": "https://m.example.com"}).read_text("utf-8")
        assert "    kedro airflow create -j templates/gcs_bridge.j2 --params " in text


#: One bad value of each knob (`doc_md` takes any text); the reader's own cases are in
#: tests/planning/test_k8s.py and test_config*.py.
BAD_KNOBS: list[tuple[str, Any]] = [
    ("default_args.execution_timeout", 0),
    ("dag.dagrun_timeout", "long"),
    ("default_args.pool", ""),
    ("default_args.pool_slots", 0),
    ("default_args.priority_weight", -1),
    ("default_args.weight_rule", "heaviest"),
    ("default_args.queu", "q"),
    ("pod.on_finish_action", "delete_failed_pod"),
    ("pod.security_context", {"pod": {"runAsUser": 0}}),
    ("pod.labels", {"team": "Data team"}),
    ("pod.annotations", {"kedro-gcs-bridge/group": "x"}),
    ("pod.node_selector", {"cloud.google.com/gke-accelerator": "nvidia-l4"}),
    ("pod.env", {"MLFLOW_TRACKING_TOKEN": "abc"}),
    ("pod.env_from_secrets", ["Bad_Name"]),
    ("pod.secret_env", {"TOKEN": "no-key"}),
    ("pod.image_pull_policy", "sometimes"),
    ("pod.tolerations", [{"operator": "Maybe"}]),
    ("pod.affinity", {"nodeAfinity": {}}),
    ("pod.template_file", "pod.yaml"),
    ("pod.override", {"kind": "Pod"}),
    ("dag.params", {"lr": "0.1,0.2"}),
    ("dag.on_failure_callback", "notify"),
    ("dag.on_success_callback", "not a path"),
    ("dag.deadline", {"minutes": 60}),
    ("machine_classes", {"gpu": {"image_pull_policy": "sometimes"}}),
    ("handoff.parallel_threshold", "lots"),
    ("handoff.parallel_concurrency", 0),
    ("pod_labels", {"team": "Data team"}),  # an old spelling is named as written
]


class TestBadValuesWriteNoDag:
    @pytest.mark.parametrize(("key", "value"), BAD_KNOBS, ids=[key for key, _ in BAD_KNOBS])
    def test_error_names_the_key_and_the_file_has_no_dag(
        self, key: str, value: Any, tmp_path: Path
    ) -> None:
        dag = build_dag_file(
            {**TestRegenerateLine.VARIABLES, "pipeline": three_nodes(), **nested(key, value)}
        )
        assert dag.plan is None and f"'{key}" in (dag.error or "")
        text = render(tmp_path, **nested(key, value)).read_text("utf-8")
        assert text.count("raise ImportError") == 1 and "GKEStartPodOperator" not in text


def _parse_calls(folder: Path) -> int:
    """The Python calls of a warm DagBag parse of `folder` (deterministic, unlike its time)."""
    from airflow.dag_processing.dagbag import DagBag

    DagBag(dag_folder=str(folder))  # warm: what the first parse imports is imported
    count = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        count += event in ("call", "c_call")

    sys.setprofile(profile)
    try:
        DagBag(dag_folder=str(folder))
    finally:
        sys.setprofile(None)
    return count


def test_every_knob_adds_about_no_parse_work_per_task(workdir: Path) -> None:
    """The knobs' cost at parse time, counted, not timed: the Python calls each task adds to a
    warm DagBag parse (3 and 30 tasks), with every knob set and with none
    (benchmarks/dag_scale.py times the parse). What the knobs cost once per file, version
    checks and Kubernetes models (tolerations and affinity made once per machine class), does
    not grow with the DAG."""

    def per_task(name: str, params: dict[str, Any] | None, **config: Any) -> float:
        counts = []
        for size in (3, 30):
            folder = workdir / f"{name}-{size}"
            folder.mkdir()
            render(folder, params, chain(size), grouping=False, **config)
            counts.append(_parse_calls(folder))
        return (counts[1] - counts[0]) / 27

    knobs = per_task("knobs", KNOBS_PARAMS, **knobs_config(workdir))
    # DAG params are copied into every task by Airflow itself (~600 calls each here), whoever
    # writes the DAG: the defaults get the same params.
    params = {"params": ALL_KNOBS["dag"]["params"]}
    default = per_task("defaults", None, handoff={"cleanup": "on_success"}, dag=params)
    print(f"parse calls per task: all knobs {knobs:.0f}, defaults {default:.0f}")
    assert knobs <= 1.5 * default
