"""A local GCS emulator (gcp-storage-emulator, in memory) on 127.0.0.1, for rehearsals and tests.

`replay --emulator` runs a DAG's tasks against it with real gcsfs, as the pods would run
against GCS. gcp-storage-emulator is installed with the `test` extra of kedro-gcs-bridge.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kedro_gcs_bridge.errors import GCSBridgeError

EMULATOR_HOST_ENV = "STORAGE_EMULATOR_HOST"
#: gcsfs reads this when imported; its experimental gRPC path stalls against emulators.
GCSFS_HNS_ENV = "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
