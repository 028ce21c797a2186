"""Replay: a generated DAG's tasks run as local processes (`kedro gcs-bridge replay`), and the
local-Airflow variant of the same DAG run by a real `airflow dags test`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kedro_gcs_bridge.planning.naming import run_segment
from kedro_gcs_bridge.pod.store import HandoffStore

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RUN_ID = "manual__2026-11-24T07:11:31.230999+00:00"


def run(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("replay")


@pytest.fixture(scope="module")
def base_env(workdir: Path) -> dict[str, str]:
    return {
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "COLUMNS": "400",
        "AIRFLOW_HOME": str(workdir / "airflow_home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }


def fresh_project(workdir: Path, name: str) -> Path:
    target = workdir / name
    shutil.copytree(REPO / "examples" / "spaceflights", target)
    return target


def create_dag(project: Path, env: dict[str, str], *params: str) -> Path:
    target = project / "airflow_dags"
    args = [
        str(BIN / "kedro"),
        "airflow",
        "create",
        "-j",
        str(REPO / "templates" / "gcs_bridge.j2"),
        "-t",
        str(target),
    ]
    if params:
        args += ["--params", ",".join(params)]
    result = run(args, project, env)
    assert result.returncode == 0, result.stderr[-3000:]
    return target / "spaceflights_dag.py"


def metrics(project: Path) -> dict[str, float]:
    return json.loads((project / "data" / "08_reporting" / "metrics.json").read_text())


@pytest.fixture(scope="module")
def reference_metrics(workdir: Path, base_env: dict[str, str]) -> dict[str, float]:
    """One plain in-process `kedro run` of the example."""
    project = fresh_project(workdir, "reference")
    result = run([str(BIN / "kedro"), "run"], project, base_env)
    assert result.returncode == 0, result.stderr[-3000:]
    return metrics(project)


def replay(
    project: Path, dag: Path, env: dict[str, str], *extra: str
) -> subprocess.CompletedProcess[str]:
    return run(
        [
            str(BIN / "kedro"),
            "gcs-bridge",
            "replay",
            str(dag),
            "--run-id",
            RUN_ID,
            "--prefix",
            (project / "runs").as_uri(),
            *extra,
        ],
        project,
        env,
    )


def run_prefix(project: Path, dag_id: str = "spaceflights__default__local") -> str:
    return f"{(project / 'runs').as_uri()}/{dag_id}/{run_segment(RUN_ID)}"


class TestReplay:
    @pytest.mark.parametrize(("grouping", "tasks"), [("true", 5), ("false", 6)])
    def test_replay_matches_one_process(
        self,
        workdir: Path,
        base_env: dict[str, str],
        reference_metrics: dict[str, float],
        grouping: str,
        tasks: int,
    ) -> None:
        project = fresh_project(workdir, f"grouping-{grouping}")
        dag = create_dag(project, base_env, f"grouping={grouping}")
        result = replay(project, dag, base_env, "--parallel", "2")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert f"[{tasks}/{tasks}]" in result.stdout
        assert metrics(project) == reference_metrics
        manifests = HandoffStore(run_prefix(project), task="inspect").manifests()
        assert len(manifests) == tasks
        # The final table: one row per task with its nodes and the bytes it handed off.
        table = result.stdout[result.stdout.index("task  ") :]
        assert "split_data_node" in table and "bytes out" in table

    def test_failed_task_shows_its_log_and_stops_downstream(
        self, workdir: Path, base_env: dict[str, str]
    ) -> None:
        project = fresh_project(workdir, "failing")
        (project / "data" / "01_raw" / "companies.csv").unlink()
        dag = create_dag(project, base_env)
        result = replay(project, dag, base_env, "--parallel", "1")
        assert result.returncode == 1
        out = result.stdout
        assert "companies: failed" in out
        assert "companies.csv" in out  # the task's own log, shown on failure
        assert "shuttles: success" in out  # independent of the failure
        for downstream in ("split", "train_model_node", "evaluate_model_node"):
            assert f"{downstream}: upstream_failed" in out
        assert not (project / "data" / "08_reporting" / "metrics.json").exists()

    def test_rerun_of_one_cleared_task_reads_the_existing_prefix(
        self, workdir: Path, base_env: dict[str, str], reference_metrics: dict[str, float]
    ) -> None:
        project = fresh_project(workdir, "rerun")
        dag = create_dag(project, base_env)
        assert replay(project, dag, base_env).returncode == 0
        store = HandoffStore(run_prefix(project), task="inspect")
        before = {m["task"]: m for m in store.manifests()}
        (project / "data" / "08_reporting" / "metrics.json").unlink()
        result = replay(
            project, dag, base_env, "--task", "train_model_node", "--task", "evaluate_model_node"
        )
        assert result.returncode == 0, result.stdout[-3000:]
        assert "[2/2]" in result.stdout
        assert metrics(project) == reference_metrics
        after = {m["task"]: m for m in store.manifests()}
        assert after["split"] == before["split"]  # upstream untouched
        assert after["train_model_node"]["finished_at"] > before["train_model_node"]["finished_at"]

    def test_replay_through_a_local_gcs_emulator(
        self, workdir: Path, base_env: dict[str, str], reference_metrics: dict[str, float]
    ) -> None:
        project = fresh_project(workdir, "emulator")
        dag = create_dag(project, base_env)
        result = run(
            [
                str(BIN / "kedro"),
                "gcs-bridge",
                "replay",
                str(dag),
                "--emulator",
                "--run-id",
                RUN_ID,
            ],
            project,
            base_env,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert "GCS emulator: http://127.0.0.1:" in result.stdout
        assert "run prefix: gs://kedro-gcs-bridge-replay/runs/spaceflights__default__local/" in (
            result.stdout
        )
        assert metrics(project) == reference_metrics
        assert not (project / ".gcs-bridge-runs").exists()  # nothing went to local disk

    def test_unknown_task_is_refused(self, workdir: Path, base_env: dict[str, str]) -> None:
        project = fresh_project(workdir, "unknown-task")
        dag = create_dag(project, base_env)
        result = replay(project, dag, base_env, "--task", "nope")
        assert result.returncode != 0
        assert "no task ['nope']" in result.stdout + result.stderr


def test_local_airflow_variant_runs_in_airflow_dags_test(
    workdir: Path, base_env: dict[str, str], reference_metrics: dict[str, float]
) -> None:
    project = fresh_project(workdir, "airflow-local")
    dag = create_dag(project, base_env, "pod_backend=local")
    env = {
        **base_env,
        "AIRFLOW_HOME": str(workdir / "af-local"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dag.parent),
    }
    migrate = run([str(BIN / "airflow"), "db", "migrate"], project, env)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    result = run(
        [str(BIN / "airflow"), "dags", "test", "spaceflights__default__local"], project, env
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "state=success" in result.stdout + result.stderr
    assert metrics(project) == reference_metrics
    runs = list((project / ".gcs-bridge-runs" / "spaceflights__default__local").iterdir())
    assert len(runs) == 1 and ":" not in runs[0].name and "+" not in runs[0].name
    assert len(list((runs[0] / "manifests").iterdir())) == 5
