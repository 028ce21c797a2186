"""Finalize: the verdict from Airflow's task states, the MLflow parent's status set once, retries.

The end-to-end test runs the local variant of the example's DAG in a real `airflow dags test`,
with one task marked success by hand and the MLflow parent's status update failing once; it
also checks each group's measured pod start against the task start Airflow rendered.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import jinja2
import pytest
from _fault_proxy import fault_proxy
from _processes import run
from _runs import make_run
from conftest import with_airflow_db
from mlflow import MlflowClient

from kedro_gcs_bridge.config import parse_config
from kedro_gcs_bridge.ops.finalize import finish_run, task_states, verdict
from kedro_gcs_bridge.ops.runs import list_runs
from kedro_gcs_bridge.planning.grouping import NodeSpec
from kedro_gcs_bridge.planning.machines import MachineClass
from kedro_gcs_bridge.planning.plan import (
    FINALIZE_RETRIES,
    FINALIZE_TASK,
    RUN_FAILED_TASK,
    plan_tasks,
)
from kedro_gcs_bridge.pod.store import HandoffStore
from kedro_gcs_bridge.tracking.library import HTTP_LIMITS
from kedro_gcs_bridge.tracking.tracker import RunIdentity, Tracker

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DAG_ID = "spaceflights__default__local"


class TestFinishRun:
    def test_outcome_and_cleanup_policies(self, root: str) -> None:
        tasks = ["a", "b"]
        ok = make_run(root, "dag", "ok", ["a", "b"], tasks)
        failed = make_run(root, "dag", "failed", ["a"], tasks)
        outcome = finish_run(ok, tasks, cleanup="never")
        assert outcome.ok and outcome.deleted_bytes is None
        outcome = finish_run(failed, tasks, cleanup="on_success")
        assert outcome.incomplete == ("b",) and outcome.deleted_bytes is None
        by_run = {run.run: run for run in list_runs(root)}
        assert by_run["ok"].outcome == "success"
        assert by_run["failed"].outcome == "failed"
        outcome = finish_run(ok, tasks, cleanup="on_success")
        assert outcome.deleted_bytes and outcome.deleted_bytes > 0
        outcome = finish_run(failed, tasks, cleanup="always")
        assert outcome.deleted_bytes and outcome.deleted_bytes > 0
        assert list_runs(root) == []

    def test_airflow_states_decide_over_manifests(self, tmp_path: Path) -> None:
        """`b` wrote no manifest but was marked success by hand: the run succeeded."""
        prefix = make_run((tmp_path / "r").as_uri(), "dag", "run", ["a"], ["a", "b"])
        outcome = finish_run(prefix, ["a", "b"], states={"a": "success", "b": "success"})
        assert outcome.ok and outcome.judged_by == "airflow"
        outcome = finish_run(prefix, ["a", "b"], states={"a": "success", "b": "failed"})
        assert outcome.incomplete == ("b",)
        assert finish_run(prefix, ["a", "b"]).incomplete == ("b",)  # no states: manifests


class TestVerdict:
    @pytest.mark.parametrize(
        ("states", "failed"),
        [
            ({"a": "success", "b": "success"}, ()),
            ({"a": "success", "b": "skipped"}, ()),
            ({"a": "success", "b": "failed"}, ("b",)),
            ({"a": "upstream_failed", "b": "success"}, ("a",)),
            ({"a": "success"}, ("b",)),  # never ran
            ({"a": "success", "b": None}, ("b",)),
            ({"a": "removed", "b": "success"}, ("a",)),
        ],
    )
    def test_states(self, states: dict[str, Any], failed: tuple[str, ...]) -> None:
        good, bad = verdict(["a", "b"], {k: str(v) for k, v in states.items()}, set())
        assert bad == failed
        assert set(good) | set(bad) == {"a", "b"}

    def test_states_as_airflow_renders_them(self) -> None:
        run_id = "manual__2026-11-24T07:11:31+00:00"
        other = "scheduled__2026-11-23T00:00:00+00:00"
        rendered = (
            jinja2.Environment(autoescape=True)
            .from_string("{{ states | tojson }}")
            .render(states={run_id: {"a": "success", "b": "skipped"}, other: {"a": "failed"}})
        )
        assert task_states(rendered, run_id) == {"a": "success", "b": "skipped"}
        assert task_states("", run_id) is None

    @pytest.mark.parametrize("text", ["nope", "[1, 2]", '{"run": "success"}'])
    def test_bad_states_are_a_clear_error(self, text: str) -> None:
        from kedro_gcs_bridge.errors import ConfigError

        with pytest.raises(ConfigError, match="KEDRO_GCS_BRIDGE_TASK_STATES"):
            task_states(text, "run")


class TestPlannedFinalize:
    def test_planned_like_any_task(self, spaceflights_nodes: list[NodeSpec]) -> None:
        plan = plan_tasks("__default__", spaceflights_nodes, parse_config({"cleanup": "always"}))
        final = plan.finalize
        assert final is not None and final.task_id == FINALIZE_TASK
        leaves = {t.task_id for t in plan.tasks} - {up for t in plan.tasks for up in t.upstream}
        assert set(final.upstream) == leaves
        assert final.retries == FINALIZE_RETRIES >= 2
        assert final.machine.name == "small"  # the smallest class, not a hard-coded name
        assert final.task_id not in {task.task_id for task in plan.tasks}

    def test_smallest_class_not_on_spot_and_a_free_name(self) -> None:
        nodes = [NodeSpec(FINALIZE_TASK, (), ("x",)), NodeSpec("use", ("x",), ())]
        config = parse_config(
            {
                "mlflow_tracking_uri": "http://127.0.0.1:5000",
                "machine_classes": {
                    "tiny": {"cpu": "250m", "memory": "512Mi"},
                    "cheap": {"cpu": "250m", "memory": "256Mi", "spot": True},
                },
            }
        )
        plan = plan_tasks("p", nodes, config)
        assert plan.finalize is not None
        assert plan.finalize.task_id == f"{FINALIZE_TASK}_1"
        assert plan.finalize.machine == config.machine_classes["tiny"]
        assert isinstance(plan.finalize.machine, MachineClass)

    def test_a_run_failed_task_waits_on_every_group_and_is_never_retried(
        self, spaceflights_nodes: list[NodeSpec]
    ) -> None:
        plan = plan_tasks("__default__", spaceflights_nodes, parse_config({"cleanup": "always"}))
        watcher = plan.run_failed
        assert watcher is not None and watcher.task_id == RUN_FAILED_TASK
        assert set(watcher.upstream) == {task.task_id for task in plan.tasks}
        assert watcher.retries == 0
        names = {n for t in plan.tasks for n in (t.task_id, t.var_name)}
        assert plan.finalize is not None
        names |= {plan.finalize.task_id, plan.finalize.var_name}
        assert not {watcher.task_id, watcher.var_name} & names
        bare = plan_tasks("__default__", spaceflights_nodes, parse_config({}))
        assert bare.run_failed is None  # without finalize, a failed group fails the run itself

    def test_no_finalize_without_tracking_or_cleanup(
        self, spaceflights_nodes: list[NodeSpec]
    ) -> None:
        assert plan_tasks("__default__", spaceflights_nodes, parse_config({})).finalize is None


@pytest.fixture
def experiment() -> str:
    return f"fin-{uuid.uuid4().hex[:8]}"


def test_parent_status_is_set_once(mlflow_server: str, tmp_path: Path, experiment: str) -> None:
    prefix = make_run((tmp_path / "r").as_uri(), "dag", "run", ["a"], ["a", "b"])
    tracker = Tracker(mlflow_server, HandoffStore(prefix, task="a"), experiment)
    parent, _ = tracker.parent_run(RunIdentity("dag", "run", "__default__", "local", "p"))
    env = {"MLFLOW_TRACKING_URI": mlflow_server, "KEDRO_GCS_BRIDGE_MLFLOW_EXPERIMENT": experiment}
    states = {"a": "success", "b": "success"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        first = finish_run(prefix, ["a", "b"], states=states)
        ended = MlflowClient(mlflow_server).get_run(parent).info
        again = finish_run(prefix, ["a", "b"], states=states)
    assert first.mlflow_status == again.mlflow_status == "FINISHED"
    after = MlflowClient(mlflow_server).get_run(parent).info
    assert (after.status, after.end_time) == ("FINISHED", ended.end_time)


class _FailParentUpdateOnce:
    """Proxy policy: once every group's child run has ended, the next status updates fail.

    Enough of them fail (one try plus MLflow's retries) to fail finalize's first attempt;
    later updates pass and are counted, to show the parent's status is set exactly once.
    """

    def __init__(self, uri: str, experiment: str, children: int) -> None:
        self.client = MlflowClient(uri)
        self.experiment = experiment
        self.children = children
        self.to_fail = 1 + int(HTTP_LIMITS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"])
        self.failed = 0
        self.passed_after = 0
        self.lock = threading.Lock()

    def _children_ended(self) -> bool:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is None:
            return False
        runs = self.client.search_runs(
            [found.experiment_id], "tags.`kedro_gcs_bridge.role` = 'child'"
        )
        return len(runs) == self.children and all(r.info.status == "FINISHED" for r in runs)

    def __call__(self, method: str, path: str) -> str:
        if not path.startswith("/api/2.0/mlflow/runs/update"):
            return "pass"
        with self.lock:
            if not self._children_ended():
                return "pass"
            if self.failed < self.to_fail:
                self.failed += 1
                return "503"
            self.passed_after += 1
            return "pass"


def _airflow_dags_test(tmp_path: Path, airflow_db: Path, params: str, *options: str) -> Any:
    """`airflow dags test` of the example's `_local` DAG made with `--params` (a copy of the
    example in `tmp_path/spaceflights`, its own AIRFLOW_HOME with a copy of the migrated DB)."""
    project = tmp_path / "spaceflights"
    if not project.exists():
        shutil.copytree(REPO / "examples" / "spaceflights", project)
    env = {
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "COLUMNS": "400",
        "AIRFLOW_HOME": str(with_airflow_db(tmp_path / "airflow_home", airflow_db)),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(project / "dags"),
    }
    create = [str(BIN / "kedro"), "airflow", "create", "-j", str(REPO / "templates/gcs_bridge.j2")]
    created = run([*create, "-t", str(project / "dags"), "--params", params], project, env)
    assert created.returncode == 0, created.stderr[-3000:]
    # pod_backend: local makes the `_local` variant (its own dag_id and file).
    return run([str(BIN / "airflow"), "dags", "test", f"{DAG_ID}_local", *options], project, env)


@pytest.mark.slow
def test_finalize_in_airflow_follows_task_states_and_retries(
    tmp_path: Path, mlflow_server: str, experiment: str, airflow_db: Path
) -> None:
    """A leaf task marked success by hand (no manifest, no child run): the parent ends
    FINISHED; finalize's first attempt fails on MLflow (mlflow_required) and is retried."""
    policy = _FailParentUpdateOnce(mlflow_server, experiment, children=4)
    with fault_proxy(mlflow_server, policy, max_requests=5000, max_seconds=600) as proxy:
        params = (
            f"pod_backend=local,mlflow_tracking_uri={proxy.url},mlflow_experiment={experiment},"
            "mlflow_required=true"
        )
        result = _airflow_dags_test(
            tmp_path, airflow_db, params, "--mark-success-pattern", "^evaluate_model_node$"
        )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    assert "DagRun Finished" in log and "state=success" in log
    assert policy.failed == policy.to_fail  # finalize's first attempt failed ...
    assert "failed while finalize set the parent run's status" in log
    assert policy.passed_after == 1  # ... the retry set the parent's status, once
    client = MlflowClient(mlflow_server)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    runs = client.search_runs([found.experiment_id])
    parents = [r for r in runs if r.data.tags.get("kedro_gcs_bridge.role") == "parent"]
    children = {
        r.info.run_name for r in runs if r.data.tags.get("kedro_gcs_bridge.role") == "child"
    }
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert children == {"companies", "shuttles", "split", "train_model_node"}
    _assert_pod_starts_measured(tmp_path / "spaceflights", len(children))


def _assert_pod_starts_measured(project: Path, groups: int) -> None:
    """Airflow 3 rendered `ti.start_date` into each task's environment, and each group that ran
    measured its pod start from it (tests/dag/test_task_start.py has the rendering itself)."""
    (prefix,) = (project / ".gcs-bridge-runs" / f"{DAG_ID}_local").iterdir()
    # The folder holds the run id percent-encoded: read the files, not a URL made from them.
    manifests = [json.loads(path.read_text()) for path in (prefix / "manifests").iterdir()]
    assert len(manifests) == groups
    for manifest in manifests:
        started = dt.datetime.fromisoformat(manifest["task_start_at"])
        first = dt.datetime.fromisoformat(manifest["first_node_at"])
        assert started.tzinfo is not None
        assert manifest["pod_start_seconds"] == pytest.approx(
            (first - started).total_seconds(), abs=1e-3
        )
        assert manifest["pod_start_seconds"] > 0, manifest["task"]
