"""The local variant of the example's DAG under a real Airflow 3 deployment (issue 22, item 3).

One module-scoped deployment (tests/_airflow_server.py: api-server, scheduler and
dag-processor, LocalExecutor, SQLite) serves two DAGs that `kedro gcs-bridge deploy` put into
its DAGs folder: the example's `pod_backend: local` DAG, and the same DAG of Kedro env
`broken`, whose `companies` input does not exist (so its group fails). Runs start as a user
starts them, with `kedro gcs-bridge trigger --wait`; a task is cleared through the REST API.
Where one DAG run in-process is enough, tests/ops/test_finalize.py keeps `airflow dags test`.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _airflow_server import (
    USER,
    AirflowNotReadyError,
    AirflowServer,
    airflow_server,
    stop_groups,
    wait_ready,
)
from _fault_proxy import Policy, fault_proxy
from conftest import KEDRO, TEMPLATE, Edit, Job, kedro_env, make_project

from kedro_gcs_bridge.errors import AirflowUnavailableError
from kedro_gcs_bridge.ops.deploy import MARKER
from kedro_gcs_bridge.ops.emulator import free_port
from kedro_gcs_bridge.ops.finalize import OUTCOME_OBJECT
from kedro_gcs_bridge.ops.trigger import AirflowApi, task_instances, watch
from kedro_gcs_bridge.planning.plan import FINALIZE_TASK, RUN_FAILED_TASK

pytestmark = [pytest.mark.slow, pytest.mark.airflow_real]

DAG_ID = "spaceflights__default__local_local"
BROKEN_DAG_ID = "spaceflights__default__broken_local"
#: The example's two pipelines as DAGs of their own: data_science waits on the asset of
#: `model_input_table`, which data_processing's `split` task saves (issue 24).
PRODUCER_DAG_ID = "spaceflights__data_processing__local_local"
CONSUMER_DAG_ID = "spaceflights__data_science__local_local"
TASKS = ("companies", "shuttles", "split", "train_model_node", "evaluate_model_node")
TOKEN_ENV = "KEDRO_GCS_BRIDGE_TEST_TOKEN"
PASSWORD_ENV = "KEDRO_GCS_BRIDGE_TEST_PASSWORD"
#: Env `broken`: the raw companies table is missing, so group `companies` fails.
BROKEN_CATALOG = Edit(
    "conf/broken/catalog.yml",
    "companies:\n  type: pandas.CSVDataset\n  filepath: data/01_raw/no_such_companies.csv\n",
    overwrite=True,
)


@dataclass
class Deployment:
    server: AirflowServer
    project: Path
    plain: Path  # a copy of the example after a plain `kedro run`


def _kedro(project: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(KEDRO), *args],
        cwd=project,
        env={**kedro_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"kedro {args} exited {done.returncode}\n{done.stderr[-4000:]}"
    return done.stdout


def _prepare(project: Path, plain: Path, dags: Path) -> None:
    """Both DAGs, deployed into Airflow's DAGs folder; a plain `kedro run` of the example."""
    create = ("airflow", "create", "-j", str(TEMPLATE), "-t", "dags", "--params")
    # retries=0: a failed group is not retried after the 5-minute retry delay.
    _kedro(project, *create, "pod_backend=local,retries=0")
    _kedro(project, *create, "pod_backend=local,retries=0,cleanup=on_success", "-e", "broken")
    _kedro(project, *create, "pod_backend=local,retries=0", "-p", "data_processing")
    # local_handoff off: the versioned regressor is written where the catalog says, an outlet.
    consumer = "pod_backend=local,retries=0,dag.schedule_on_inputs=all,handoff.local_handoff=false"
    _kedro(project, *create, consumer, "-p", "data_science")
    _kedro(project, "gcs-bridge", "deploy", "--from", "dags", "--dags-folder", str(dags))
    _kedro(plain, "run")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The deployment serving both DAGs (prepared while Airflow starts)."""
    root = tmp_path_factory.mktemp("airflow_real")
    project = make_project(root, "spaceflights", Job((), edits=(BROKEN_CATALOG,)))
    plain = make_project(root, "plain", Job(()))
    dags = root / "airflow_dags"
    dags.mkdir()
    with ThreadPoolExecutor(max_workers=1) as pool:
        prepared = pool.submit(_prepare, project, plain, dags)
        with airflow_server(root / "airflow_home", dags) as server:
            prepared.result()
            dag_ids = (DAG_ID, BROKEN_DAG_ID, PRODUCER_DAG_ID, CONSUMER_DAG_ID)
            wait_ready(server, dag_ids, polls=300, interval=1.0)
            yield Deployment(server, project, plain)


def _trigger(
    deployment: Deployment, *args: str, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`kedro gcs-bridge trigger` against the deployment (or `url` in front of it), as a user
    runs it."""
    server = deployment.server
    env = {**kedro_env(), TOKEN_ENV: server.token(), PASSWORD_ENV: server.password}
    return subprocess.run(
        [str(KEDRO), "gcs-bridge", "trigger", *args, "--api-url", url or server.url],
        cwd=deployment.project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def _run_id(stdout: str, dag_id: str) -> str:
    (line,) = [line for line in stdout.splitlines() if line.startswith("started run ")]
    run_id, _, dag = line.removeprefix("started run ").rpartition(" of ")
    assert dag == dag_id, line
    return run_id


@pytest.fixture(scope="module")
def good_run(deployment: Deployment) -> tuple[str, subprocess.CompletedProcess[str]]:
    """One run of the local DAG, started and followed with `trigger --wait`."""
    done = _trigger(deployment, DAG_ID, "--wait", "--token-env", TOKEN_ENV, "--poll-seconds", "2")
    return _run_id(done.stdout, DAG_ID), done


def _prefix(project: Path, dag_id: str, run_id: str) -> Path:
    return project / ".gcs-bridge-runs" / dag_id / urllib.parse.quote(run_id, safe="")


def _manifests(prefix: Path) -> dict[str, bytes]:
    return {path.stem: path.read_bytes() for path in sorted((prefix / "manifests").iterdir())}


def _api(deployment: Deployment) -> AirflowApi:
    return AirflowApi(deployment.server.url, deployment.server.token())


def _task_log(deployment: Deployment, dag_id: str, run_id: str, task: str, attempt: int) -> str:
    folder = deployment.server.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    path = folder / f"task_id={task}" / f"attempt={attempt}.log"
    return " ".join(json.loads(line).get("event", "") for line in path.read_text().splitlines())


def test_the_deployed_files_are_marked(deployment: Deployment) -> None:
    files = sorted((deployment.server.home.parent / "airflow_dags").iterdir())
    assert [path.name for path in files] == [
        "spaceflights_broken_local_dag.py",
        "spaceflights_data_processing_local_dag.py",
        "spaceflights_data_science_local_dag.py",
        "spaceflights_local_dag.py",
    ]
    assert all(path.read_text().startswith(MARKER) for path in files)


def test_a_triggered_run_succeeds_with_the_outputs_of_a_plain_kedro_run(
    deployment: Deployment, good_run: tuple[str, subprocess.CompletedProcess[str]]
) -> None:
    run_id, done = good_run
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert f"run {run_id} of {DAG_ID}: success" in done.stdout
    for task in TASKS:  # each task's states, as they changed, ending in success
        assert f" {task}: success" in done.stdout, done.stdout
    assert " companies: running" in done.stdout or " companies: queued" in done.stdout
    states = {ti["task_id"]: ti["state"] for ti in task_instances(_api(deployment), DAG_ID, run_id)}
    assert states == dict.fromkeys(TASKS, "success")
    made, plain = deployment.project / "data", deployment.plain / "data"
    metrics = "08_reporting/metrics.json"
    assert json.loads((made / metrics).read_text()) == json.loads((plain / metrics).read_text())
    # The regressor crosses tasks: the DAG run's is the object train_model_node committed.
    manifest = json.loads(
        _manifests(_prefix(deployment.project, DAG_ID, run_id))["train_model_node"]
    )
    record = manifest["datasets"]["regressor"]
    assert record["format"] == "catalog", record
    (expected,) = (plain / "06_models/regressor.pickle").glob("*/regressor.pickle")
    assert Path(record["path"]).read_bytes() == expected.read_bytes()


def test_a_cleared_task_reruns_from_the_same_run_prefix(
    deployment: Deployment, good_run: tuple[str, subprocess.CompletedProcess[str]]
) -> None:
    run_id, done = good_run
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    prefix = _prefix(deployment.project, DAG_ID, run_id)
    before = _manifests(prefix)
    assert json.loads(before["evaluate_model_node"])["attempt"] == 1
    api = _api(deployment)
    body = {
        "dry_run": False,
        "task_ids": ["evaluate_model_node"],
        "dag_run_id": run_id,
        "only_failed": False,
        "reset_dag_runs": True,
    }
    cleared = api.call("POST", f"/api/v2/dags/{DAG_ID}/clearTaskInstances", body)
    assert [ti["task_id"] for ti in cleared["task_instances"]] == ["evaluate_model_node"]
    shown: list[tuple[str, str]] = []
    state = watch(api, DAG_ID, run_id, lambda *change: shown.append(change), 2, 300)
    assert state == "success"
    tries = {ti["task_id"]: ti["try_number"] for ti in task_instances(api, DAG_ID, run_id)}
    assert tries == {**dict.fromkeys(TASKS, 1), "evaluate_model_node": 2}
    after = _manifests(prefix)
    # Only the cleared task committed again; its upstream's commits are the first run's.
    assert {k: v for k, v in after.items() if k != "evaluate_model_node"} == {
        k: v for k, v in before.items() if k != "evaluate_model_node"
    }
    rerun = json.loads(after["evaluate_model_node"])
    assert rerun["attempt"] == 2
    assert set(rerun["loaded_bytes"]) == {"X_test", "y_test", "regressor", "training_metrics"}
    assert [path.name for path in prefix.parent.iterdir()] == [prefix.name]  # one run prefix
    log = _task_log(deployment, DAG_ID, run_id, "evaluate_model_node", 2)
    assert "Loading data from regressor (HandoffDataset)" in log


def _flaky_polls() -> Policy:
    """Of the GETs of a run and its tasks (what `--wait` polls), every 3rd answers 503 and
    every 5th is dropped: at most three polls in a row fail (a poll makes two GETs, or one
    when its first fails; the pattern repeats every 15 GETs)."""
    count = itertools.count(1)

    def decide(method: str, path: str) -> str:
        if method != "GET" or "/dagRuns/" not in path:
            return "pass"
        n = next(count)
        return "503" if n % 3 == 0 else "drop" if n % 5 == 0 else "pass"

    return decide


def test_a_failed_group_fails_the_run_and_finalize_reports_it(deployment: Deployment) -> None:
    """Followed through a proxy that fails some of `--wait`'s polls, as a busy web server
    does: each is said and asked again."""
    with fault_proxy(deployment.server.url, _flaky_polls(), max_seconds=600) as proxy:
        done = _trigger(
            deployment,
            BROKEN_DAG_ID,
            "--wait",
            "--username",
            USER,
            "--password-env",
            PASSWORD_ENV,
            "--poll-seconds",
            "2",
            url=proxy.url,
        )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr[-3000:]
    assert proxy.counts["503"] and proxy.counts["drop"], proxy.counts
    assert ": HTTP 503 " in done.stderr and "no answer" in done.stderr, done.stderr[-3000:]
    assert "asking again (1 of 5)" in done.stderr and "(4 of 5)" not in done.stderr
    run_id = _run_id(out, BROKEN_DAG_ID)
    assert f"run {run_id} of {BROKEN_DAG_ID}: failed" in out
    assert " companies: failed" in out and f" {RUN_FAILED_TASK}: failed" in out
    states = {
        ti["task_id"]: ti["state"] for ti in task_instances(_api(deployment), BROKEN_DAG_ID, run_id)
    }
    assert states["companies"] == "failed"
    assert states["shuttles"] == "success"
    assert states["split"] == states["evaluate_model_node"] == "upstream_failed"
    assert (states[FINALIZE_TASK], states[RUN_FAILED_TASK]) == ("success", "failed")
    log = _task_log(deployment, BROKEN_DAG_ID, run_id, FINALIZE_TASK, 1)
    assert "groups that did not finish: companies" in log, log[-3000:]
    prefix = _prefix(deployment.project, BROKEN_DAG_ID, run_id)
    outcome = json.loads((prefix / OUTCOME_OBJECT).read_text())
    assert outcome["outcome"] == "failed", outcome  # on_success cleanup kept the failed run
    assert (prefix / "manifests").is_dir()


def _asset_events(api: AirflowApi, dag_id: str, polls: int) -> list[dict[str, Any]]:
    """The asset events `dag_id` made, once one of them created a DAG run (bounded polls)."""
    for _ in range(polls):
        try:
            answer = api.call("GET", f"/api/v2/assets/events?source_dag_id={dag_id}")
        except AirflowUnavailableError:
            # apache/airflow#71360: while the created run is queued its start_date is NULL and
            # the list answers HTTP 500 (for ~20 ms); the next poll reads it.
            answer = {"asset_events": []}
        if any(event["created_dagruns"] for event in answer["asset_events"]):
            return answer["asset_events"]
        time.sleep(2)
    raise AssertionError(f"no asset event of {dag_id} created a DAG run in {polls} polls")


def test_the_producer_dag_run_starts_the_consumer_dag(deployment: Deployment) -> None:
    """Issue 24: data_science's DAG is scheduled on the asset data_processing's DAG updates."""
    done = _trigger(
        deployment, PRODUCER_DAG_ID, "--wait", "--token-env", TOKEN_ENV, "--poll-seconds", "2"
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    api = _api(deployment)
    producer_run = _run_id(done.stdout, PRODUCER_DAG_ID)
    events = {event["name"]: event for event in _asset_events(api, PRODUCER_DAG_ID, 150)}
    table = deployment.project / "data/03_primary/model_input_table.parquet"
    made = events["model_input_table"]
    assert (made["uri"], made["source_task_id"]) == (table.as_uri(), "split")
    assert made["source_run_id"] == producer_run
    (created,) = made["created_dagruns"]
    assert created["dag_id"] == CONSUMER_DAG_ID
    consumer_run = created["run_id"]
    run = api.call(
        "GET", f"/api/v2/dags/{CONSUMER_DAG_ID}/dagRuns/{urllib.parse.quote(consumer_run, safe='')}"
    )
    assert run["run_type"] == "asset_triggered"
    assert watch(api, CONSUMER_DAG_ID, consumer_run, lambda *_: None, 2, 300) == "success"
    # The versioned regressor's event carries the save version its task's Kedro run used.
    query = urllib.parse.urlencode(
        {"source_dag_id": CONSUMER_DAG_ID, "source_run_id": consumer_run}
        | {"source_task_id": "train_model_node"}
    )
    (train,) = api.call("GET", f"/api/v2/assets/events?{query}")["asset_events"]
    assert train["name"] == "regressor"
    version = train["extra"]["kedro_save_version"]
    manifest = _manifests(_prefix(deployment.project, CONSUMER_DAG_ID, consumer_run))
    assert version == json.loads(manifest["train_model_node"])["kedro_run_id"]
    assert (deployment.project / "data/06_models/regressor.pickle" / version).is_dir()


def test_a_deployment_that_does_not_come_up_fails_with_its_logs(tmp_path: Path) -> None:
    """No fixture: the launcher's own bounds (a process that exits, polls that run out)."""
    server = AirflowServer(f"http://127.0.0.1:{free_port()}", tmp_path, {}, "pw")
    server.log_path("scheduler").write_text("the scheduler's last words\n")
    server.processes["scheduler"] = subprocess.Popen(["false"])
    server.processes["scheduler"].wait(timeout=30)
    with pytest.raises(AirflowNotReadyError, match=r"(?s)exited while starting.*last words"):
        wait_ready(server, (), polls=3, interval=0)
    server.log_path("api-server").write_text("still starting\n")
    server.processes = {"api-server": subprocess.Popen(["sleep", "60"], start_new_session=True)}
    try:
        with pytest.raises(AirflowNotReadyError, match=r"(?s)not ready after 3 polls.*starting"):
            wait_ready(server, (DAG_ID,), polls=3, interval=0)
    finally:
        stop_groups(list(server.processes.values()))
    assert server.processes["api-server"].returncode is not None
