"""MLflow: one parent run per DAG run, a child run per group, status set once at the end.

Against a real `mlflow server` on 127.0.0.1 (or a real SQLite store), with the example's DAG
replayed locally. Tracking is best effort: a dead or hung server, or one that fails mid-run,
never changes a task's data or outcome.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from _dead_tracking import dead_server
from _fault_proxy import fault_proxy
from _gcs_emulator import BUCKET
from _precondition_proxy import PreconditionProxy
from _processes import run
from _tracked_replay import TrackedReplay
from mlflow import MlflowClient
from mlflow.entities import ViewType

from kedro_gcs_bridge.config import parse_config
from kedro_gcs_bridge.dag.replay import TaskResult, load_dag_tasks
from kedro_gcs_bridge.dag.replay import replay as replay_tasks
from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.planning.naming import run_segment
from kedro_gcs_bridge.pod.group_run import UNAVAILABLE
from kedro_gcs_bridge.pod.store import HandoffStore
from kedro_gcs_bridge.tracking.library import HTTP_LIMITS, bound_http_requests
from kedro_gcs_bridge.tracking.tracker import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    RunIdentity,
    Tracker,
    flatten_params,
    metric_values,
    readable_date,
)

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TEMPLATE = REPO / "templates" / "gcs_bridge.j2"
#: A dead server's pods: MLflow's own retry settings as users copy them, a short budget.
#: MLflow's own retry settings at their defaults, as users copy them into Composer.
DEAD_SERVER_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "7", "MLFLOW_HTTP_REQUEST_TIMEOUT": "120"}
#: The tracking budget the DAG gives its pods (`mlflow.budget_seconds`).
SMALL_BUDGET = "mlflow.budget_seconds=3"
#: The same budget for a pod run without a DAG (the variable the DAG would set).
SMALL_BUDGET_ENV = {"KEDRO_GCS_BRIDGE_MLFLOW_BUDGET": "3"}
GROUP_TASKS = {"companies", "shuttles", "split", "train_model_node", "evaluate_model_node"}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow_home")
    return {
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "COLUMNS": "400",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }


def tracked_project(
    tmp_path: Path, uri: str, env: dict[str, str], experiment: str, *params: str
) -> tuple[Path, Path]:
    project = tmp_path / "spaceflights"
    shutil.copytree(REPO / "examples" / "spaceflights", project)
    result = run(
        [
            str(BIN / "kedro"),
            "airflow",
            "create",
            "-j",
            str(REPO / "templates" / "gcs_bridge.j2"),
            "-t",
            str(project / "dags"),
            "--params",
            # The example keeps its data on local disk, which the GKE DAG refuses by default.
            ",".join(
                (
                    f"mlflow.tracking_uri={uri},mlflow.experiment={experiment}",
                    "handoff.local_disk=warn",
                    *params,
                )
            ),
        ],
        project,
        env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return project, project / "dags" / "spaceflights_dag.py"


def replay(
    project: Path, dag: Path, env: dict[str, str], run_id: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return run(
        [
            str(BIN / "kedro"),
            "gcs-bridge",
            "replay",
            str(dag),
            "--run-id",
            run_id,
            "--prefix",
            (project / "runs").as_uri(),
            "--shared-dir",  # outputs land in the project, where the tests read them
            *extra,
        ],
        project,
        env,
    )


def runs_of(uri: str, experiment: str) -> tuple[list[Any], list[Any]]:
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    every = client.search_runs([found.experiment_id], max_results=1000)
    parents = [r for r in every if r.data.tags.get("kedro_gcs_bridge.role") == "parent"]
    children = [r for r in every if r.data.tags.get("kedro_gcs_bridge.role") == "child"]
    return parents, children


@pytest.mark.slow
class TestTrackedReplay:
    def test_one_parent_run_with_a_child_per_task(
        self, tracked_replay: TrackedReplay, mlflow_server: str
    ) -> None:
        # The session's tracked replay (tests/_tracked_replay.py), shared with suggest's tests.
        project, dag, env = tracked_replay.project, tracked_replay.dag, tracked_replay.env
        experiment, run_id = tracked_replay.experiment, tracked_replay.run_id

        parents, children = runs_of(mlflow_server, experiment)
        assert len(parents) == 1
        parent = parents[0]
        assert parent.info.status == "FINISHED"
        assert parent.data.tags["kedro_gcs_bridge.dag_id"] == "spaceflights__default__local"
        assert parent.data.tags["kedro_gcs_bridge.airflow_run_id"] == run_id
        assert parent.data.tags["kedro_gcs_bridge.pipeline"] == "__default__"
        assert parent.data.tags["kedro_gcs_bridge.env"] == "local"
        assert parent.data.tags["kedro_gcs_bridge.project"] == "spaceflights"
        assert parent.data.params["model_options.test_size"] == "0.2"
        assert parent.data.params["model_options.random_state"] == "3"

        by_task = {child.info.run_name: child for child in children}
        assert set(by_task) == GROUP_TASKS
        for child in children:
            assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
            assert child.info.status == "FINISHED"
            assert "handoff_bytes_out" in child.data.metrics
        split = by_task["split"].data
        assert "node_seconds/create_model_input_table_node" in split.metrics
        assert "node_seconds/split_data_node" in split.metrics
        assert split.metrics["handoff_bytes_out"] > 0
        assert by_task["train_model_node"].data.metrics["handoff_bytes_in"] > 0
        # The node's own mlflow.log_metrics lands in its group's child run.
        evaluate = by_task["evaluate_model_node"].data.metrics
        written = json.loads((project / "data" / "08_reporting" / "metrics.json").read_text())
        assert evaluate["r2_score"] == pytest.approx(written["r2_score"])
        # The run id travelled through the run prefix, not XCom.
        dag_id, segment = "spaceflights__default__local", run_segment(run_id)
        prefix = f"{(project / 'runs').as_uri()}/{dag_id}/{segment}"
        recorded = json.loads(
            HandoffStore(prefix, task="t").fs.cat_file(
                HandoffStore(prefix, task="t").root + "/_mlflow/run.json"
            )
        )
        assert recorded["run_id"] == parent.info.run_id

        # Clearing a task and running it again adds no parent and no child.
        rerun = replay(project, dag, env, run_id, "--task", "train_model_node")
        assert rerun.returncode == 0, rerun.stdout[-3000:]
        parents_after, children_after = runs_of(mlflow_server, experiment)
        assert [p.info.run_id for p in parents_after] == [parent.info.run_id]
        assert sorted(c.info.run_id for c in children_after) == sorted(
            c.info.run_id for c in children
        )

    def test_a_failed_group_ends_the_parent_failed(
        self, tmp_path: Path, mlflow_server: str, env: dict[str, str]
    ) -> None:
        experiment = f"exp-{uuid.uuid4().hex[:6]}"
        project, dag = tracked_project(tmp_path, mlflow_server, env, experiment)
        (project / "data" / "01_raw" / "shuttles.csv").unlink()
        result = replay(project, dag, env, "manual__2026-11-24T09:00:00+00:00", "--parallel", "1")
        assert result.returncode == 1
        # Finalize reports the verdict and succeeds (the DAG's run-failed task fails the run);
        # the verdict is the parent's status below.
        assert "gcs_bridge_finalize: success" in result.stdout
        parents, children = runs_of(mlflow_server, experiment)
        assert [p.info.status for p in parents] == ["FAILED"]
        assert {c.info.run_name: c.info.status for c in children} == {
            "companies": "FINISHED",
            "shuttles": "FAILED",
        }


@pytest.mark.parametrize("round_", range(3))
def test_groups_starting_together_agree_on_one_parent(
    mlflow_server: str, tmp_path: Path, round_: int
) -> None:
    prefix = (tmp_path / "run").as_uri()
    identity = RunIdentity("dag", f"manual__{uuid.uuid4().hex}", "__default__", "local", "p")
    experiment = f"race-{round_}-{uuid.uuid4().hex[:6]}"
    chosen: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        tracker = Tracker(mlflow_server, HandoffStore(prefix, task="t"), experiment)
        tracker._experiment_id()
        barrier.wait()
        chosen.append(tracker.parent_run(identity)[0])

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    parents, _ = runs_of(mlflow_server, experiment)
    assert len(parents) == 1
    assert chosen == [parents[0].info.run_id] * 8


def test_racing_first_groups_on_gcs_keep_one_parent(
    mlflow_server: str, gcs_preconditions: PreconditionProxy
) -> None:
    """On gs:// with GCS's preconditions (the proxy), the exclusive create of `_mlflow/run.json`
    decides: 8 groups each search, find nothing and create a parent before any records one
    (forced by barriers); exactly one create wins, the other 7 parents are deleted."""
    prefix = f"gs://{BUCKET}/tracking/{uuid.uuid4().hex[:10]}"
    identity = RunIdentity("dag", f"manual__{uuid.uuid4().hex}", "__default__", "local", "p")
    experiment = f"gcs-race-{uuid.uuid4().hex[:6]}"
    searched, recording = (threading.Barrier(8, timeout=120) for _ in range(2))
    created: list[bool] = []

    class RacingStore(HandoffStore):
        def create_run_object(self, name: str, payload: Mapping[str, Any]) -> bool:
            recording.wait()  # every group made its own parent run before any records one
            created.append(super().create_run_object(name, payload))
            return created[-1]

    class RacingTracker(Tracker):
        def _tagged_parents(self, experiment_id: str, identity: RunIdentity) -> list[Any]:
            found = super()._tagged_parents(experiment_id, identity)
            searched.wait()  # every group searched before any created a parent
            return found

    chosen: list[str] = []

    def start() -> None:
        tracker = RacingTracker(mlflow_server, RacingStore(prefix, task="t"), experiment)
        tracker._experiment_id()
        chosen.append(tracker.parent_run(identity)[0])

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert sorted(created) == [False] * 7 + [True]
    assert gcs_preconditions.counts["412"] == 7
    client = MlflowClient(mlflow_server)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    every = client.search_runs([experiment_id], run_view_type=ViewType.ALL, max_results=100)
    stages = sorted(run.info.lifecycle_stage for run in every)
    assert stages == ["active"] + ["deleted"] * 7
    (parent,) = (run for run in every if run.info.lifecycle_stage == "active")
    assert chosen == [parent.info.run_id] * 8
    recorded = HandoffStore(prefix, task="reader").read_run_object("_mlflow/run.json")
    assert recorded is not None and recorded["run_id"] == parent.info.run_id


def test_no_tracking_uri_means_no_mlflow(tmp_path: Path) -> None:
    """Without a tracking URI a group never imports MLflow (pods pay nothing for it)."""
    code = f"""
