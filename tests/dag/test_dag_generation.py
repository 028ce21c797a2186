"""The real `kedro airflow create -j templates/gcs_bridge.j2` on copies of the example project,
the files it writes loaded by a real Airflow DagBag, and the pods their operators would start.

Every variant is generated once per session (see `CREATE_JOBS` in conftest.py).
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    BRIDGE_ROOT,
    EXAMPLE_IMAGE,
    PROD_IMAGE,
    RUFF,
    RUN_ID,
    SECRETS,
    SENTINEL_DAG,
    URI_PASSWORD,
    KedroRun,
)

from kedro_gcs_bridge.planning.naming import run_segment

RFC1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
RUNNER_ARGS = ["run", "--runner", "kedro_gcs_bridge.GCSRunner"]

REQUESTS = {
    "default": {"cpu": "500m", "memory": "2Gi", "ephemeral-storage": "1Gi"},
    "medium": {"cpu": "1", "memory": "4Gi", "ephemeral-storage": "2Gi"},
    # Defined in the `custom` project's airflow.yml: a new class starts from `default`'s storage.
    "preemptible": {"cpu": "1", "memory": "4Gi", "ephemeral-storage": "1Gi"},
}

GROUPED = {
    "companies": ("preprocess_companies_node",),
    # The reporting pipeline's chart is drawn where its input is made.
    "shuttles": ("preprocess_shuttles_node", "plot_passenger_capacity_node"),
    "split": ("create_model_input_table_node", "split_data_node"),
    "train_model_node": ("train_model_node",),
    "evaluate_model_node": ("evaluate_model_node",),
}
GROUPED_EDGES = {
    ("companies", "split"),
    ("shuttles", "split"),
    ("split", "train_model_node"),
    ("split", "evaluate_model_node"),
    ("train_model_node", "evaluate_model_node"),
}
NODES = [node for nodes in GROUPED.values() for node in nodes]
UNGROUPED = {node: (node,) for node in NODES}
UNGROUPED_EDGES = {
    ("preprocess_companies_node", "create_model_input_table_node"),
    ("preprocess_shuttles_node", "create_model_input_table_node"),
    ("preprocess_shuttles_node", "plot_passenger_capacity_node"),
    ("create_model_input_table_node", "split_data_node"),
    ("split_data_node", "train_model_node"),
    ("split_data_node", "evaluate_model_node"),
    ("train_model_node", "evaluate_model_node"),
}
# Only preprocess_companies_node has no machine tag.
GROUPED_MACHINES = dict.fromkeys(GROUPED, "medium") | {"companies": "default"}
UNGROUPED_MACHINES = dict.fromkeys(NODES, "medium") | {"preprocess_companies_node": "default"}


@dataclass(frozen=True)
class DagCase:
    """One generated DAG and what it must contain."""

    name: str
    job: str
    filename: str
    dag_id: str
    pipeline: str
    env: str
    groups: dict[str, tuple[str, ...]]
    edges: set[tuple[str, str]]
    machines: dict[str, str]
    image: str = EXAMPLE_IMAGE
    deferrable: bool = False
    retries: dict[str, int] = field(default_factory=dict)

    def task_retries(self, task_id: str) -> int:
        return self.retries.get(task_id, 1)


CASES = [
    DagCase(
        "default",
        "default",
        "spaceflights_dag.py",
        "spaceflights__default__local",
        "__default__",
        "local",
        GROUPED,
        GROUPED_EDGES,
        GROUPED_MACHINES,
    ),
    DagCase(
        "ungrouped",
        "ungrouped",
        "spaceflights_ungrouped_dag.py",
        "spaceflights__default__local_ungrouped",
        "__default__",
        "local",
        UNGROUPED,
        UNGROUPED_EDGES,
        UNGROUPED_MACHINES,
    ),
    DagCase(
        "data_processing",
        "two_pipelines",
        "spaceflights_data_processing_dag.py",
        "spaceflights__data_processing__local",
        "data_processing",
        "local",
        {
            "companies": ("preprocess_companies_node",),
            "shuttles": ("preprocess_shuttles_node",),
            "split": ("create_model_input_table_node",),
        },
        {("companies", "split"), ("shuttles", "split")},
        {"companies": "default", "shuttles": "medium", "split": "medium"},
    ),
    DagCase(
        "data_science",
        "two_pipelines",
        "spaceflights_data_science_dag.py",
        "spaceflights__data_science__local",
        "data_science",
        "local",
        {
            "split": ("split_data_node",),
            "train_model_node": ("train_model_node",),
            "evaluate_model_node": ("evaluate_model_node",),
        },
        {
            ("split", "train_model_node"),
            ("split", "evaluate_model_node"),
            ("train_model_node", "evaluate_model_node"),
        },
        dict.fromkeys(("split", "train_model_node", "evaluate_model_node"), "medium"),
    ),
    DagCase(
        "prod",
        "prod",
        "spaceflights_prod_dag.py",
        "spaceflights__default__prod",
        "__default__",
        "prod",
        GROUPED,
        GROUPED_EDGES,
        GROUPED_MACHINES,
        image=PROD_IMAGE,
    ),
    DagCase(
        "custom",
        "custom",
        "spaceflights_dag.py",
        "spaceflights__default__local",
        "__default__",
        "local",
        GROUPED,
        GROUPED_EDGES,
        GROUPED_MACHINES | {"train_model_node": "preemptible"},
        deferrable=True,
        # retries: 1 + spot_retries: 2 from the project's airflow.yml.
        retries={"train_model_node": 3},
    ),
]
CASE_PARAMS = [pytest.param(case, id=case.name) for case in CASES]
TASK_PARAMS = [
    pytest.param(case, task_id, id=f"{case.name}-{task_id}")
    for case in CASES
    for task_id in case.groups
]
FILE_PARAMS = [pytest.param(case.job, case.filename, id=case.name) for case in CASES]


@pytest.fixture
def dag_of(generated_dag: Callable[[str, str], Any]) -> Callable[[DagCase], Any]:
    return lambda case: generated_dag(case.job, case.dag_id)


def env_of(pod: Any) -> dict[str, str]:
    (container,) = pod.spec.containers
    return {var.name: var.value for var in container.env}


class TestGeneratedDags:
    @pytest.mark.parametrize("case", CASE_PARAMS)
    def test_create_writes_the_expected_file(
        self, case: DagCase, create_runs: dict[str, KedroRun]
    ) -> None:
        run = create_runs[case.job]
        assert run.returncode == 0, run.describe()
        assert (run.dag_dir() / case.filename).is_file()

    @pytest.mark.parametrize("case", CASE_PARAMS)
    def test_one_task_per_group(self, case: DagCase, dag_of: Callable[[DagCase], Any]) -> None:
        dag = dag_of(case)
        assert sorted(dag.task_ids) == sorted(case.groups)

    @pytest.mark.parametrize("case", CASE_PARAMS)
    def test_edges_follow_the_data(self, case: DagCase, dag_of: Callable[[DagCase], Any]) -> None:
        dag = dag_of(case)
        edges = {(up, task.task_id) for task in dag.tasks for up in task.upstream_task_ids}
        assert edges == case.edges

    @pytest.mark.parametrize("case", CASE_PARAMS)
    def test_dag_settings_come_from_airflow_yml(
        self, case: DagCase, dag_of: Callable[[DagCase], Any]
    ) -> None:
        dag = dag_of(case)
        assert dag.schedule is None
        assert dag.start_date == datetime(2023, 1, 1, tzinfo=UTC)
        assert dag.max_active_runs == 3
        assert dag.catchup is False
        assert dag.default_args["retry_delay"] == timedelta(minutes=5)
        assert {"kedro", "kedro-gcs-bridge", "spaceflights"} <= set(dag.tags)

    def test_dag_ids_are_distinct_and_name_pipeline_and_env(
        self, create_runs: dict[str, KedroRun], load_dagbag: Callable[[Path], Any], tmp_path: Path
    ) -> None:
        # One DAG folder holding every pipeline/env combination generated, as in production.
        combos = {(case.pipeline, case.env): case for case in CASES}
        for case in combos.values():
            source = create_runs[case.job].dag_dir() / case.filename
            shutil.copyfile(source, tmp_path / case.filename)
        bag = load_dagbag(tmp_path)
        assert not bag.import_errors
        assert sorted(bag.dags) == sorted(case.dag_id for case in combos.values())
        for (pipeline, env), case in combos.items():
            assert pipeline.strip("_") in case.dag_id
            assert case.dag_id.endswith(env)


class TestPods:
    @pytest.mark.parametrize(("case", "task_id"), TASK_PARAMS)
    def test_one_container_runs_kedro_without_xcom_sidecar(
        self, case: DagCase, task_id: str, dag_of: Callable[[DagCase], Any], render_pods: Any
    ) -> None:
        pod = render_pods(dag_of(case))[task_id]
        assert [c.name for c in pod.spec.containers] == ["base"]
        assert pod.spec.containers[0].command == ["kedro"]

    @pytest.mark.parametrize(("case", "task_id"), TASK_PARAMS)
    def test_runs_exactly_the_groups_nodes(
        self, case: DagCase, task_id: str, dag_of: Callable[[DagCase], Any], render_pods: Any
    ) -> None:
        args = render_pods(dag_of(case))[task_id].spec.containers[0].args
        assert args[:9] == [
            *RUNNER_ARGS,
            "--pipelines",
            case.pipeline,
            "--env",
            case.env,
            "--nodes",
            ",".join(case.groups[task_id]),
        ]

    @pytest.mark.parametrize(("case", "task_id"), TASK_PARAMS)
    def test_run_prefix_names_dag_and_run(
        self, case: DagCase, task_id: str, dag_of: Callable[[DagCase], Any], render_pods: Any
    ) -> None:
        env = env_of(render_pods(dag_of(case))[task_id])
        # The run id's ':' and '+' are percent-encoded.
        segment = "manual__2026-11-24T07%3A11%3A31.230999%2B00%3A00"
        assert segment == run_segment(RUN_ID)
        assert env["KEDRO_GCS_BRIDGE_RUN_PREFIX"] == f"{BRIDGE_ROOT}/{case.dag_id}/{segment}"

    @pytest.mark.parametrize(("case", "task_id"), TASK_PARAMS)
    def test_pod_knows_its_dag_run_task_and_try(
        self, case: DagCase, task_id: str, dag_of: Callable[[DagCase], Any], render_pods: Any
    ) -> None:
        pod = render_pods(dag_of(case))[task_id]
        env = env_of(pod)
        assert env["KEDRO_GCS_BRIDGE_DAG_ID"] == case.dag_id
        assert env["KEDRO_GCS_BRIDGE_RUN_ID"] == RUN_ID
        assert env["KEDRO_GCS_BRIDGE_TASK"] == task_id
        assert env["KEDRO_GCS_BRIDGE_PIPELINE"] == case.pipeline
        assert env["KEDRO_GCS_BRIDGE_TRY_NUMBER"] == "1"
        assert env["KEDRO_GCS_BRIDGE_LOCAL_HANDOFF"] == "true"
        # Raw run ids hold ':' and '+', which labels reject; the annotation keeps it.
        assert pod.metadata.annotations["kedro-gcs-bridge/run-id"] == RUN_ID

    @pytest.mark.parametrize(("case", "task_id"), TASK_PARAMS)
    def test_requests_follow_the_machine_class(
        self, case: DagCase, task_id: str, dag_of: Callable[[DagCase], Any], render_pods: Any
    ) -> None:
        resources = render_pods(dag_of(case))[task_id].spec.containers[0].resources
        assert resources.requests == REQUESTS[case.machines[task_id]]
        assert not resources.limits

    @pytest.mark.parametrize(("case", "task_id"), TASK_PARAMS)
    def test_spot_classes_select_spot_nodes_and_retry_more(
        self, case: DagCase, task_id: str, dag_of: Callable[[DagCase], Any], render_pods: Any
    ) -> None:
        dag = dag_of(case)
        pod = render_pods(dag)[task_id]
        spot = case.machines[task_id] == "preemptible"
        assert (pod.spec.node_selector or {}) == (
            {"cloud.google.com/gke-spot": "true"} if spot else {}
        )
        assert dag.get_task(task_id).retries == case.task_retries(task_id)

    @pytest.mark.parametrize(("case", "task_id"), TASK_PARAMS)
    def test_pod_runs_as_configured(
        self, case: DagCase, task_id: str, dag_of: Callable[[DagCase], Any], render_pods: Any
    ) -> None:
        pod = render_pods(dag_of(case))[task_id]
        assert pod.metadata.namespace == "kedro"
        assert pod.spec.service_account_name == "kedro-runner"
        assert pod.spec.containers[0].image == case.image

    @pytest.mark.parametrize(("case", "task_id"), TASK_PARAMS)
    def test_operator_hands_no_data_through_airflow(
        self, case: DagCase, task_id: str, dag_of: Callable[[DagCase], Any]
    ) -> None:
        task = dag_of(case).get_task(task_id)
        assert task.do_xcom_push is False
        assert task.get_logs is True
        assert task.deferrable is case.deferrable
        assert (task.project_id, task.location, task.cluster_name) == (
            "example-project",
            "europe-west1",
            "example-autopilot",
        )

    @pytest.mark.parametrize(("case", "task_id"), TASK_PARAMS)
    def test_pod_name_and_labels_are_valid_kubernetes_names(
        self, case: DagCase, task_id: str, dag_of: Callable[[DagCase], Any], render_pods: Any
    ) -> None:
        metadata = render_pods(dag_of(case))[task_id].metadata
        assert len(metadata.name) <= 63
        assert RFC1123_LABEL.match(metadata.name), metadata.name
        for key, value in metadata.labels.items():
            name = key.rsplit("/", 1)[-1]
            assert len(name) <= 63 and LABEL_NAME.match(name), key
            assert len(value) <= 63 and LABEL_VALUE.match(value), (key, value)


def _file(create_runs: dict[str, KedroRun], job: str, filename: str) -> Path:
    run = create_runs[job]
    assert run.returncode == 0, run.describe()
    return run.dag_dir() / filename


class TestGeneratedFiles:
    @pytest.mark.parametrize(("job", "filename"), FILE_PARAMS)
    def test_imports_neither_kedro_nor_the_bridge(
        self, job: str, filename: str, create_runs: dict[str, KedroRun]
    ) -> None:
        tree = ast.parse(_file(create_runs, job, filename).read_text(encoding="utf-8"))
        modules = {
            alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names
        }
        modules |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        roots = {module.split(".")[0] for module in modules}
        # importlib and packaging (Airflow's own dependency): the provider version check;
        # json: each pod's upstream variable, written from the file's TASKS table.
        assert roots == {
            "__future__",
            "datetime",
            "importlib",
            "json",
            "airflow",
            "kubernetes",
            "packaging",
        }

    @pytest.mark.parametrize(("job", "filename"), FILE_PARAMS)
    def test_passes_ruff_syntax_and_undefined_name_checks(
        self, job: str, filename: str, create_runs: dict[str, KedroRun]
    ) -> None:
        path = _file(create_runs, job, filename)
        done = subprocess.run(
            [str(RUFF), "check", "--isolated", "--no-cache", "--select", "E9,F", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def test_parsing_opens_no_network_connection(
        self, create_runs: dict[str, KedroRun], network_attempts: list[tuple[Any, ...]]
    ) -> None:
        import socket

        from airflow.dag_processing.dagbag import DagBag

        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", 9))
        network_attempts.clear()
        folder = _file(create_runs, "default", "spaceflights_dag.py").parent
        bag = DagBag(dag_folder=str(folder))
        assert not bag.import_errors
        assert list(bag.dags) == ["spaceflights__default__local"]
        assert network_attempts == []


class TestHooksDisabled:
    def test_dag_file_refuses_to_load_and_says_why(
        self, create_runs: dict[str, KedroRun], load_dagbag: Callable[[Path], Any]
    ) -> None:
        run = create_runs["hooks_disabled"]
        assert run.returncode == 0, run.describe()
        bag = load_dagbag(run.dag_dir())
        assert not bag.dags
        (error,) = bag.import_errors.values()
        assert "kedro-gcs-bridge" in error
        assert "DISABLE_HOOKS_FOR_PLUGINS" in error


BROKEN = {
    "two_group_tags": ["preprocess_companies_node", "airflow.companies", "airflow.shuttles"],
    "colon_prefix": ["'grouping_prefix' 'airflow:'", "Kedro 1.x", "set 'airflow.' instead"],
    "cycle": [
        "invalid grouping that creates a cycle",
        "{'create_model_input_table_node', 'split_data_node'}",
    ],
}
BROKEN_PARAMS = [pytest.param(name, fragments, id=name) for name, fragments in BROKEN.items()]


class TestBrokenProjects:
    @pytest.mark.parametrize(("job", "fragments"), BROKEN_PARAMS)
    def test_create_fails_before_writing_any_file(
        self, job: str, fragments: list[str], create_runs: dict[str, KedroRun]
    ) -> None:
        run = create_runs[job]
        assert run.returncode != 0, run.describe()
        dag_dir = run.dag_dir()
        after = {path.name: path.read_bytes() for path in dag_dir.iterdir()}
        # The DAG file of an earlier, good run is still there, byte for byte.
        assert after == run.files_before == {"spaceflights_dag.py": SENTINEL_DAG}

    @pytest.mark.parametrize(("job", "fragments"), BROKEN_PARAMS)
    def test_create_output_names_the_problem(
        self, job: str, fragments: list[str], create_runs: dict[str, KedroRun]
    ) -> None:
        run = create_runs[job]
        for fragment in fragments:
            assert fragment in run.output, run.describe()

    @pytest.mark.parametrize(("job", "fragments"), BROKEN_PARAMS)
    def test_validate_reports_the_problem_and_exits_1(
        self, job: str, fragments: list[str], create_runs: dict[str, KedroRun]
    ) -> None:
        run = create_runs[f"validate_{job}"]
        assert run.returncode == 1, run.describe()
        assert "__default__: ERROR" in run.output
        for fragment in fragments:
            assert fragment in run.output, run.describe()

    def test_validate_names_what_the_example_keeps_on_local_disk(
        self, create_runs: dict[str, KedroRun]
    ) -> None:
        """The example's catalog is the starter's: all on local disk, which pods lose."""
        run = create_runs["validate_example"]
        assert run.returncode == 1, run.describe()
        for error in (
            "__default__, data_science: error: output 'metrics' is saved on local disk "
            "(data/08_reporting/metrics.json) by task evaluate_model_node and lost when its "
            "pod ends.",
            "__default__, reporting: error: output 'shuttle_passenger_capacity_plot' is saved "
            "on local disk",
            "remedy for the 5 errors above: move it to GCS: `kedro gcs-bridge catalog --root",
            # The starter's versioned model crosses pods only through the run prefix.
            "__default__, data_science: warning: versioned dataset 'regressor' is saved on "
            "local disk "
            "(data/06_models/regressor.pickle)",
            "data_science: error: input 'model_input_table' is saved on local disk "
            "(data/03_primary/model_input_table.parquet) by the DAG of pipeline(s) "
            "data_processing",
            "reporting: error: input 'preprocessed_shuttles' is saved on local disk",
        ):
            assert error in run.output, run.describe()
        # No docker ignore file in the example: the image holds data/01_raw.
        assert "raw input" not in run.output

    def test_validate_passes_the_example_with_local_disk_warn(
        self, create_runs: dict[str, KedroRun]
    ) -> None:
        run = create_runs["validate_example_warn"]
        assert run.returncode == 0, run.describe()
        for line in (
            "__default__: ok, 5 task(s)",
            "data_processing: ok, 3 task(s)",
            "data_science: ok, 3 task(s)",
            "reporting: ok, 1 task(s)",
            "__default__, data_science: warning: output 'metrics' is saved on local disk",
        ):
            assert line in run.output
        assert "ERROR" not in run.output


def _written(run: KedroRun) -> str:
    """Every file a create job wrote into its DAG folder, concatenated."""
    folder = run.dag_dir()
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    return "\n".join(path.read_text(encoding="utf-8") for path in files if path.is_file())


class TestSecrets:
    """The DAG file holds no secret (README, Deploy): pods get credentials from Workload
    Identity, so nothing secret on the machine that writes the DAG may reach the file."""

    def test_the_writers_environment_never_reaches_the_dag_file(
        self, create_runs: dict[str, KedroRun]
    ) -> None:
        text = _file(create_runs, "secrets_in_env", "spaceflights_dag.py").read_text("utf-8")
        # Tracking is on: the DAG writes the pods' MLflow environment, where a leak would go.
        assert '"MLFLOW_TRACKING_URI": "https://mlflow.example.com"' in text
        leaked = [name for name, value in SECRETS.items() if value in text]
        assert leaked == []

    def test_a_password_in_the_tracking_uri_is_neither_written_nor_printed(
        self, create_runs: dict[str, KedroRun]
    ) -> None:
        run = create_runs["secret_in_uri"]
        written = _written(run)
        assert URI_PASSWORD not in written
        assert URI_PASSWORD not in run.output
        if run.returncode == 0:
            assert "example.com" in written  # written, without the password
        else:
            assert "mlflow_tracking_uri" in run.output  # refused, for this reason


class TestProductionKnobs:
    """Issue 15 through the real `kedro airflow create`: every knob at once in airflow.yml,
    two as `--params`; the file parses, regenerates with the same command, and its pods carry
    the knobs."""

    DAG_ID = "spaceflights__default__local"

    def test_header_repeats_the_params_and_the_dag_parses(
        self, create_runs: dict[str, KedroRun], generated_dag: Any
    ) -> None:
        text = _file(create_runs, "production", "spaceflights_dag.py").read_text("utf-8")
        assert (
            "    kedro airflow create -j templates/gcs_bridge.j2 "
            "--params pool=kedro,dagrun_timeout=240,local_disk=warn\n" in text
        )
        dag = generated_dag("production", self.DAG_ID)
        assert dag.dagrun_timeout == timedelta(minutes=240)
        assert dag.deadline[0].callback.path == "team_alerts.late_run"
        assert "Nightly spaceflights." in dag.doc_md

    def test_tasks_and_pods_carry_the_knobs(self, generated_dag: Any, render_pods: Any) -> None:
        dag = generated_dag("production", self.DAG_ID)
        train = dag.get_task("train_model_node")  # machine.medium: 90 minutes
        assert train.execution_timeout == timedelta(minutes=90)
        assert dag.get_task("companies").execution_timeout == timedelta(minutes=30)
        assert (train.pool, train.pool_slots, train.priority_weight) == ("kedro", 2, 5)
        assert train.on_finish_action.value == "keep_pod"
        pod = render_pods(dag)["train_model_node"]
        main = pod.spec.containers[0]
        assert main.args[-2:] == ["--params", "model_options.test_size=0.2"]
        assert main.image_pull_policy == "IfNotPresent"
        assert main.security_context["readOnlyRootFilesystem"] is True
        assert pod.spec.security_context["runAsUser"] == 1000
        assert pod.metadata.labels["team"] == "data"
        assert pod.spec.node_selector["cloud.google.com/gke-nodepool"] == "batch"
        assert pod.spec.priority_class_name == "batch-low"
        assert [t.key for t in pod.spec.tolerations] == ["dedicated"]
        env = {var.name: var for var in main.env}
        assert env["LOG_LEVEL"].value == "INFO"
        assert env["MLFLOW_TRACKING_TOKEN"].value_from.secret_key_ref.name == "mlflow-auth"
