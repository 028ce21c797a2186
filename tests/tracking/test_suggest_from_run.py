"""`kedro gcs-bridge suggest` reads what a run measured and finds a run by its MLflow parent run.

The session's tracked replay of the example's DAG (tests/_tracked_replay.py, shared with
tests/tracking/test_tracking.py), tracked by a real `mlflow server` on 127.0.0.1 and with a pod
start delay, leaves manifests with `pod_start_seconds` and a parent run tagged with its run
prefix. `suggest --from mlflow:<run id>` (or a bare run id) reads that run; the measured median
pod start is the model's default.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from _fault_proxy import fault_proxy
from _processes import run
from _tracked_replay import POD_START_DELAY, TrackedReplay
from mlflow import MlflowClient

from kedro_gcs_bridge.planning.suggest import CostModel, mlflow_run_id, pod_start_choice
from kedro_gcs_bridge.pod.protocol import Manifest
from kedro_gcs_bridge.pod.store import HandoffStore
from kedro_gcs_bridge.tracking.library import HTTP_LIMITS
from kedro_gcs_bridge.tracking.tracker import RUN_PREFIX_TAG

BIN = Path(sys.executable).parent
DELAY = POD_START_DELAY
#: The grouped example DAG's tasks, and those on its longest chain (companies or shuttles,
#: split, train, evaluate).
TASKS, CHAIN = 5, 4


@dataclass(frozen=True)
class TrackedRun:
    project: Path
    env: dict[str, str]
    prefix: str
    parent_id: str
    child_id: str
    makespan: float  # what the replay measured
    manifests: list[Manifest]  # as the replay left them


def _kedro(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "kedro"), *args], project, env)


@pytest.fixture(scope="module")
def tracked(tracked_replay: TrackedReplay, mlflow_server: str) -> TrackedRun:
    replayed = tracked_replay
    makespan = re.search(r"makespan: ([\d.]+) s", replayed.result.stdout)
    assert makespan, replayed.result.stdout[-3000:]
    client = MlflowClient(mlflow_server)
    found = client.get_experiment_by_name(replayed.experiment)
    assert found is not None
    every = client.search_runs([found.experiment_id])
    roles = {r.data.tags["kedro_gcs_bridge.role"]: r.info.run_id for r in every}
    manifests = HandoffStore(replayed.prefix, task="inspect").manifests()
    env = {**replayed.env, "MLFLOW_TRACKING_URI": ""}  # suggest is told the URI by each test
    return TrackedRun(
        replayed.project,
        env,
        replayed.prefix,
        roles["parent"],
        roles["child"],
        float(makespan.group(1)),
        manifests,
    )


def _measured_now(tracked: TrackedRun) -> list[dict[str, Any]]:
    """The manifests as suggest reads them now (test_tracking.py reruns one task)."""
    return HandoffStore(tracked.prefix, task="inspect").manifests()


def suggest(
    tracked: TrackedRun, source: str, *extra: str, uri: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {**tracked.env, "MLFLOW_TRACKING_URI": uri}
    args = ("gcs-bridge", "suggest", "--from", source, "--round-trip-ms", "0", *extra)
    return _kedro(tracked.project, env, *args)


def as_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout[result.stdout.index("{") :])


def said(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join((result.stdout + result.stderr).split())


@pytest.mark.slow
class TestMeasuredPodStart:
    def test_every_replayed_task_measured_its_pod_start(self, tracked: TrackedRun) -> None:
        assert len(tracked.manifests) == TASKS
        for manifest in tracked.manifests:
            # The replay's start is before its pod start delay.
            assert manifest.pod_start_seconds is not None, manifest.task
            assert manifest.pod_start_seconds >= DELAY, manifest.task

    def test_the_measured_median_is_the_default_and_models_the_replay(
        self, tracked: TrackedRun
    ) -> None:
        result = suggest(tracked, tracked.prefix, "--format", "json")
        model = as_json(result)["model"]
        median = statistics.median(m.pod_start_seconds or 0.0 for m in _measured_now(tracked))
        assert model["pod_start_s"] == pytest.approx(median)
        # The measured pod start runs to the first node, but replay started each task warm
        # (forked with Kedro imported): the model adds a pod's cold `kedro run` start.
        assert all(m.warm_start for m in _measured_now(tracked))
        assert model["kedro_start_s"] == CostModel().kedro_start_s
        assert (
            f"pod start: {median:.1f} s (measured: median task start -> first node of {TASKS} "
            in said(result)
        )
        assert "started warm by replay" in said(result)
        # Bounded by configuration, not by the replay's clock: each task of the longest chain
        # waited the pod start delay, in the replay and in the model.
        estimate = as_json(result)["current"]["makespan_s"]
        assert min(tracked.makespan, estimate) >= CHAIN * DELAY

    def test_an_explicit_pod_start_wins(self, tracked: TrackedRun) -> None:
        result = suggest(tracked, tracked.prefix, "--pod-start", "12.5")
        assert result.returncode == 0, result.stderr[-3000:]
        assert "pod start: 12.5 s (--pod-start)" in result.stdout
        model = as_json(suggest(tracked, tracked.prefix, "--pod-start", "7", "--format", "json"))
        assert (model["model"]["pod_start_s"], model["model"]["kedro_start_s"]) == (7.0, 5.0)


@pytest.mark.slow
class TestFromMlflowRun:
    def test_the_parent_run_records_the_run_prefix(
        self, tracked: TrackedRun, mlflow_server: str
    ) -> None:
        parent = MlflowClient(mlflow_server).get_run(tracked.parent_id)
        assert parent.data.tags[RUN_PREFIX_TAG] == tracked.prefix

    def test_a_run_id_reads_the_same_run_as_its_prefix(
        self, tracked: TrackedRun, mlflow_server: str
    ) -> None:
        by_url = as_json(suggest(tracked, tracked.prefix, "--format", "json"))
        by_id = suggest(
            tracked, f"mlflow:{tracked.parent_id}", "--format", "json", uri=mlflow_server
        )
        assert as_json(by_id) == by_url
        assert f"run prefix of MLflow run {tracked.parent_id}: {tracked.prefix}" in by_id.stderr
        # A bare id, the URI from the option; a group's child run leads to its parent.
        for run_id in (tracked.parent_id, tracked.child_id):
            bare = suggest(tracked, run_id, "--mlflow-tracking-uri", mlflow_server)
            assert bare.returncode == 0, bare.stderr[-3000:]
            assert f"{TASKS} task manifest(s) read from {tracked.prefix}" in bare.stdout

    def test_a_missing_run_is_named(self, tracked: TrackedRun, mlflow_server: str) -> None:
        missing = uuid.uuid4().hex
        result = suggest(tracked, f"mlflow:{missing}", uri=mlflow_server)
        assert result.returncode == 1
        assert f"MLflow run {missing} does not exist at {mlflow_server}" in said(result)
        assert "or the run prefix URL" in said(result)

    def test_a_run_without_a_prefix_tag_is_named(
        self, tracked: TrackedRun, mlflow_server: str
    ) -> None:
        client = MlflowClient(mlflow_server)
        other = client.create_run(client.create_experiment(f"other-{uuid.uuid4().hex[:6]}"))
        result = suggest(tracked, f"mlflow:{other.info.run_id}", uri=mlflow_server)
        assert result.returncode == 1
        assert f"MLflow run {other.info.run_id} at {mlflow_server} records no run prefix" in (
            said(result)
        )
        assert f"(tag {RUN_PREFIX_TAG})" in said(result)

    def test_no_tracking_uri_says_where_to_set_one(self, tracked: TrackedRun) -> None:
        result = suggest(tracked, f"mlflow:{tracked.parent_id}")
        assert result.returncode == 1
        text = said(result)
        assert f"names MLflow run {tracked.parent_id}, but no tracking URI is set" in text
        assert "--mlflow-tracking-uri, set MLFLOW_TRACKING_URI or `mlflow_tracking_uri`" in text

    def test_a_dead_server_is_asked_within_the_bridge_retry_bound(
        self, tracked: TrackedRun, mlflow_server: str
    ) -> None:
        """A server that drops every connection is asked at most once plus the retries the
        bridge sets (`HTTP_LIMITS`), not MLflow's own 7 retries with backoff (minutes)."""
        with fault_proxy(mlflow_server, lambda method, path: "drop", max_requests=100) as proxy:
            result = suggest(tracked, f"mlflow:{tracked.parent_id}", uri=proxy.url)
        assert result.returncode == 1
        assert f"MLflow at {proxy.url}" in said(result) and tracked.parent_id in said(result)
        attempts = proxy.counts["drop"]
        assert 1 <= attempts <= 1 + int(HTTP_LIMITS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]), attempts


