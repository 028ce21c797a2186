"""Replay: a generated DAG's tasks run as local processes (`kedro gcs-bridge replay`), and the
local-Airflow variant of the same DAG run by a real `airflow dags test`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from _processes import run
from conftest import _LOCAL_DISK_CATALOG

from kedro_gcs_bridge.dag.replay import (
    ReplayTask,
    TaskResult,
    kedro_start_seconds,
    left_on_disk_summary,
    load_dag_tasks,
    makespan,
    slot_waits,
)
from kedro_gcs_bridge.dag.replay import replay as replay_tasks
from kedro_gcs_bridge.errors import ReplayError
from kedro_gcs_bridge.planning.naming import run_segment
from kedro_gcs_bridge.pod.protocol import Manifest
from kedro_gcs_bridge.pod.store import HandoffStore

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RUN_ID = "manual__2026-11-24T07:11:31.230999+00:00"


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


def create_dag(
    project: Path,
    env: dict[str, str],
    *params: str,
    name: str = "spaceflights_dag.py",
    kedro_env: str | None = None,
) -> Path:
    """`kedro airflow create` with `--params` (`-p P` may lead them); `name` is the file."""
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
    if params and params[0] == "-p":
        args += params[:2]
        params = params[2:]
    if kedro_env:
        args += ["-e", kedro_env]
    # The example keeps its data on local disk, which the GKE DAG refuses by default.
    args += ["--params", ",".join((*params, "local_disk=warn"))]
    result = run(args, project, env)
    assert result.returncode == 0, result.stderr[-3000:]
    return target / name


def drop_entry(catalog: Path, name: str) -> str:
    """Takes one entry out of a catalog file; returns the file's text as it was."""
    text = catalog.read_text(encoding="utf-8")
    entries = yaml.safe_load(text)
    del entries[name]
    catalog.write_text(yaml.safe_dump(entries, sort_keys=False), encoding="utf-8")
    return text


def metrics(project: Path) -> dict[str, float]:
    return json.loads((project / "data" / "08_reporting" / "metrics.json").read_text())


def kept_metrics(project: Path) -> dict[str, float]:
    """metrics.json as the evaluate task left it in its own copy (`--keep-task-dirs`)."""
    return metrics(project / "task-dirs" / "evaluate_model_node" / "project")


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
    return run_prefix_on((project / "runs").as_uri(), dag_id)


def run_prefix_on(root: str, dag_id: str = "spaceflights__default__local") -> str:
    return f"{root}/{dag_id}/{run_segment(RUN_ID)}"


@dataclass(frozen=True)
class Replayed:
    """One replay of a DAG created in its own copy of the example project."""

    project: Path
    dag: Path
    result: subprocess.CompletedProcess[str]
    manifests: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def grouped(workdir: Path, base_env: dict[str, str]) -> Replayed:
    """The example's grouped DAG replayed once, each task isolated (`--keep-task-dirs`)."""
    project = fresh_project(workdir, "grouped")
    dag = create_dag(project, base_env)
    keep = ("--keep-task-dirs", str(project / "task-dirs"))
    result = replay(project, dag, base_env, "--parallel", "2", *keep)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    store = HandoffStore(run_prefix(project), task="inspect")
    return Replayed(project, dag, result, {m.task: m for m in store.manifests()})