import sys
from kedro.io import DataCatalog
from kedro.pipeline import node, pipeline
from kedro_gcs_bridge import GCSRunner
p = pipeline([node(lambda: {{"a": 1}}, None, "x", name="make"),
              node(lambda x: x, "x", "y", name="use")])
runner = GCSRunner(prefix={(tmp_path / "run").as_uri()!r}, full_pipeline=p)
runner.run(p.only_nodes("make"), DataCatalog())
print("mlflow imported:", "mlflow" in sys.modules)
"""
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "mlflow imported: False" in result.stdout


def test_a_tracked_group_never_imports_mlflow(tmp_path: Path, mlflow_server: str) -> None:
    """Against an http(s) server the group talks MLflow's REST API: no `import mlflow` (1.5-2 s)
    in the pod, and its parent and child runs are there all the same."""
    code = f"""
import sys
from kedro.io import DataCatalog
from kedro.pipeline import node, pipeline
from kedro_gcs_bridge import GCSRunner
p = pipeline([node(lambda: {{"a": 1}}, None, "x", name="make"),
              node(lambda x: x, "x", "y", name="use")])
runner = GCSRunner(prefix={(tmp_path / "run").as_uri()!r}, full_pipeline=p)
runner.run(p.only_nodes("make"), DataCatalog())
print("mlflow imported:", "mlflow" in sys.modules)
"""
    experiment = f"no-import-{uuid.uuid4().hex[:6]}"
    environment = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "KEDRO_GCS_BRIDGE_MLFLOW_EXPERIMENT": experiment,
        "KEDRO_GCS_BRIDGE_MLFLOW_REQUIRED": "true",
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mlflow imported: False" in result.stdout
    parents, children = runs_of(mlflow_server, experiment)
    assert [p.info.status for p in parents] == ["RUNNING"]  # finalize sets it
    (child,) = children
    assert child.info.status == "FINISHED"
    assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
    assert "node_seconds/make" in child.data.metrics


def test_parameters_are_flattened_for_mlflow() -> None:
    params = {"model_options": {"test_size": 0.2, "features": ["a", "b"]}, "seed": 3, "empty": {}}
    assert flatten_params(params) == {
        "model_options.test_size": "0.2",
        "model_options.features": "['a', 'b']",
        "seed": "3",
        "empty": "{}",
    }


# --- Tracking never breaks a run -------------------------------------------------------------


def replay_in_process(
    project: Path, dag: Path, run_id: str, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> dict[str, TaskResult]:
    """The real replay (DAG loaded by Airflow, each task its own process), keeping task logs."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _, _, tasks = load_dag_tasks(dag, run_id, (project / "runs").as_uri())
    return {r.task_id: r for r in replay_tasks(tasks, project, parallel=2)}


@pytest.mark.slow
def test_a_dead_tracking_server_costs_seconds_not_the_run(
    tmp_path: Path,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    reference_metrics: dict[str, float],
) -> None:
    """Each group pod tries a hung server once, waits out its tracking budget (MLflow's own
    retry settings at their defaults, as users copy them) and runs on; finalize never calls
    it (no group recorded a parent run). The outputs are those of a plain `kedro run`."""
    run_id = "manual__2026-11-24T10:00:00+00:00"
    with dead_server("hung") as server:
        uri = server.url
        project, dag = tracked_project(tmp_path, uri, env, "unreachable", SMALL_BUDGET)
        results = replay_in_process(project, dag, run_id, monkeypatch, env | DEAD_SERVER_ENV)
    assert server.connections == len(GROUP_TASKS)
    assert {task: r.state for task, r in results.items()} == dict.fromkeys(
        [*GROUP_TASKS, "gcs_bridge_finalize"], "success"
    )
    written = project / "data" / "08_reporting" / "metrics.json"
    assert json.loads(written.read_text(encoding="utf-8")) == reference_metrics
    for task in GROUP_TASKS:
        warnings = [line for line in results[task].log.splitlines() if UNAVAILABLE in line]
        assert len(warnings) == 1, results[task].log[-3000:]
        assert uri in warnings[0] and "tracking budget of 3 s" in warnings[0]


