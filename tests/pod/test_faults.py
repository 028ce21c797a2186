"""Storage faults: a flaky GCS (503/429, dropped connections) behind a proxy on 127.0.0.1.

gcsfs retries, so a replay of the example DAG still gives the same outputs; when writes keep
failing, the task fails with a clear storage error and leaves nothing a reader would take
for complete.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from _fault_proxy import failing_uploads, fault_proxy, random_faults
from _gcs_emulator import BUCKET

from kedro_gcs_bridge.pod.store import HandoffStore

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


@pytest.mark.usefixtures("gcs_emulator")
def test_replay_through_a_flaky_gcs_gives_the_same_outputs(
    project: Path, tmp_path: Path, gcs_emulator: str
) -> None:
    reference = kedro(project, {}, "run")
    assert reference.returncode == 0, reference.stderr[-2000:]
    expected = json.loads((project / "data" / "08_reporting" / "metrics.json").read_text())
    (project / "data" / "08_reporting" / "metrics.json").unlink()

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
        )
    assert result.returncode == 0, result.stdout[-4000:]
    injected = proxy.counts["503"] + proxy.counts["429"] + proxy.counts["drop"]
    assert injected >= 10, proxy.counts  # the faults really happened
    assert json.loads((project / "data" / "08_reporting" / "metrics.json").read_text()) == expected


def test_persistent_write_faults_fail_clearly_and_leave_nothing(
    project: Path, gcs_emulator: str
) -> None:
    prefix = f"gs://{BUCKET}/outage-{uuid.uuid4().hex[:8]}/dag/run"
    with fault_proxy(gcs_emulator, failing_uploads, max_requests=2000, max_seconds=300) as proxy:
        result = kedro(
            project,
            {
                "STORAGE_EMULATOR_HOST": proxy.url,
                "KEDRO_GCS_BRIDGE_RUN_PREFIX": prefix,
                "KEDRO_GCS_BRIDGE_TASK": "companies",
            },
            "run",
            "--runner",
            "kedro_gcs_bridge.GCSRunner",
            "--nodes",
            "preprocess_companies_node",
        )
    assert result.returncode != 0
    assert proxy.counts["503"] >= 6  # gcsfs retried before giving up
    message = said(result)
    assert "storage error while saving dataset 'preprocessed_companies'" in message
    assert f"{prefix}/data/preprocessed_companies/data.feather" in message
    # Seen without the proxy: nothing that a reader would take for complete.
    store = HandoffStore(prefix, task="inspect")
    store.fs.invalidate_cache()
    assert not store.fs.exists(f"{store.root}/data/preprocessed_companies/record.json")
    assert not store.fs.exists(f"{store.root}/manifests/companies.json")
