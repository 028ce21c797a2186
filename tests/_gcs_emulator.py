"""A real local GCS emulator (gcp-storage-emulator) on 127.0.0.1, for tests that use gs:// URLs.

Import the fixture into a test module (`from _gcs_emulator import gcs_emulator`). It starts one
emulator process per session on a free port, points `STORAGE_EMULATOR_HOST` at it (gcsfs and
kedro-gcs-bridge then talk to it anonymously) and stops it at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BUCKET = "bridge-test"
# gcsfs reads this when it is imported; its experimental gRPC path stalls against emulators.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gcp-storage-emulator exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"gcp-storage-emulator did not listen on {port} within {seconds} s")


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """The emulator's URL; the bucket `BUCKET` exists."""
    port = free_port()
    executable = Path(sys.executable).parent / "gcp-storage-emulator"
    process = subprocess.Popen(
        [
            str(executable),
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--default-bucket",
            BUCKET,
            "-q",
            "-M",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    try:
        _wait_for(port, process)
        os.environ["STORAGE_EMULATOR_HOST"] = url
        yield url
    finally:
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