NODE_RUN = """
import sys
from pathlib import Path
from kedro.io import DataCatalog
from kedro.pipeline import node, pipeline
from kedro_gcs_bridge import GCSRunner

def explode(x):
    Path({marker!r}).touch()  # the proxy answers 503 from now on: tracking "goes down"
    raise ValueError("the node's own error")

p = pipeline([node(lambda: 1, None, "x", name="make"), node(explode, "x", "y", name="use")])
GCSRunner(prefix={prefix!r}, full_pipeline=p).run(p, DataCatalog())
"""


def run_group(
    tmp_path: Path, uri: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    marker = tmp_path / "node-ran"
    code = NODE_RUN.format(marker=str(marker), prefix=(tmp_path / "run").as_uri())
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri, **env},
        check=False,
        timeout=300,
    )
    return result, marker


def last_error(result: subprocess.CompletedProcess[str]) -> str:
    """The exception the process ended with, on one line (after Kedro's rich traceback box)."""
    return " ".join(result.stderr.rsplit("╯", 1)[-1].split())


@pytest.mark.slow
def test_the_node_error_wins_when_tracking_fails_mid_run(
    tmp_path: Path, mlflow_server: str
) -> None:
    marker = tmp_path / "node-ran"

    def down_once_the_node_ran(method: str, path: str) -> str:
        return "503" if marker.exists() else "pass"

    with fault_proxy(mlflow_server, down_once_the_node_ran, max_requests=2000) as proxy:
        result, _ = run_group(
            tmp_path, proxy.url, KEDRO_GCS_BRIDGE_MLFLOW_EXPERIMENT=f"mid-{uuid.uuid4().hex[:6]}"
        )
    assert proxy.counts["pass"] > 0 and proxy.counts["503"] > 0  # tracking worked, then failed
    assert result.returncode != 0
    assert last_error(result) == "ValueError: the node's own error", result.stderr[-3000:]
    assert (result.stdout + result.stderr).count(UNAVAILABLE) == 1, result.stdout[-3000:]


@pytest.mark.slow
def test_required_tracking_fails_fast_before_any_node(tmp_path: Path) -> None:
    with dead_server("hung") as server:
        result, marker = run_group(
            tmp_path,
            server.url,
            KEDRO_GCS_BRIDGE_MLFLOW_REQUIRED="true",
            **DEAD_SERVER_ENV,
            **SMALL_BUDGET_ENV,
        )
    assert result.returncode != 0
    error = last_error(result)
    assert error.startswith("TrackingError: MLflow tracking server")
    assert server.url in error and "mlflow.required: false" in error
    assert "tracking budget of 3 s" in error
    assert not marker.exists()
    assert server.connections == 1  # one call waited out the budget; nothing after it


