"""A real MLflow tracking server on 127.0.0.1 (sqlite backend), for tests that track runs.

Import the fixture into a test module (`from _mlflow_server import mlflow_server`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _gcs_emulator import free_port


@contextmanager
def running_mlflow_server(folder: Path, wait_seconds: float = 120) -> Iterator[str]:
    """A fresh server keeping its store in `folder`; its URI. Stopped (with its workers) at the
    end. benchmarks/tracking.py uses it too."""
    port = free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--default-artifact-root",
            (folder / "artifacts").as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        # MLflow 3's job runner (a huey consumer per job queue, each importing mlflow: ~8
        # processes, ~3 GB) serves no call a pod makes: off, as a tracking-only server runs it.
        env={
            **os.environ,
            "MLFLOW_TRACKING_URI": "",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        },
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"mlflow server did not answer /health in {wait_seconds:.0f} s"
                    ) from None
                time.sleep(0.5)
        yield uri
    finally:
        # The server spawns workers that outlive a SIGTERM to the parent: stop the group.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The tracking URI of a fresh server, for the session."""
    with running_mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri
