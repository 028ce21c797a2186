"""A local GCS emulator (gcp-storage-emulator, in memory) on 127.0.0.1 for the benchmarks.

The same start/stop logic as `tests/_gcs_emulator.py`, without pytest: `with emulator() as url:`
starts one emulator process on a free port with the bucket `BUCKET`, points
`STORAGE_EMULATOR_HOST` at it (gcsfs and kedro-gcs-bridge then talk to it anonymously), waits a
bounded time for it to listen, and stops it at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUCKET = "bridge-bench"
START_TIMEOUT_S = 30.0
# gcsfs reads this when it is imported; its experimental gRPC path stalls against emulators.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gcp-storage-emulator exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"gcp-storage-emulator did not listen on {port} within {seconds} s")


@contextmanager
def emulator(bucket: str = BUCKET) -> Iterator[str]:
    """Runs the emulator (`-M`: in memory) and yields its URL; `bucket` exists."""
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
            bucket,
            "-q",
            "-M",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    try:
        _wait_for(port, process, START_TIMEOUT_S)
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
            process.wait(timeout=10)
