"""The tracking budget: all of a pod's tracking calls together stay within
`mlflow.budget_seconds` (`KEDRO_GCS_BRIDGE_MLFLOW_BUDGET`), whatever MLflow's own retry and
timeout variables say. On expiry tracking is off for the rest of the pod after one warning and
the data path goes on; with `mlflow.required` the pod fails before its nodes run.

Bounded by counts, never by the clock: a dead server on loopback counts the connections a real
`kedro run` makes to it, and the warning names the budget in effect.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from _dead_tracking import closed_port, dead_server

from kedro_gcs_bridge.errors import ConfigError, TrackingError
from kedro_gcs_bridge.pod.context import MLFLOW_BUDGET_ENV, TaskContext
from kedro_gcs_bridge.pod.group_run import UNAVAILABLE, tracking_budget
from kedro_gcs_bridge.tracking.budget import Budget

#: What users copy into Composer's environment: MLflow's own defaults, minutes per call.
MLFLOW_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "7", "MLFLOW_HTTP_REQUEST_TIMEOUT": "120"}
BUDGET = "2"
#: Not a bound under test: only ends a pod that would otherwise hang the suite for minutes.
GUARD_SECONDS = 240

PACKAGE = "budgetproj"
PYPROJECT = f"""\
[project]
name = "{PACKAGE}"
version = "0.1.0"

[tool.kedro]
package_name = "{PACKAGE}"
project_name = "{PACKAGE}"
kedro_init_version = "1.7.0"
source_dir = "src"
"""
REGISTRY = """\
from pathlib import Path

from kedro.pipeline import Node, Pipeline


def make() -> dict:
    return {"rows": 3}


def write(value: dict) -> None:
    Path("out.txt").write_text(str(value["rows"]))


def register_pipelines() -> dict[str, Pipeline]:
    return {"__default__": Pipeline([
        Node(make, None, "value", name="make"),
        Node(write, "value", None, name="write"),
    ])}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("budget") / PACKAGE
    source = root / "src" / PACKAGE
    source.mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (source / "__init__.py").write_text("")
    (source / "settings.py").write_text('DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow",)\n')
    (source / "pipeline_registry.py").write_text(REGISTRY)
    for folder in ("base", "local"):
        (root / "conf" / folder).mkdir(parents=True)
    (root / "conf" / "base" / "catalog.yml").write_text("{}\n")
    return root


def kedro_run(project: Path, uri: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A pod's `kedro run` through GCSRunner, tracking into `uri` with MLflow's defaults set."""
    (project / "out.txt").unlink(missing_ok=True)
    environment = {
        **os.environ,
        **MLFLOW_DEFAULTS,
        "MLFLOW_TRACKING_URI": uri,
        "KEDRO_GCS_BRIDGE_RUN_PREFIX": (project / "runs" / os.urandom(4).hex()).as_uri(),
        MLFLOW_BUDGET_ENV: BUDGET,
        "COLUMNS": "400",
        **env,
    }
    command = [sys.executable, "-m", "kedro", "run", "--runner", "kedro_gcs_bridge.GCSRunner"]
    try:
        return subprocess.run(
            command,
            cwd=project,
            env=environment,
            capture_output=True,
            text=True,
            timeout=GUARD_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the pod never ended: tracking against a dead server is not bounded")


def warnings_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if UNAVAILABLE in line]


def test_a_hung_server_gets_one_connection_and_the_pod_goes_on(project: Path) -> None:
    with dead_server("hung") as server:
        result = kedro_run(project, server.url)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (project / "out.txt").read_text() == "3"  # the data path went on
    # The first call waited out the whole budget; tracking was off for the rest of the pod
    # (no call at the end to log the group's figures or end its run).
    assert server.connections == 1
    (warning,) = warnings_of(result)
    assert server.url in warning and f"tracking budget of {BUDGET} s" in warning


def test_a_refusing_server_gets_a_bounded_number_of_attempts(project: Path) -> None:
    with dead_server("refusing") as server:
        result = kedro_run(project, server.url)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (project / "out.txt").read_text() == "3"
    assert 1 <= server.connections <= 2  # one call, retried once; then tracking is off
    (warning,) = warnings_of(result)
    assert server.url in warning


def test_a_closed_port_costs_one_warning(project: Path) -> None:
    uri = closed_port()
    result = kedro_run(project, uri)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (project / "out.txt").read_text() == "3"
    (warning,) = warnings_of(result)
    assert uri in warning


def test_required_tracking_fails_before_any_node_within_the_budget(project: Path) -> None:
    with dead_server("hung") as server:
        result = kedro_run(project, server.url, KEDRO_GCS_BRIDGE_MLFLOW_REQUIRED="true")
    assert result.returncode != 0
    assert not (project / "out.txt").exists()
    assert server.connections == 1
    error = " ".join(result.stderr.rsplit("╯", 1)[-1].split())
    assert error.startswith("TrackingError: MLflow tracking server"), error
    assert f"tracking budget of {BUDGET} s" in error and "mlflow.required: false" in error


def test_once_expired_the_budget_makes_no_more_calls() -> None:
    release = threading.Event()
    calls: list[str] = []

    def hang() -> None:
        calls.append("hang")
        release.wait(30)

    budget = Budget(0.2)
    try:
        with pytest.raises(TrackingError, match=r"tracking budget of 0\.2 s"):
            budget.call(hang)
        assert budget.expired
        with pytest.raises(TrackingError, match="tracking budget"):
            budget.call(lambda: calls.append("after"))
    finally:
        release.set()
    assert calls == ["hang"]


def test_calls_that_answer_keep_the_budget_open() -> None:
    budget = Budget(30)
    assert [budget.call(lambda i=i: i) for i in range(50)] == list(range(50))
    assert not budget.expired


def test_an_error_inside_the_budget_is_the_call_s_own() -> None:
    def fail() -> None:
        raise ValueError("the server said no")

    with pytest.raises(ValueError, match="the server said no"):
        Budget(30).call(fail)


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf"])
def test_a_bad_budget_is_a_config_error_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match=MLFLOW_BUDGET_ENV):
        tracking_budget(TaskContext.from_env({MLFLOW_BUDGET_ENV: value}))


def test_the_budget_defaults_to_30_seconds() -> None:
    assert tracking_budget(TaskContext.from_env({})).seconds == 30.0
    assert tracking_budget(TaskContext.from_env({MLFLOW_BUDGET_ENV: " 2.5 "})).seconds == 2.5