@pytest.mark.parametrize(
    ("source", "run_id"),
    [
        ("mlflow:0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"),
        ("0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"),
        ("mlflow:custom-id", "custom-id"),
        ("gs://bucket/root/dag/0123456789abcdef0123456789abcdef", None),
        ("file:///tmp/runs/dag/manual__1", None),
        ("0123456789ABCDEF0123456789ABCDEF", None),  # MLflow ids are lower case
    ],
)
def test_what_from_names(source: str, run_id: str | None) -> None:
    assert mlflow_run_id(source) == run_id


@pytest.mark.parametrize(
    ("given", "kedro", "manifests", "chosen"),
    [
        (None, None, [4.0, 9.0, None], (6.5, 0.0)),
        (None, 2.0, [4.0], (4.0, 2.0)),
        (30.0, None, [4.0], (30.0, None)),
        # Nothing measured (older manifests, a negative value): the model's defaults. Values
        # of another type never get here: `Manifest.from_json` refuses them.
        (None, None, [None, -1.0], (None, None)),
    ],
)
def test_pod_start_choice(
    given: float | None,
    kedro: float | None,
    manifests: list[float | None],
    chosen: tuple[float | None, float | None],
) -> None:
    measured = [SimpleNamespace(pod_start_seconds=seconds) for seconds in manifests]
    pod_start, kedro_start, source = pod_start_choice(given, kedro, measured)  # type: ignore[arg-type]
    assert (pod_start, kedro_start) == chosen
    assert source.startswith(
        "--pod-start" if given else "measured" if pod_start is not None else "the model's default"
    )