def test_bounded_http_settings_keep_what_the_user_set() -> None:
    environ = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
    bound_http_requests(environ)
    assert environ == {**HTTP_LIMITS, "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


# --- Local stores, names and metrics ---------------------------------------------------------

OPEN_STORE = """
import sys, time
from kedro_gcs_bridge.pod.store import HandoffStore
from kedro_gcs_bridge.tracking.tracker import Tracker
time.sleep(max(0.0, {start} - time.time()))
tracker = Tracker({uri!r}, HandoffStore({prefix!r}, task=sys.argv[1]), "race")
print(tracker._experiment_id())
"""


@pytest.mark.slow
def test_processes_opening_a_fresh_sqlite_store_together(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = OPEN_STORE.format(start=time.time() + 8, uri=uri, prefix=(tmp_path / "r").as_uri())
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, f"t{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    outputs = [process.communicate(timeout=180) for process in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], [err[-2000:] for _, err in outputs]
    assert len({out.strip() for out, _ in outputs}) == 1  # one experiment for all
    assert_store_sound(tmp_path / "mlflow.db", uri)


def assert_store_sound(path: Path, uri: str) -> None:
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    MlflowClient(uri).search_experiments()


@pytest.mark.slow
def test_fresh_sqlite_store_replayed_three_at_a_time(tmp_path: Path, env: dict[str, str]) -> None:
    """Replay makes the store before tasks start; names, the experiment kind, metrics."""
    store = tmp_path / "mlflow.db"
    uri = f"sqlite:///{store}"
    project = tmp_path / "spaceflights"
    shutil.copytree(REPO / "examples" / "spaceflights", project)
    params = "mlflow_tracking_uri=http://tracking.example:5000,mlflow_metrics=training_metrics"
    params += ",local_disk=warn"
    create = [str(BIN / "kedro"), "airflow", "create", "-j", str(TEMPLATE), "--params", params]
    created = run(create, project, env)
    assert created.returncode == 0, created.stderr[-3000:]
    dag = project / "airflow_dags" / "spaceflights_dag.py"
    run_id = "manual__2026-11-24T11:00:00+00:00"
    result = replay(project, dag, env, run_id, "--parallel", "3", "--tracking-uri", uri)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert_store_sound(store, uri)
    parents, children = runs_of(uri, "spaceflights")
    assert [(p.info.status, p.info.run_name) for p in parents] == [
        ("FINISHED", "spaceflights__default__local 2026-11-24 11:00:00")
    ]
    by_task = {child.info.run_name: child for child in children}
    assert sorted(by_task) == sorted(GROUP_TASKS) and len(children) == len(GROUP_TASKS)
    assert {child.info.status for child in children} == {"FINISHED"}
    experiment = MlflowClient(uri).get_experiment_by_name("spaceflights")
    assert experiment is not None
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND == "custom_model_development"
    # The training metrics (a dict of numbers the node does not log itself) reach its group.
    train = by_task["train_model_node"].data.metrics
    assert train["train_rows"] > 0 and 0 < train["train_r2_score"] <= 1


def test_a_local_store_is_a_create_time_error_for_gke() -> None:
    with pytest.raises(
        ConfigError, match=r"'mlflow_tracking_uri: sqlite:///mlflow\.db' is a local"
    ):
        parse_config({"mlflow_tracking_uri": "sqlite:///mlflow.db"})
    with pytest.raises(ConfigError, match="mlflow_tracking_uri"):
        parse_config({"mlflow_tracking_uri": "file:///tmp/mlruns"})
    local = parse_config({"mlflow_tracking_uri": "sqlite:///mlflow.db", "pod_backend": "local"})
    assert local.mlflow.tracking_uri == "sqlite:///mlflow.db"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("2026-11-24 08:00:00+00:00", "2026-11-24 08:00:00"),
        ("2026-11-24T09:30:00+01:00", "2026-11-24 08:30:00"),
        ("manual__2026-11-24T07:11:31.230999+00:00", "2026-11-24 07:11:31"),
        ("scheduled__2026-11-23T00:00:00+00:00", "2026-11-23 00:00:00"),
        ("my-own-run-id", "my-own-run-id"),
    ],
)
def test_parent_run_names_show_the_logical_date(text: str, shown: str) -> None:
    assert readable_date(text) == shown


def test_metrics_datasets_become_metrics() -> None:
    value = {"r2": 0.5, "rows": 10, "ok": True, "name": "x", "nested": {"mae": 1.5}}
    assert metric_values("metrics", value) == {"r2": 0.5, "rows": 10.0, "nested.mae": 1.5}
    assert metric_values("score", 3) == {"score": 3.0}
    assert metric_values("table", [1, 2]) == {}
