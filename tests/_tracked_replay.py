"""One tracked replay of the example's DAG for the whole session, as a pytest fixture.

A real `mlflow server` (tests/_mlflow_server.py) tracks a replay of the grouped DAG with a pod
start delay, `--shared-dir` so the outputs land in the project. tests/tracking/test_tracking.py
checks its MLflow runs, tests/tracking/test_suggest_from_run.py what `suggest` reads from it:
one replay (~40 s) instead of one per module. Registered in conftest.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from _processes import run

from kedro_gcs_bridge.planning.naming import run_segment

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TRACKED_RUN_ID = "manual__2026-11-24T08:00:00+00:00"
TRACKED_DAG_ID = "spaceflights__default__local"
#: Seconds each replayed task waits before its process, as a pod waits to start.
POD_START_DELAY = 3.0


@dataclass(frozen=True)
class TrackedReplay:
    """What the replay left: the project (its DAG in `dags/`), the MLflow experiment, the run."""

    project: Path
    dag: Path
    env: dict[str, str]
    experiment: str
    run_id: str
    result: subprocess.CompletedProcess[str]

    @property
    def prefix(self) -> str:
        """The run prefix of the replayed DAG run."""
        return f"{(self.project / 'runs').as_uri()}/{TRACKED_DAG_ID}/{run_segment(self.run_id)}"


@pytest.fixture(scope="session")
def tracked_replay(tmp_path_factory: pytest.TempPathFactory, mlflow_server: str) -> TrackedReplay:
    """The grouped example DAG, created with tracking on and replayed once (`--parallel 2`)."""
    root = tmp_path_factory.mktemp("tracked_replay")
    project = root / "spaceflights"
    shutil.copytree(REPO / "examples" / "spaceflights", project)
    env = {
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "COLUMNS": "400",
        "AIRFLOW_HOME": str(root / "airflow_home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    experiment = f"exp-{uuid.uuid4().hex[:6]}"
    # The example keeps its data on local disk, which the GKE DAG refuses by default.
    params = f"mlflow_tracking_uri={mlflow_server},mlflow_experiment={experiment},local_disk=warn"
    template = str(REPO / "templates" / "gcs_bridge.j2")
    create = ["airflow", "create", "-j", template, "-t", str(project / "dags"), "--params", params]
    created = run([str(BIN / "kedro"), *create], project, env)
    assert created.returncode == 0, created.stderr[-3000:]
    dag = project / "dags" / "spaceflights_dag.py"
    replay = ["gcs-bridge", "replay", str(dag), "--run-id", TRACKED_RUN_ID]
    replay += ["--prefix", (project / "runs").as_uri(), "--shared-dir", "--parallel", "2"]
    replay += ["--pod-start-delay", str(POD_START_DELAY)]
    result = run([str(BIN / "kedro"), *replay], project, env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return TrackedReplay(project, dag, env, experiment, TRACKED_RUN_ID, result)
