"""Run prefixes as a whole: runs list, runs gc (finalize: tests/ops/test_finalize.py)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _runs import make_run

from kedro_gcs_bridge.errors import GCSBridgeError
from kedro_gcs_bridge.ops.runs import (
    REACH_SECONDS,
    RunSummary,
    delete_runs,
    list_runs,
    parse_age,
    scan_runs,
    select_for_gc,
)
from kedro_gcs_bridge.planning.naming import run_segment
from kedro_gcs_bridge.pod.backend import open_backend
from kedro_gcs_bridge.pod.store import HandoffStore

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)


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


class TestListAndDelete:
    def test_list_newest_first_with_groups_and_bytes(self, root: str) -> None:
        make_run(root, "dag_a", "run1", ["a"], ["a", "b"])
        make_run(root, "dag_b", "run2", ["a", "b"], ["a", "b"])
        found = list_runs(root)
        assert [(r.dag_id, r.run) for r in found] == [("dag_b", "run2"), ("dag_a", "run1")]
        assert found[0].groups_done == ("a", "b") and found[0].outcome == "success"
        assert found[1].groups_done == ("a",) and found[1].outcome == "incomplete"
        assert all(r.size > 0 for r in found)

    def test_run_ids_are_shown_decoded(self, root: str) -> None:
        """The run prefix percent-encodes Airflow's run id (`run_segment`); a listing shows the
        run id itself."""
        run_id = "manual__2026-11-24T07:11:31.230999+00:00"
        make_run(root, "dag", run_segment(run_id), ["a"], ["a"])
        (found,) = list_runs(root)
        assert found.run == run_segment(run_id) and found.run_id == run_id

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


#: Objects under a root that are not run prefixes: a Kedro project checked out there, a stray
#: manifest-like JSON, unmarked folders that look like runs, a marker of something else.
DECOYS = {
    "code/my_project/data/01_raw/companies.csv": b"id,name\n1,a\n",
    "code/my_project/conf/base/catalog.yml": b"companies: {}\n",
    "code/my_project/pyproject.toml": b"[tool.kedro]\n",
    "a/b/manifests/x.json": b"{}",
    "a/c/_run.json": b'{"outcome": "success"}',
    "a/d/_mlflow/run.json": b"{}",
    "a/e/_gcs_bridge_run.json": b'{"kind": "something else"}',
    "a/f/_gcs_bridge_run.json": b"not json",
    "deep/x/y/_gcs_bridge_run.json": b'{"kind": "kedro-gcs-bridge run prefix"}',
    "top.json": b"{}",
}


def plant_decoys(root: str) -> dict[str, bytes]:
    backend = open_backend(root)
    for name, data in DECOYS.items():
        backend.prepare(f"{backend.root}/{name}".rsplit("/", 1)[0])
        backend.fs.pipe_file(f"{backend.root}/{name}", data)
    return {f"{backend.root}/{name}": data for name, data in DECOYS.items()}


def still_there(root: str, planted: dict[str, bytes]) -> None:
    backend = open_backend(root)
    backend.fs.invalidate_cache()
    for path, data in planted.items():
        assert backend.fs.cat_file(path) == data, path


class TestOnlyMarkedRunPrefixes:
    def test_decoy_project_and_stray_json_are_never_listed_nor_deleted(self, root: str) -> None:
        planted = plant_decoys(root)
        make_run(root, "dag", "old", ["a"], ["a"])
        scan = scan_runs(root)
        assert [(run.dag_id, run.run) for run in scan.runs] == [("dag", "old")]
        chosen = select_for_gc(scan.runs, dt.timedelta(0), False, dt.datetime.now(dt.UTC))
        delete_runs(root, chosen)
        assert list_runs(root) == []
        still_there(root, planted)

    def test_unreadable_objects_are_reported_and_skipped(self, root: str) -> None:
        plant_decoys(root)
        prefix = make_run(root, "dag", "run", ["a"], ["a", "b"])
        backend = open_backend(prefix)
        backend.fs.pipe_file(f"{backend.root}/manifests/x.json", b"{}")
        backend.fs.pipe_file(f"{backend.root}/manifests/y.json", b"[1, 2")
        scan = scan_runs(root)
        (run,) = scan.runs
        assert run.groups_done == ("a",) and run.outcome == "incomplete"
        problems = "\n".join(scan.problems)
        assert "dag/run/manifests/x.json" in problems and "'task' is missing" in problems
        assert "dag/run/manifests/y.json" in problems and "not valid JSON" in problems
        assert "a/e/_gcs_bridge_run.json" in problems and "a/f/_gcs_bridge_run.json" in problems

    def test_delete_refuses_an_unmarked_folder_even_at_run_depth(self, root: str) -> None:
        planted = plant_decoys(root)
        backend = open_backend(root)
        decoy = RunSummary(
            "code", "my_project", "", f"{backend.root}/code/my_project", (), (), "success", 1, None
        )
        with pytest.raises(GCSBridgeError, match="refusing to delete"):
            delete_runs(root, [decoy])
        still_there(root, planted)


class TestRootUrl:
    @pytest.mark.parametrize(
        "url", ["/", "file:///", "file://", "gs://", "gs:///x", "runs", "./runs", "gs:/b/x", ""]
    )
    def test_roots_that_are_not_absolute_urls_are_refused(self, url: str) -> None:
        with pytest.raises(GCSBridgeError, match="'--root'"):
            list_runs(url)
        with pytest.raises(GCSBridgeError, match="'--root'"):
            delete_runs(url, [])


@pytest.mark.slow
def test_unreachable_gcs_fails_fast_with_one_line(tmp_path: Path) -> None:
    """A gs:// root with no reachable GCS (an emulator host on a closed port): list and gc fail
    at the reach bound the command sets (REACH_SECONDS), not after gcsfs's minute of retries,
    with one line naming --root and no traceback."""
    from _gcs_emulator import free_port

    project = tmp_path / "spaceflights"
    shutil.copytree(REPO / "examples" / "spaceflights", project)
    kedro = str(Path(sys.executable).parent / "kedro")
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "true",
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{free_port()}",
    }
    for args in (["list"], ["gc", "--older-than", "7d"]):
        result = subprocess.run(
            [kedro, "gcs-bridge", "runs", *args, "--root", "gs://bucket/runs"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert result.returncode == 1, result.stderr[-2000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and "--root" in errors[0], result.stderr[-2000:]
        # The command gave up at its own bound, while gcsfs was still retrying.
        assert f"gave no answer within {REACH_SECONDS:.0f} s" in errors[0], errors[0]
        assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.slow
def test_runs_cli_lists_and_collects(tmp_path: Path) -> None:
    project = tmp_path / "spaceflights"
    shutil.copytree(REPO / "examples" / "spaceflights", project)
    root = (tmp_path / "root").as_uri()
    make_run(root, "dag", "finished", ["a"], ["a"])
    make_run(root, "dag", "broken", [], ["a"])
    make_run(root, "dag", run_segment("manual__2026-11-24T07:11:31+00:00"), ["a"], ["a"])
    HandoffStore(f"{root}/dag/broken", task="a").save("partial", {"x": 1})
    planted = plant_decoys(root)
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
    assert "skipped" in listing and "a/b/manifests/x.json" not in listing
    assert "3 run(s)" in listing and "finished  groups 1/1  success" in listing
    assert "dag  manual__2026-11-24T07:11:31+00:00  groups 1/1" in listing  # decoded
    assert "broken  groups 0" in listing and "incomplete" in listing
    dry = cli("gc", "--older-than", "0s", "--keep-failed", "--dry-run")
    assert "would delete" in dry and "/dag/finished" in dry and "/dag/broken" not in dry
    assert "3 run(s)" in cli("list")
    cli("gc", "--older-than", "0s", "--keep-failed")
    assert "1 run(s)" in cli("list") and "broken" in cli("list")
    still_there(root, planted)


def test_reading_a_run_prefix_on_a_stopped_emulator_fails_in_seconds_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What `suggest --from` and replay's summary read: a gs:// prefix whose storage does not
    answer (an emulator that is gone) is one error at the reach bound, not a minute of gcsfs
    retries ending in a traceback."""
    import gcsfs
    from _gcs_emulator import free_port

    from kedro_gcs_bridge.cli.access import read_manifests
    from kedro_gcs_bridge.errors import StorageUnreachableError

    host = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", host)
    gcsfs.GCSFileSystem.clear_instance_cache()
    prefix = "gs://kedro-gcs-bridge-replay/runs/dag/manual__1"
    with pytest.raises(StorageUnreachableError) as raised:
        read_manifests(prefix, "suggest")
    message = str(raised.value)
    assert message.startswith("cannot reach the run prefix: ") and "\n" not in message
    assert f"(STORAGE_EMULATOR_HOST sends gs:// to {host}: is that emulator running?)" in message
    gcsfs.GCSFileSystem.clear_instance_cache()
