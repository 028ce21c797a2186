"""Storage faults: a flaky GCS (503/429, dropped connections) behind a proxy on 127.0.0.1, and
attempts paused (SIGSTOP) or killed (SIGKILL) at random moments of a save.

gcsfs retries, so a replay of the example DAG still gives the same outputs; when writes keep
failing, the task fails with a clear storage error and leaves nothing a reader would take
for complete. A paused older attempt resumed late never mixes into a newer commit, and a rerun
after a kill gives the outputs of a clean run.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _fault_proxy import failing_uploads, fault_proxy, random_faults
from _gcs_emulator import BUCKET

from kedro_gcs_bridge.errors import NotCommittedError
from kedro_gcs_bridge.pod.store import HandoffStore

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def kedro(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kedro"), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={
            **os.environ,
            "KEDRO_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "1",
            "COLUMNS": "400",
            **env,
        },
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "spaceflights"
    shutil.copytree(REPO / "examples" / "spaceflights", target)
    return target


def said(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join((result.stdout + result.stderr).replace("│", " ").split())


@dataclass(frozen=True)
class Outage:
    """The `companies` group run against a GCS whose uploads all fail (in the background)."""

    prefix: str
    running: Future[tuple[subprocess.CompletedProcess[str], Counter[str]]]

    def outcome(self) -> tuple[subprocess.CompletedProcess[str], Counter[str]]:
        """The group's process once it ended, and what the fault proxy answered."""
        return self.running.result(timeout=900)


def _run_in_outage(
    project: Path, gcs_emulator: str, prefix: str
) -> tuple[subprocess.CompletedProcess[str], Counter[str]]:
    with fault_proxy(gcs_emulator, failing_uploads, max_requests=2000, max_seconds=300) as proxy:
        result = kedro(
            project,
            {
                "STORAGE_EMULATOR_HOST": proxy.url,
                "KEDRO_GCS_BRIDGE_RUN_PREFIX": prefix,
                "KEDRO_GCS_BRIDGE_TASK": "companies",
                # As the DAG sets it: the example's Parquet intermediates cross the prefix.
                "KEDRO_GCS_BRIDGE_LOCAL_HANDOFF": "true",
            },
            "run",
            "--runner",
            "kedro_gcs_bridge.GCSRunner",
            "--nodes",
            "preprocess_companies_node",
        )
    return result, Counter(proxy.counts)


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory, gcs_emulator: str) -> Iterator[Outage]:
    """The persistent-outage group, started in the background: it spends ~35 s sleeping in
    gcsfs's backoffs (6 attempts, 1, 2, 4, 8 and 16 s apart: gcsfs 2026.10 fixes them when its
    class is defined, so no setting lowers them), while the flaky replay runs."""
    project = tmp_path_factory.mktemp("outage") / "spaceflights"
    shutil.copytree(REPO / "examples" / "spaceflights", project)
    prefix = f"gs://{BUCKET}/outage-{uuid.uuid4().hex[:8]}/dag/run"
    with ThreadPoolExecutor(max_workers=1) as pool:
        found = Outage(prefix, pool.submit(_run_in_outage, project, gcs_emulator, prefix))
        yield found
        found.outcome()


def test_replay_through_a_flaky_gcs_gives_the_same_outputs(
    project: Path,
    tmp_path: Path,
    gcs_emulator: str,
    outage: Outage,
    reference_metrics: dict[str, float],
) -> None:
    """(Asks for `outage` so that its backoffs overlap this replay.)"""
    expected = reference_metrics  # a plain `kedro run` of the example (conftest.py)
    assert not (project / "data" / "08_reporting" / "metrics.json").exists()

    env = {"AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    created = kedro(
        project,
        env,
        "airflow",
        "create",
        "-j",
        str(REPO / "templates" / "gcs_bridge.j2"),
        "-t",
        str(project / "dags"),
        "--params",
        "local_disk=warn",  # the example keeps its data on local disk
    )
    assert created.returncode == 0, created.stderr[-2000:]
    root = f"gs://{BUCKET}/faults-{uuid.uuid4().hex[:8]}"
    with fault_proxy(gcs_emulator, random_faults(rate=0.2), max_requests=5000) as proxy:
        result = kedro(
            project,
            {**env, "STORAGE_EMULATOR_HOST": proxy.url},
            "gcs-bridge",
            "replay",
            str(project / "dags" / "spaceflights_dag.py"),
            "--prefix",
            root,
            "--shared-dir",  # the outputs land in the project, to compare with the reference
        )
    assert result.returncode == 0, result.stdout[-4000:]
    injected = proxy.counts["503"] + proxy.counts["429"] + proxy.counts["drop"]
    assert injected >= 10, proxy.counts  # the faults really happened
    assert json.loads((project / "data" / "08_reporting" / "metrics.json").read_text()) == expected


def test_persistent_write_faults_fail_clearly_and_leave_nothing(
    outage: Outage, gcs_emulator: str
) -> None:
    result, counts = outage.outcome()  # the group started with the module (see `outage`)
    prefix = outage.prefix
    assert result.returncode != 0
    assert counts["503"] >= 6  # gcsfs retried before giving up
    message = said(result)
    # The first write of the group (its run-prefix marker) fails, named, before any node ran.
    assert f"storage error while writing {prefix}/_gcs_bridge_run.json" in message
    assert "Nothing of this attempt is committed; the task can be retried" in message
    # Seen without the proxy: nothing that a reader would take for complete.
    store = HandoffStore(prefix, task="inspect")
    store.fs.invalidate_cache()
    assert not store.fs.exists(store.manifest_path("companies"))
    with pytest.raises(NotCommittedError, match="task 'companies' has not committed"):
        store.load("preprocessed_companies", producer_task="companies")


