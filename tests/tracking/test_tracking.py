"""MLflow: one parent run per DAG run, a child run per group, status set once at the end.

Against a real `mlflow server` on 127.0.0.1, with the example's DAG replayed locally.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from kedro_gcs_bridge.planning.naming import run_segment
from kedro_gcs_bridge.pod.store import HandoffStore
from kedro_gcs_bridge.tracking.tracker import RunIdentity, Tracker, flatten_params

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GROUP_TASKS = {"companies", "shuttles", "split", "train_model_node", "evaluate_model_node"}


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


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
    tmp_path: Path, uri: str, env: dict[str, str], experiment: str
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
            f"mlflow_tracking_uri={uri},mlflow_experiment={experiment}",
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


class TestTrackedReplay:
    def test_one_parent_run_with_a_child_per_task(
        self, tmp_path: Path, mlflow_server: str, env: dict[str, str]
    ) -> None:
        experiment = f"exp-{uuid.uuid4().hex[:6]}"
        project, dag = tracked_project(tmp_path, mlflow_server, env, experiment)
        run_id = "manual__2026-11-24T08:00:00+00:00"
        result = replay(project, dag, env, run_id, "--parallel", "2")
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]

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
        assert "gcs_bridge_finalize: failed" in result.stdout
        assert "groups that did not finish: shuttles, split" in result.stdout
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


def test_parameters_are_flattened_for_mlflow() -> None:
    params = {"model_options": {"test_size": 0.2, "features": ["a", "b"]}, "seed": 3, "empty": {}}
    assert flatten_params(params) == {
        "model_options.test_size": "0.2",
        "model_options.features": "['a', 'b']",
        "seed": "3",
        "empty": "{}",
    }
