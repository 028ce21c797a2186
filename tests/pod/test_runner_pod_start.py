"""The pod start a group measures: real `kedro run` processes of the example's first group, told
(or not) when their Airflow task started through `KEDRO_GCS_BRIDGE_TASK_START`, as a generated
DAG tells them (tests/dag/test_task_start.py). A missing or unreadable start never fails a group:
the measurement is just absent from its manifest.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _processes import run

from kedro_gcs_bridge.pod.context import REPLAY_PARALLEL_ENV, TASK_START_ENV
from kedro_gcs_bridge.pod.store import HandoffStore

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
KEDRO = Path(sys.executable).parent / "kedro"
GROUP = "preprocess_companies_node"  # the example's first group: it loads nothing crossing
#: How long before the process starts its "task" started, in the `set` case.
EARLIER = 2.0


@dataclass(frozen=True)
class Group:
    result: subprocess.CompletedProcess[str]
    manifest: dict[str, Any]
    told: str | None  # the value given, None when the variable was not set

    def output(self) -> str:
        return " ".join((self.result.stdout + self.result.stderr).split())


def _start_value(case: str) -> str | None:
    now = dt.datetime.now(dt.UTC)
    return {
        "set": (now - dt.timedelta(seconds=EARLIER)).isoformat(),
        "naive": (now - dt.timedelta(seconds=EARLIER)).replace(tzinfo=None).isoformat(),
        "missing": None,
        "empty": "",
        "garbage": "yesterday at noon",
        "future": (now + dt.timedelta(hours=1)).isoformat(),
    }[case]


def _run_group(root: Path, case: str) -> Group:
    project = root / case / "spaceflights"
    shutil.copytree(REPO / "examples" / "spaceflights", project)
    prefix = (root / case / "run").as_uri()
    env = {
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "COLUMNS": "400",
        "KEDRO_GCS_BRIDGE_RUN_PREFIX": prefix,
        "KEDRO_GCS_BRIDGE_TASK": "companies",
    }
    told = _start_value(case)
    if told is not None:
        env[TASK_START_ENV] = told
    if case == "set":  # as `replay --parallel 3` tells each task
        env[REPLAY_PARALLEL_ENV] = "3"
    cmd = [str(KEDRO), "run", "--runner", "kedro_gcs_bridge.GCSRunner", "--nodes", GROUP]
    result = run(cmd, project, env, timeout=300)
    manifests = HandoffStore(prefix, task="inspect").manifests() if result.returncode == 0 else []
    return Group(result, manifests[0].to_json() if manifests else {}, told)


CASES = ("set", "naive", "missing", "empty", "garbage", "future")


@pytest.fixture(scope="module")
def groups(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Group]:
    """Every case's group, run once, a few at a time."""
    root = tmp_path_factory.mktemp("pod_start")
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(CASES, pool.map(lambda case: _run_group(root, case), CASES), strict=True))


@pytest.mark.parametrize("case", CASES)
def test_the_group_runs_and_commits_whatever_it_was_told(
    groups: dict[str, Group], case: str
) -> None:
    group = groups[case]
    assert group.result.returncode == 0, group.result.stderr[-3000:]
    assert group.manifest["nodes"] == [GROUP]
    assert group.manifest["first_node_at"]


def test_a_replayed_group_records_how_many_tasks_ran_at_once(groups: dict[str, Group]) -> None:
    """Issue 29: replay's --parallel and the CPUs, for suggest to weigh the pod start by."""
    assert groups["set"].manifest["replay_parallel"] == 3
    assert groups["set"].manifest["cpus"] >= 1
    assert "replay_parallel" not in groups["missing"].manifest  # a pod: not replayed
    assert "cpus" not in groups["missing"].manifest


@pytest.mark.parametrize("case", ["set", "naive"])
def test_pod_start_runs_from_the_task_start_to_the_first_node(
    groups: dict[str, Group], case: str
) -> None:
    manifest = groups[case].manifest
    started = dt.datetime.fromisoformat(manifest["task_start_at"])
    first = dt.datetime.fromisoformat(manifest["first_node_at"])
    assert started.tzinfo is not None  # a time without a zone is read as UTC
    assert started.replace(tzinfo=None).isoformat() == groups[case].told.split("+")[0]
    assert manifest["pod_start_seconds"] == pytest.approx((first - started).total_seconds(), 1e-3)
    # The task started EARLIER s before the process: Kedro's own start comes on top.
    assert EARLIER < manifest["pod_start_seconds"] < EARLIER + 120
    json.dumps(manifest)  # plain JSON, as suggest reads it


@pytest.mark.parametrize("case", ["missing", "empty", "garbage"])
def test_an_unknown_task_start_leaves_the_measurement_out(
    groups: dict[str, Group], case: str
) -> None:
    manifest = groups[case].manifest
    assert "task_start_at" not in manifest
    assert "pod_start_seconds" not in manifest
    assert manifest["node_seconds"]  # the other measurements stay


def test_an_unreadable_task_start_is_named_in_a_warning(groups: dict[str, Group]) -> None:
    said = groups["garbage"].output()
    assert f"No pod start measurement: {TASK_START_ENV} is not an ISO 8601 time" in said
    assert "'yesterday at noon'" in said
    assert "No pod start measurement" not in groups["missing"].output()


def test_a_start_after_the_first_node_is_no_duration(groups: dict[str, Group]) -> None:
    # The worker's clock ahead of the pod's: the start is kept, the negative duration is not.
    manifest = groups["future"].manifest
    assert manifest["task_start_at"] == groups["future"].told
    assert "pod_start_seconds" not in manifest
    assert "after the first node" in groups["future"].output()