def test_a_pod_start_measured_with_more_tasks_than_cores_is_not_trusted() -> None:
    """Issue 29: a replay running more tasks at once than the machine has cores measures its
    pod starts under CPU contention; the model takes those only when nothing else measured,
    and never silently."""
    contended = SimpleNamespace(pod_start_seconds=9.0, replay_parallel=4, cpus=2)
    pod_start, kedro_start, source = pod_start_choice(None, None, [contended, contended])  # type: ignore[list-item]
    assert (pod_start, kedro_start) == (None, None)
    assert source.startswith("the model's default")
    assert "replay --parallel 4 on 2 CPU(s)" in source and "--pod-start" in source
    calm = SimpleNamespace(pod_start_seconds=3.0, replay_parallel=2, cpus=2)
    on_gke = SimpleNamespace(pod_start_seconds=5.0)  # a pod records no replay_parallel
    pod_start, _, source = pod_start_choice(None, None, [contended, calm, on_gke])  # type: ignore[list-item]
    assert pod_start == 4.0 and "of 2 task(s)" in source
    assert "1 measured by replay --parallel 4 on 2 CPU(s) left out" in source


def test_a_pod_start_measured_warm_gets_the_models_cold_kedro_start() -> None:
    """A task replay forked from its warm server measured a pod start without `kedro run`'s
    cold start, which a pod pays: the model adds its own kedro start (5 s, or --kedro-start)."""
    warm = SimpleNamespace(pod_start_seconds=1.5, replay_parallel=2, cpus=2, warm_start=True)
    pod_start, kedro_start, source = pod_start_choice(None, None, [warm, warm])  # type: ignore[list-item]
    assert (pod_start, kedro_start) == (1.5, None)  # None: the model's default kedro start
    assert "started warm by replay" in source
    assert pod_start_choice(None, 3.0, [warm])[:2] == (1.5, 3.0)  # type: ignore[list-item]
    cold = SimpleNamespace(pod_start_seconds=6.0, replay_parallel=2, cpus=2)
    assert pod_start_choice(None, None, [cold])[:2] == (6.0, 0.0)  # type: ignore[list-item]


def test_the_manifest_keeps_how_a_replay_ran() -> None:
    manifest = Manifest("t", ("n",), 1, {}, replay_parallel=4, cpus=2, warm_start=True)
    again = Manifest.from_json(json.loads(manifest.to_bytes()), "here")
    assert (again.replay_parallel, again.cpus, again.warm_start) == (4, 2, True)
    assert "replay_parallel" not in Manifest("t", ("n",), 1, {}).to_json()
    assert "warm_start" not in Manifest("t", ("n",), 1, {}).to_json()
