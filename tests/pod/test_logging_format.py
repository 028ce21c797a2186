"""Issue 22 item 6, plain logs in pods: one line per record (no Rich wrapping, no box-drawn
tracebacks), JSON lines in Cloud Logging's shape in structured mode, and only where the project
has no logging config of its own. The last class runs a pod's `kedro run` of the example with
the config, as the image and replay do."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.pod.context import MLFLOW_BUDGET_ENV, STRUCTURED_LOGS_ENV
from kedro_gcs_bridge.pod.logging_format import (
    ALLOWLIST_ENV,
    CONFIG_FILE,
    LOGGING_CONFIG_ENV,
    PodFormatter,
    _print_uncaught,
    install,
    logging_env,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "spaceflights"
KEDRO = Path(sys.executable).parent / "kedro"
POD_ARGS = ["run", "--runner", "kedro_gcs_bridge.GCSRunner", "--pipelines", "__default__"]
POD_ARGS += ["--env", "pod", "--nodes", "preprocess_companies_node"]
#: A plain record: time, logger, level, message (Kedro's plain format); nothing else starts a
#: line.
PLAIN_RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - \S+ - (DEBUG|INFO|WARNING|ERROR|CRITICAL) - "
)
LABELS = {
    "KEDRO_GCS_BRIDGE_DAG_ID": "spaceflights__default__pod",
    "KEDRO_GCS_BRIDGE_TASK": "companies",
    "KEDRO_GCS_BRIDGE_RUN_ID": "manual__2026-12-07T06:00:00+00:00",
}


def record(message: str, error: bool = False) -> logging.LogRecord:
    exc_info = None
    if error:
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("kedro.runner", logging.ERROR, __file__, 1, message, (), exc_info)


@pytest.fixture
def no_hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The formatter turns on warning capture and an exception hook: undone after the test."""
    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    yield
    logging.captureWarnings(False)


