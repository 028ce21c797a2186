"""Run prefixes as a whole: finalize (outcome, cleanup), runs list, runs gc."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from kedro_gcs_bridge.errors import GCSBridgeError
from kedro_gcs_bridge.ops.finalize import finish_run
from kedro_gcs_bridge.ops.runs import (
    RunSummary,
    delete_runs,
    list_runs,
    parse_age,
    select_for_gc,
)
from kedro_gcs_bridge.pod.store import HandoffStore

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)


def make_run(root: str, dag: str, run: str, done: list[str], expected: list[str]) -> str:
    prefix = f"{root}/{dag}/{run}"
    for task in done:
        store = HandoffStore(prefix, task=task)
        store.save(f"{task}_out", {"task": task})
        store.write_manifest([f"{task}_node"], "t0", {"dag_tasks": expected})
    return prefix


@pytest.fixture(params=["file", "gs"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return (tmp_path / "root").as_uri()
    request.getfixturevalue("gcs_emulator")
    from _gcs_emulator import BUCKET

    return f"gs://{BUCKET}/gc-{uuid.uuid4().hex[:8]}"


class TestParseAge:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [
            ("7d", 604800),
            ("12h", 43200),
            ("30m", 1800),
            ("2w", 1209600),
            ("90s", 90),
            ("1.5h", 5400),
        ],
    )
    def test_ages(self, text: str, seconds: float) -> None:
        assert parse_age(text).total_seconds() == seconds

    @pytest.mark.parametrize("text", ["7", "d7", "7 days", "-1d", ""])
    def test_bad_age_says_how_to_write_it(self, text: str) -> None:
        with pytest.raises(GCSBridgeError, match="write it like 7d"):
            parse_age(text)


def summary(run: str, outcome: str, hours_ago: float) -> RunSummary:
    return RunSummary(
        "dag",
        run,
        f"file:///r/dag/{run}",
        f"/r/dag/{run}",
        (),
        (),
        outcome,
        10,
        NOW - dt.timedelta(hours=hours_ago),
    )


class TestSelectForGc:
    RUNS = (
        summary("old-ok", "success", 200),
        summary("old-failed", "failed", 200),
        summary("old-incomplete", "incomplete", 200),
        summary("new-ok", "success", 1),
    )

    @pytest.mark.parametrize(
        ("keep_failed", "expected"),
        [(False, ["old-ok", "old-failed", "old-incomplete"]), (True, ["old-ok"])],
    )
    def test_by_age_and_outcome(self, keep_failed: bool, expected: list[str]) -> None:
        chosen = select_for_gc(self.RUNS, dt.timedelta(days=7), keep_failed, NOW)
        assert [run.run for run in chosen] == expected


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


class TestListAndDelete:
    def test_list_newest_first_with_groups_and_bytes(self, root: str) -> None:
        make_run(root, "dag_a", "run1", ["a"], ["a", "b"])
        make_run(root, "dag_b", "run2", ["a", "b"], ["a", "b"])
        found = list_runs(root)
        assert [(r.dag_id, r.run) for r in found] == [("dag_b", "run2"), ("dag_a", "run1")]
        assert found[0].groups_done == ("a", "b") and found[0].outcome == "success"
        assert found[1].groups_done == ("a",) and found[1].outcome == "incomplete"
        assert all(r.size > 0 for r in found)

    def test_delete_removes_whole_prefixes_and_nothing_else(self, root: str) -> None:
        make_run(root, "dag", "old", ["a"], ["a"])
        keep = make_run(root, "dag", "keep", ["a"], ["a"])
        store = HandoffStore(keep, task="x")
        unrelated = f"{store.root.rsplit('/', 2)[0]}/not-a-run"
        store.fs.makedirs(unrelated, exist_ok=True)
        store.fs.pipe_file(f"{unrelated}/notes.txt", b"mine")
        old = [run for run in list_runs(root) if run.run == "old"]
        freed = delete_runs(root, old)
        assert freed == old[0].size
        assert [run.run for run in list_runs(root)] == ["keep"]
        assert store.fs.cat_file(f"{unrelated}/notes.txt") == b"mine"

    def test_refuses_paths_that_are_not_run_prefixes(self, root: str) -> None:
        make_run(root, "dag", "run", ["a"], ["a"])
        run = list_runs(root)[0]
        outside = RunSummary(
            run.dag_id, run.run, run.url, run.path.rsplit("/", 1)[0], (), (), "success", 0, None
        )
        with pytest.raises(GCSBridgeError, match="refusing to delete"):
            delete_runs(root, [outside])
        assert len(list_runs(root)) == 1


def test_runs_cli_lists_and_collects(tmp_path: Path) -> None:
    project = tmp_path / "spaceflights"
    shutil.copytree(REPO / "examples" / "spaceflights", project)
    root = (tmp_path / "root").as_uri()
    make_run(root, "dag", "finished", ["a"], ["a"])
    make_run(root, "dag", "broken", [], ["a"])
    HandoffStore(f"{root}/dag/broken", task="a").save("partial", {"x": 1})
    kedro = str(Path(sys.executable).parent / "kedro")
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "300"}

    def cli(*args: str) -> str:
        result = subprocess.run(
            [kedro, "gcs-bridge", "runs", *args, "--root", root],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    listing = cli("list")
    assert "2 run(s)" in listing and "finished  groups 1/1  success" in listing
    assert "broken  groups 0" in listing and "incomplete" in listing
    dry = cli("gc", "--older-than", "0s", "--keep-failed", "--dry-run")
    assert "would delete" in dry and "/dag/finished" in dry and "/dag/broken" not in dry
    assert "2 run(s)" in cli("list")
    cli("gc", "--older-than", "0s", "--keep-failed")
    assert "1 run(s)" in cli("list") and "broken" in cli("list")