# --- attempts paused and killed at random moments (forked processes: no imports per trial) ---
TRIALS = 20
NAMES = ("big", "frame", "small")


def _values(attempt: int) -> dict[str, Any]:
    return {
        "big": [attempt] * 200_000,
        "frame": pd.DataFrame({"attempt": [attempt] * 100_000, "x": range(100_000)}),
        "small": {"attempt": attempt},
    }


def _attempt(prefix: str, attempt: int) -> None:
    """One attempt of the group 'split', as the runner does it: withdraw, save, commit."""
    store = HandoffStore(prefix, task="split", attempt=attempt)
    store.start_attempt()
    for name, value in _values(attempt).items():
        store.save(name, value)
    store.write_manifest(["split_node"], "t0")


def _loaded(prefix: str) -> dict[str, Any]:
    consumer = HandoffStore(prefix, task="train", upstream=dict.fromkeys(NAMES, "split"))
    return {name: consumer.load(name) for name in NAMES}


def _attempts_seen(values: dict[str, Any]) -> set[int]:
    return {values["big"][0], int(values["frame"]["attempt"][0]), values["small"]["attempt"]}


def _uncommitted_objects(root: Path) -> bool:
    """Some data object exists and no manifest does: the attempt was stopped mid-save."""
    has_data = any((root / "data").rglob("a*-*.*")) if (root / "data").exists() else False
    return has_data and not (root / "manifests" / "split.json").exists()


@pytest.fixture(scope="module")
def attempt_seconds(tmp_path_factory: pytest.TempPathFactory) -> float:
    """How long one attempt takes here (the window the random pauses and kills fall into)."""
    prefix = tmp_path_factory.mktemp("warm").as_uri()
    _attempt(prefix, 1)  # imports and dataset classes loaded before any fork
    started = time.monotonic()
    _attempt(prefix, 2)
    return time.monotonic() - started


def test_zombie_attempt_paused_mid_save_never_mixes_with_the_newer_one(
    tmp_path: Path, attempt_seconds: float
) -> None:
    """SIGSTOP attempt 1 at a random moment, run attempt 2 to completion, SIGCONT attempt 1:
    the consumer sees attempt 2 only, in every trial."""
    rng, fork = random.Random(2026), multiprocessing.get_context("fork")
    stopped_mid_save = 0  # bounded by TRIALS, each attempt joined within 60 s
    for trial in range(TRIALS):
        root = tmp_path / f"zombie{trial}"
        zombie = fork.Process(target=_attempt, args=(root.as_uri(), 1))
        zombie.start()
        time.sleep(rng.uniform(0.0, attempt_seconds * 1.2))
        os.kill(zombie.pid, signal.SIGSTOP)
        stopped_mid_save += _uncommitted_objects(root)
        newer = fork.Process(target=_attempt, args=(root.as_uri(), 2))
        try:
            newer.start()
            # A pause can land while the zombie holds the folder's lock (local disk's `update`):
            # the newer attempt then waits for it, as it would for a live one. Resume it then.
            newer.join(timeout=max(30.0, attempt_seconds * 5))
        finally:
            # Starting `newer` reaps a zombie that had already ended before its pause.
            with contextlib.suppress(ProcessLookupError):
                os.kill(zombie.pid, signal.SIGCONT)
            newer.join(timeout=60)
            zombie.join(timeout=60)
        assert newer.exitcode == 0, f"trial {trial}: attempt 2 exited {newer.exitcode}"
        assert _attempts_seen(_loaded(root.as_uri())) == {2}, f"trial {trial}"
    assert stopped_mid_save >= TRIALS // 4, stopped_mid_save  # the pauses hit saves


def test_kill_9_at_random_moments_then_rerun_gives_a_clean_run_outputs(
    tmp_path: Path, attempt_seconds: float
) -> None:
    clean = (tmp_path / "clean").as_uri()
    _attempt(clean, 1)
    reference = {n: r["crc32c"] for n, r in _manifest(clean)["datasets"].items()}
    rng, fork = random.Random(9), multiprocessing.get_context("fork")
    killed_mid_save = 0  # bounded by TRIALS, each attempt joined within 60 s
    for trial in range(TRIALS):
        root = tmp_path / f"killed{trial}"
        victim = fork.Process(target=_attempt, args=(root.as_uri(), 1))
        victim.start()
        time.sleep(rng.uniform(0.0, attempt_seconds * 1.2))
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(timeout=60)
        killed_mid_save += _uncommitted_objects(root)
        # A kill can land after the commit and before the process exits: only an attempt
        # killed before its manifest was renamed into place is uncommitted.
        committed = (root / "manifests" / "split.json").exists()
        if victim.exitcode == -signal.SIGKILL and not committed:
            with pytest.raises(NotCommittedError):
                _loaded(root.as_uri())  # a killed attempt is never read
        _attempt(root.as_uri(), 1)  # the rerun
        rerun = {n: r["crc32c"] for n, r in _manifest(root.as_uri())["datasets"].items()}
        assert rerun == reference, f"trial {trial}"
        assert _attempts_seen(_loaded(root.as_uri())) == {1}
    assert killed_mid_save >= TRIALS // 4, killed_mid_save


def _manifest(prefix: str) -> dict[str, Any]:
    store = HandoffStore(prefix, task="inspect")
    return json.loads(store.fs.cat_file(store.manifest_path("split")))