@pytest.mark.usefixtures("no_hooks")
class TestPodFormatter:
    def test_plain_is_one_line_per_record_traceback_included(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(STRUCTURED_LOGS_ENV, raising=False)
        text = PodFormatter().format(record("two\nlines", error=True))
        assert "\n" not in text
        assert PLAIN_RECORD.match(text)
        assert "two\\nlines\\nTraceback (most recent call last):" in text
        assert text.endswith("ValueError: bad\\nvalue")

    def test_structured_is_one_json_object_cloud_logging_parses(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(STRUCTURED_LOGS_ENV, "true")
        for name, value in LABELS.items():
            monkeypatch.setenv(name, value)
        text = PodFormatter().format(record("two\nlines", error=True))
        assert "\n" not in text
        entry = json.loads(text)
        assert entry["severity"] == "ERROR"
        assert entry["message"].startswith("two\nlines\nTraceback (most recent call last):")
        assert entry["logging.googleapis.com/labels"] == {
            "dag_id": "spaceflights__default__pod",
            "task": "companies",
            "run_id": "manual__2026-12-07T06:00:00+00:00",
        }
        assert entry["time"].endswith("+00:00") and entry["logger"] == "kedro.runner"

    def test_labels_not_set_are_left_out(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(STRUCTURED_LOGS_ENV, "yes")
        for name in LABELS:
            monkeypatch.delenv(name, raising=False)
        entry = json.loads(PodFormatter().format(record("x")))
        assert entry["logging.googleapis.com/labels"] == {}

    def test_another_bad_variable_is_left_to_the_runner(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Logging is set up before Kedro runs: a bad value of a variable the formatter does
        not read fails later, in the runner, with its own error, not in logging's setup."""
        monkeypatch.setenv(STRUCTURED_LOGS_ENV, "true")
        monkeypatch.setenv(MLFLOW_BUDGET_ENV, "soon")
        entry = json.loads(PodFormatter().format(record("x")))
        assert entry["message"] == "x"

    def test_a_bad_switch_names_the_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(STRUCTURED_LOGS_ENV, "json")
        with pytest.raises(ConfigError, match=STRUCTURED_LOGS_ENV):
            PodFormatter()


def test_plain_the_uncaught_error_is_pythons_traceback_with_short_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What replay reads a failure's cause and final error from, named as Rich named them."""
    try:
        try:
            raise FileNotFoundError("companies.csv")
        except FileNotFoundError as exc:
            raise ConfigError("companies: failed") from exc
    except ConfigError:
        kind, error, trace = sys.exc_info()
    _print_uncaught(kind, error, trace)
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):\n")
    assert "\nFileNotFoundError: companies.csv\n" in err
    assert err.endswith("\nConfigError: companies: failed\n")
    assert "kedro_gcs_bridge.errors" not in err


class TestOnlyWhereTheProjectHasNone:
    def test_replay_gets_the_config_and_the_allowlist(self, tmp_path: Path) -> None:
        env = logging_env(tmp_path, {ALLOWLIST_ENV: "my_package.logs"})
        assert env == {
            LOGGING_CONFIG_ENV: str(CONFIG_FILE),
            ALLOWLIST_ENV: "my_package.logs,kedro_gcs_bridge.pod.logging_format",
        }

    def test_the_projects_own_config_wins(self, tmp_path: Path) -> None:
        assert logging_env(tmp_path, {LOGGING_CONFIG_ENV: "mine.yml"}) == {}
        (tmp_path / "conf").mkdir()
        (tmp_path / "conf" / "logging.yml").write_text("version: 1\n")
        assert logging_env(tmp_path, {}) == {}
        assert not install(tmp_path)
        assert (tmp_path / "conf" / "logging.yml").read_text() == "version: 1\n"

    def test_the_image_recipe_writes_it_into_a_project_without_one(self, tmp_path: Path) -> None:
        assert install(tmp_path)
        assert (tmp_path / "conf" / "logging.yml").read_bytes() == CONFIG_FILE.read_bytes()


def _pod_run(project: Path, runs: Path, name: str, kedro_env: str, extra: dict[str, str]) -> Any:
    env = {
        **os.environ,
        **logging_env(project, {}),
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "KEDRO_GCS_BRIDGE_RUN_PREFIX": (runs / name).as_uri(),
        "KEDRO_GCS_BRIDGE_PIPELINE": "__default__",
        **LABELS,
        **extra,
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [str(KEDRO), *POD_ARGS, "--env", kedro_env],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def pod_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The companies group run as its pod runs it: plain, structured, and structured with a
    missing input (the run fails)."""
    root = tmp_path_factory.mktemp("logs")
    project = root / "spaceflights"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("airflow_dags"))
    inputs = {"pod": EXAMPLE / "data" / "01_raw" / "companies.csv", "broken": root / "missing.csv"}
    for kedro_env, path in inputs.items():
        (project / "conf" / kedro_env).mkdir()
        (project / "conf" / kedro_env / "catalog.yml").write_text(
            f"companies:\n  type: pandas.CSVDataset\n  filepath: {path}\n"
        )
    variants = {
        "plain": ("pod", {}),
        "structured": ("pod", {STRUCTURED_LOGS_ENV: "true"}),
        "failed": ("broken", {STRUCTURED_LOGS_ENV: "true"}),
    }
    with ThreadPoolExecutor(len(variants)) as pool:
        futures = {
            name: pool.submit(_pod_run, project, root / "runs", name, kedro_env, extra)
            for name, (kedro_env, extra) in variants.items()
        }
    return {name: future.result() for name, future in futures.items()}


@pytest.mark.slow
class TestAPodsKedroRun:
    def test_plain_every_line_is_one_record(self, pod_runs: dict[str, Any]) -> None:
        done = pod_runs["plain"]
        assert done.returncode == 0, done.stdout + done.stderr
        lines = (done.stdout + done.stderr).splitlines()
        assert [line for line in lines if not PLAIN_RECORD.match(line)] == []
        # Kedro's own records and a Python warning (OmegaConf's, two lines of text) are there.
        assert any(
            "kedro_gcs_bridge.pod.runner - INFO - GCSRunner: task companies" in line
            for line in lines
        )
        assert any(" - py.warnings - WARNING - " in line and "\\n" in line for line in lines)

    def test_structured_every_line_is_a_cloud_logging_entry(self, pod_runs: dict[str, Any]) -> None:
        done = pod_runs["structured"]
        assert done.returncode == 0, done.stdout + done.stderr
        entries = [json.loads(line) for line in (done.stdout + done.stderr).splitlines()]
        assert {entry["severity"] for entry in entries} >= {"INFO", "WARNING"}
        for entry in entries:
            assert entry["logging.googleapis.com/labels"] == {
                "dag_id": LABELS["KEDRO_GCS_BRIDGE_DAG_ID"],
                "task": "companies",
                "run_id": LABELS["KEDRO_GCS_BRIDGE_RUN_ID"],
            }

    def test_structured_a_failed_run_ends_with_one_entry_for_its_error(
        self, pod_runs: dict[str, Any]
    ) -> None:
        done = pod_runs["failed"]
        assert done.returncode == 1
        entries = [json.loads(line) for line in (done.stdout + done.stderr).splitlines()]
        last = entries[-1]
        assert last["severity"] == "CRITICAL"
        assert last["message"].startswith("DatasetError: ")
        assert "Traceback (most recent call last):" in last["message"]
