"""A project that also uses kedro-mlflow: nothing breaks.

kedro-mlflow opens an MLflow run in every `kedro run` and keeps it active; the bridge then
leaves it alone (nodes' own mlflow calls land there, as kedro-mlflow promises) and fills its
parent and child runs through the client. kedro-mlflow registers hooks in every Kedro session,
so it gets a virtual environment of its own here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).parent / "uv"
KEDRO_MLFLOW = "kedro-mlflow==2.0.3"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("kedro-mlflow") / "venv"
    subprocess.run([str(UV), "venv", "-q", "-p", sys.executable, str(target)], check=True)
    subprocess.run(
        [
            str(UV),
            "pip",
            "install",
            "-q",
            "-p",
            str(target / "bin" / "python"),
            "-c",
            str(REPO / "constraints.txt"),
            "-e",
            str(REPO),
            KEDRO_MLFLOW,
            "scikit-learn",
        ],
        check=True,
        timeout=600,
    )
    return target


def test_groups_track_alongside_kedro_mlflow(
    venv: Path, tmp_path: Path, mlflow_server: str
) -> None:
    project = tmp_path / "spaceflights"
    shutil.copytree(REPO / "examples" / "spaceflights", project)
    kedro = str(venv / "bin" / "kedro")
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "COLUMNS": "300"}
    init = subprocess.run(
        [kedro, "mlflow", "init"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert init.returncode == 0, init.stderr[-2000:]
    experiment = f"bridge-{uuid.uuid4().hex[:6]}"
    run_env = {
        **env,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "KEDRO_GCS_BRIDGE_MLFLOW_EXPERIMENT": experiment,
        "KEDRO_GCS_BRIDGE_RUN_PREFIX": (tmp_path / "run").as_uri(),
        "KEDRO_GCS_BRIDGE_DAG_ID": "spaceflights__default__local",
        "KEDRO_GCS_BRIDGE_RUN_ID": "manual__1",
    }
    for task, nodes in [
        ("companies", "preprocess_companies_node"),
        ("shuttles", "preprocess_shuttles_node"),
    ]:
        result = subprocess.run(
            [kedro, "run", "--runner", "kedro_gcs_bridge.GCSRunner", "--nodes", nodes],
            cwd=project,
            env={**run_env, "KEDRO_GCS_BRIDGE_TASK": task},
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    client = MlflowClient(mlflow_server)
    ours = client.get_experiment_by_name(experiment)
    assert ours is not None
    runs = client.search_runs([ours.experiment_id])
    parents = [r for r in runs if r.data.tags.get("kedro_gcs_bridge.role") == "parent"]
    children = {
        r.info.run_name: r for r in runs if r.data.tags.get("kedro_gcs_bridge.role") == "child"
    }
    assert len(parents) == 1
    assert set(children) == {"companies", "shuttles"}
    for child in children.values():
        assert child.info.status == "FINISHED"
        assert any(key.startswith("node_seconds/") for key in child.data.metrics)
    # kedro-mlflow kept its own run per `kedro run`, closed normally.
    theirs = client.get_experiment_by_name("spaceflights")
    assert theirs is not None
    their_runs = client.search_runs([theirs.experiment_id], max_results=10)
    assert len(their_runs) >= 2 and all(r.info.status == "FINISHED" for r in their_runs[:2])
