"""A local GCS emulator (gcp-storage-emulator, in memory) on 127.0.0.1 for the benchmarks.

`with emulator() as url:` runs `kedro_gcs_bridge.emulator.gcs_emulator` (what `replay
--emulator` and the tests use) with the bucket `BUCKET`, and points `STORAGE_EMULATOR_HOST` at
it meanwhile, so gcsfs and kedro-gcs-bridge talk to it anonymously.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from kedro_gcs_bridge.ops.emulator import EMULATOR_HOST_ENV, GCSFS_HNS_ENV, free_port, gcs_emulator

__all__ = ["BUCKET", "emulator", "free_port"]

BUCKET = "bridge-bench"
# gcsfs reads this when it is imported; its experimental gRPC path stalls against emulators.
os.environ[GCSFS_HNS_ENV] = "false"


@contextmanager
def emulator(bucket: str = BUCKET) -> Iterator[str]:
    """Runs the emulator and yields its URL; `bucket` exists."""
    previous = os.environ.get(EMULATOR_HOST_ENV)
    with gcs_emulator(bucket) as url:
        os.environ[EMULATOR_HOST_ENV] = url
        try:
            yield url
        finally:
            if previous is None:
                os.environ.pop(EMULATOR_HOST_ENV, None)
            else:
                os.environ[EMULATOR_HOST_ENV] = previous