@pytest.mark.slow
class TestReplay:
    def test_replay_matches_one_process(
        self, grouped: Replayed, reference_metrics: dict[str, float]
    ) -> None:
        """(An ungrouped DAG and the cost model against its replay: test_replay_fanout.py and
        the tracked replay's suggest tests; `--shared-dir`: TestIsolation and the tracking and
        fault tests.)"""
        out = grouped.result.stdout
        assert "[5/5]" in out
        # Each task ran in its own copy: the metrics stayed on the evaluate task's disk.
        assert "isolated: each task runs in a fresh copy" in out
        assert not (grouped.project / "data" / "08_reporting" / "metrics.json").exists()
        assert kept_metrics(grouped.project) == reference_metrics
        assert "left on the tasks' own disks (lost with a pod on GKE): " in out
        assert "data/08_reporting/metrics.json (evaluate_model_node)" in out
        assert "left on its own disk" not in out  # said once after the tasks, not per task
        assert len(grouped.manifests) == 5
        # The final table: one row per task with its nodes and the bytes it handed off.
        table = out[out.index("task  ") :]
        assert "split_data_node" in table and "bytes out" in table

    def test_failed_task_shows_its_log_and_stops_downstream(
        self, workdir: Path, base_env: dict[str, str]
    ) -> None:
        """The image leaves a raw input out (docker ignore file): its task fails as in a pod."""
        project = fresh_project(workdir, "failing")
        (project / "docker").mkdir()
        (project / "docker" / "Dockerfile.dockerignore").write_text("data/01_raw/companies.csv\n")
        dag = create_dag(project, base_env)
        result = replay(project, dag, base_env, "--parallel", "1")
        assert result.returncode == 1
        out = result.stdout
        assert (
            "docker/Dockerfile.dockerignore" in out
            and "without data/01_raw/companies.csv (1 files)" in out
        )
        assert "companies: failed" in out
        assert "    first exception: FileNotFoundError: [Errno 2] No such file" in out
        assert "    error: DatasetError: companies: Failed while loading data" in out
        remedy = (
            "    remedy: the image leaves out data/01_raw/companies.csv "
            "(docker/Dockerfile.dockerignore), as this task's copy does: keep it in the image"
        )
        assert remedy in out, out[-3000:]
        assert "companies.csv" in out  # the task's own log, shown on failure
        assert (project / "data" / "01_raw" / "companies.csv").exists()  # the project's own
        assert "shuttles: success" in out  # independent of the failure
        # Replay's own advice once, not Kedro's "Repeat the previous command" per task.
        held_back = "--task split --task train_model_node --task evaluate_model_node"
        again = f"kedro gcs-bridge replay {dag} --run-id {RUN_ID} --task companies {held_back}"
        assert again in out, out[-3000:]
        assert "Repeat the previous command" not in out.split("| ")[0]
        for downstream in ("split", "train_model_node", "evaluate_model_node"):
            assert f"{downstream}: upstream_failed" in out
        assert not (project / "data" / "08_reporting" / "metrics.json").exists()

    def test_rerun_of_one_cleared_task_reads_the_existing_prefix(
        self, grouped: Replayed, base_env: dict[str, str], reference_metrics: dict[str, float]
    ) -> None:
        project, before = grouped.project, grouped.manifests
        only = ("--task", "train_model_node", "--task", "evaluate_model_node")
        keep = ("--keep-task-dirs", str(project / "rerun-dirs"))
        result = replay(project, grouped.dag, base_env, *only, *keep)
        assert result.returncode == 0, result.stdout[-3000:]
        assert "[2/2]" in result.stdout
        assert metrics(project / "rerun-dirs" / "evaluate_model_node" / "project") == (
            reference_metrics
        )
        store = HandoffStore(run_prefix(project), task="inspect")
        after = {m.task: m for m in store.manifests()}
        assert after["split"] == before["split"]  # upstream untouched
        assert after["train_model_node"].finished_at > before["train_model_node"].finished_at

    def test_replay_through_the_users_gcs_emulator(
        self, grouped: Replayed, base_env: dict[str, str], gcs_emulator: str
    ) -> None:
        """`--emulator` with STORAGE_EMULATOR_HOST set: replay uses that emulator (left
        running), the run prefix is on its bucket, and the printed `suggest --from gs://...`
        carries the emulator's address, not real GCS. (One task: the outputs of a whole
        replay through gs:// are checked by the journey and by tests/pod/test_faults.py; an
        emulator replay starts itself by the seeded test below.)"""
        args = ["--emulator", "--run-id", RUN_ID, "--task", "companies"]
        result = run(
            [str(BIN / "kedro"), "gcs-bridge", "replay", str(grouped.dag), *args],
            grouped.project,
            {**base_env, "STORAGE_EMULATOR_HOST": gcs_emulator},
        )
        out = result.stdout
        assert result.returncode == 0, out[-3000:] + result.stderr[-2000:]
        assert f"GCS emulator: {gcs_emulator} (yours, from STORAGE_EMULATOR_HOST" in out
        assert "run prefix: gs://kedro-gcs-bridge-replay/runs/spaceflights__default__local/" in (
            out
        )
        assert "[1/1]" in out and "companies: success" in out
        assert not (grouped.project / ".gcs-bridge-runs").exists()  # nothing went to local disk
        suggest = f"STORAGE_EMULATOR_HOST={gcs_emulator} kedro gcs-bridge suggest --from gs://"
        assert f"model of this replay: {suggest}kedro-gcs-bridge-replay/runs/" in out
        store = HandoffStore(run_prefix_on("gs://kedro-gcs-bridge-replay/runs"), task="inspect")
        assert [m.task for m in store.manifests()] == ["companies"]

    def test_an_emulator_replay_of_a_gcs_catalog_is_seeded_or_refused_up_front(
        self, workdir: Path, base_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """After `catalog --root gs://...`, the emulator replay starts lacks the raw inputs:
        it refuses before any task runs, naming bucket and object, and `--seed` uploads the
        project's files. The printed `suggest --from` reads a local copy, not the emulator
        that is gone (nor real GCS)."""
        monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)  # replay starts its own
        project = fresh_project(workdir, "gcs-catalog")
        moved = run(
            [str(BIN / "kedro"), "gcs-bridge", "catalog", "--root", "gs://example-bucket/sf"],
            project,
            base_env,
        )
        assert moved.returncode == 0, moved.stdout + moved.stderr[-2000:]
        dag = create_dag(project, base_env, name="spaceflights_gcs_dag.py", kedro_env="gcs")
        args = ["--emulator", "--run-id", RUN_ID, "--task", "companies"]
        command = [str(BIN / "kedro"), "gcs-bridge", "replay", str(dag), *args]
        refused = run(command, project, base_env)
        assert refused.returncode == 1, refused.stdout[-3000:]
        errors = [line for line in refused.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, refused.stderr[-3000:]
        assert "'companies' (bucket example-bucket, object sf/" in errors[0]
        assert "companies.csv" in errors[0] and "pass --seed" in errors[0]
        assert "Traceback" not in refused.stdout + refused.stderr
        assert "[1/1]" not in refused.stdout  # no task started
        # A re-run of a later task: what the DAG's own tasks make is never asked for (it comes
        # from upstream tasks), only its raw input.
        later = [str(BIN / "kedro"), "gcs-bridge", "replay", str(dag), "--emulator"]
        refused = run([*later, "--task", "split"], project, base_env)
        errors = [line for line in refused.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and "1 input(s)" in errors[0], refused.stderr[-3000:]
        assert "'reviews' (bucket example-bucket" in errors[0] and "preprocessed" not in errors[0]

        # Without --emulator the raw inputs are read where the catalog says (here a dead
        # emulator on loopback, never real GCS): one error within seconds, no task started.
        from _gcs_emulator import free_port

        dead = {**base_env, "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{free_port()}"}
        direct = [str(BIN / "kedro"), "gcs-bridge", "replay", str(dag), "--run-id", RUN_ID]
        unreached = run(direct, project, dead)
        errors = [line for line in unreached.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, unreached.stderr[-3000:]
        assert "cannot reach 3 raw input(s) on GCS (gs://example-bucket/sf/" in errors[0]
        assert "--emulator --seed" in errors[0] and "[1/" not in unreached.stdout

        seeded = run([*command, "--seed"], project, base_env)
        out = seeded.stdout
        assert seeded.returncode == 0, out[-3000:] + seeded.stderr[-3000:]
        assert "seeded companies: " in out and "-> gs://example-bucket/sf/" in out
        assert "Filling up the DagBag" not in out and "Building pod" not in out  # Airflow's INFO
        assert "[1/1] companies: success" in out
        kept = f"{(project / '.gcs-bridge-runs').as_uri()}/spaceflights__default__gcs/"
        assert f"model of this replay: kedro gcs-bridge suggest --from {kept}" in out
        assert "--from gs://" not in out

    def test_unknown_task_is_refused(self, grouped: Replayed, base_env: dict[str, str]) -> None:
        result = replay(grouped.project, grouped.dag, base_env, "--task", "nope")
        assert result.returncode != 0
        assert "no task ['nope']" in result.stdout + result.stderr


@pytest.mark.slow
class TestIsolation:
    """A local-disk dataset crossing tasks: lost between isolated tasks, as between pods."""

    CROSSING = "preprocessed_companies"
    DAG_ID = "spaceflights__data_processing__local"

    def test_local_disk_crossing_fails_isolated_passes_shared_or_handed_off(
        self, workdir: Path, base_env: dict[str, str]
    ) -> None:
        # local_handoff: false. Written before the entry went to the catalog (create refuses
        # a local-disk crossing with local_handoff: false), as a DAG outlives catalog edits.
        project = fresh_project(workdir, "no-local-handoff")
        pipeline = ("-p", "data_processing")
        name = "spaceflights_data_processing_dag.py"
        catalog = project / _LOCAL_DISK_CATALOG.path
        # The one local-disk crossing here: preprocessed_shuttles goes in memory.
        drop_entry(catalog, "preprocessed_shuttles")
        full = drop_entry(catalog, self.CROSSING)
        dag = create_dag(project, base_env, *pipeline, "local_handoff=false", name=name)
        catalog.write_text(full, encoding="utf-8")
        isolated = replay(project, dag, base_env, "--parallel", "1")
        out = isolated.stdout
        assert isolated.returncode == 1, out[-3000:]
        assert "companies: success" in out and "split: failed" in out
        # The producer's warning is shown although it succeeded; the consumer names the dataset.
        assert f"warning: Dataset '{self.CROSSING}' crosses between groups" in out
        assert f"first exception: HandoffError: dataset '{self.CROSSING}' is made by node" in out
        assert "Set `handoff.local_handoff: true` in airflow.yml" in out

        shared = replay(project, dag, base_env, "--shared-dir", "--run-id", "manual__shared")
        assert shared.returncode == 0, shared.stdout[-3000:]
        assert "shared dir: every task runs in the project folder" in shared.stdout

        # local_handoff: true (the default): the run prefix carries it between isolated tasks.
        project = fresh_project(workdir, "local-handoff")
        dag = create_dag(project, base_env, *pipeline, name=name)
        handed = replay(project, dag, base_env)
        assert handed.returncode == 0, handed.stdout[-3000:]
        assert "[3/3]" in handed.stdout and "first exception" not in handed.stdout
        # The catalog's own save still happens in the producer's pod (lost with it on GKE).
        written = "data/02_intermediate/preprocessed_companies.parquet"
        assert f"{written} (companies)" in handed.stdout
        store = HandoffStore(run_prefix(project, self.DAG_ID), task="inspect")
        companies = next(m for m in store.manifests() if m.task == "companies")
        assert self.CROSSING in companies.datasets

        # In one folder (`--shared-dir`) the persisted output is where a plain `kedro run`
        # writes it, although the run prefix carried it between the tasks.
        assert not (project / written).exists()
        shared = replay(project, dag, base_env, "--shared-dir", "--run-id", "manual__shared")
        assert shared.returncode == 0, shared.stdout[-3000:]
        reference = pd.read_parquet(
            store.fs.open(store.fs.find(store.layout.data_dir(self.CROSSING))[0], "rb")
        )
        pd.testing.assert_frame_equal(pd.read_parquet(project / written), reference)


class TestTiming:
    def test_makespan_spans_first_start_to_last_end(self) -> None:
        results = [
            TaskResult("a", "success", 5.0, started=100.0, ended=105.0, pod_start_s=3.0),
            TaskResult("b", "success", 4.0, started=105.5, ended=109.5, pod_start_s=3.0),
            TaskResult("c", "upstream_failed"),
        ]
        assert makespan(results) == pytest.approx(9.5)
        assert makespan([]) == 0.0

    def test_kedro_start_is_the_median_time_outside_nodes_and_delay(self) -> None:
        results = [
            TaskResult("a", "success", 6.0, pod_start_s=3.0),
            TaskResult("b", "success", 8.0, pod_start_s=3.0),
            TaskResult("c", "success", 5.5, pod_start_s=3.0),
            TaskResult("d", "failed", 1.0),
        ]
        timed = {"a": {"x": 0.5}, "b": {"y": 2.0, "z": 1.0}, "c": {"w": 0.5}}
        manifests = {
            task: Manifest(task, (), 1, {}, node_seconds=seconds) for task, seconds in timed.items()
        }
        assert kedro_start_seconds(results, manifests) == pytest.approx(2.0)
        assert kedro_start_seconds(results, {}) is None

    def test_a_task_waiting_for_a_free_slot_is_counted(self, tmp_path: Path) -> None:
        sleep = (sys.executable, "-c", "import time; time.sleep(1)")
        tasks = [ReplayTask(name, sleep, {}, frozenset(), ()) for name in "abc"]
        results = replay_tasks(tasks, tmp_path, parallel=2)
        count, waited = slot_waits(results)
        assert count == 1
        assert waited >= 1.0  # at least the sleep of the task whose slot it took
        (late,) = [r for r in results if r.waited_s > 0.5]
        first_end = min(r.ended or 0.0 for r in results if r is not late)
        assert (late.started or 0.0) >= first_end  # it started once a slot was free
        assert slot_waits(replay_tasks(tasks, tmp_path, parallel=3)) == (0, 0.0)


class TestLeftOnDisk:
    def test_files_left_on_the_tasks_disks_are_said_once(self) -> None:
        """A file every task leaves (the project's own info.log) is one entry, not one line per
        task; a file one task leaves names that task."""
        results = [
            TaskResult("a", "success", left_on_disk=("info.log",)),
            TaskResult("b", "success", left_on_disk=("info.log", "data/metrics.json")),
            TaskResult("c", "failed", left_on_disk=("info.log",)),
            TaskResult("d", "upstream_failed"),
        ]
        assert left_on_disk_summary(results) == (
            "left on the tasks' own disks (lost with a pod on GKE): info.log (all 3 tasks), "
            "data/metrics.json (b)"
        )
        assert left_on_disk_summary(results[3:]) == ""

    def test_after_the_table_once_the_files_and_the_rerun_of_failed_tasks(self) -> None:
        from kedro_gcs_bridge.cli.replay import _after

        results = [
            TaskResult("a", "success", left_on_disk=("info.log",)),
            TaskResult("b", "failed", left_on_disk=("info.log",)),
            TaskResult("c", "upstream_failed"),
        ]
        lines = _after(results, Path("dags/d.py"), "manual__1", kept_prefix=True)
        assert lines == [
            "left on the tasks' own disks (lost with a pod on GKE): info.log (all 2 tasks)",
            "re-run the failed task(s) and the ones they held back, after a fix (with this "
            "replay's other options): kedro gcs-bridge replay dags/d.py --run-id manual__1 "
            "--task b --task c",
        ]
        # An emulator replay started is gone with its run prefix: no re-run of one task.
        gone = _after(results, Path("dags/d.py"), "manual__1", kept_prefix=False)
        assert gone[:1] == lines[:1] and len(gone) == 2
        assert gone[1].startswith("the run prefix was on the emulator this replay started")


class TestModelCommand:
    """The `suggest --from` replay prints reaches the data where the replay left it."""

    def test_a_gs_prefix_on_an_emulator_names_the_emulator(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from kedro_gcs_bridge.cli.replay import _model_source

        monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9023")
        command = _model_source(None, "gs://b/runs/d/r", None)  # type: ignore[arg-type]
        assert command == (
            "STORAGE_EMULATOR_HOST=http://127.0.0.1:9023 kedro gcs-bridge suggest --from "
            "gs://b/runs/d/r"
        )
        local = _model_source(None, "file:///p/runs/d/r", None)  # type: ignore[arg-type]
        assert local == "kedro gcs-bridge suggest --from file:///p/runs/d/r"
        monkeypatch.delenv("STORAGE_EMULATOR_HOST")
        plain = _model_source(None, "gs://b/runs/d/r", None)  # type: ignore[arg-type]
        assert plain == "kedro gcs-bridge suggest --from gs://b/runs/d/r"


def test_a_local_backend_dag_is_refused_with_what_to_replay_instead(tmp_path: Path) -> None:
    """`pod_backend: local` writes BashOperators: replay names the file to replay and how to
    run that one."""
    dag_file = tmp_path / "local_dag.py"
    dag_file.write_text(
        "from datetime import datetime\n"
        "from airflow.providers.standard.operators.bash import BashOperator\n"
        "from airflow.sdk import DAG\n"
        "with DAG(dag_id='d', start_date=datetime(2023, 1, 1), schedule=None):\n"
        "    BashOperator(task_id='companies', bash_command='true')\n",
        encoding="utf-8",
    )
    with pytest.raises(ReplayError) as raised:
        load_dag_tasks(dag_file, "manual__1", (tmp_path / "runs").as_uri())
    message = str(raised.value)
    assert "task companies is a BashOperator, not a pod task" in message
    assert "without `pod_backend: local`" in message and "airflow dags test" in message
