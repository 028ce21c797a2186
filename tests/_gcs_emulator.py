"""The real local GCS emulator as a pytest fixture, for tests that use gs:// URLs.

One in-memory gcp-storage-emulator per session on a free 127.0.0.1 port (started by the
package's own `kedro_gcs_bridge.ops.emulator`); `STORAGE_EMULATOR_HOST` points at it, so gcsfs and
kedro-gcs-bridge talk to it anonymously. Registered in conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from kedro_gcs_bridge.ops.emulator import GCSFS_HNS_ENV, free_port
from kedro_gcs_bridge.ops.emulator import gcs_emulator as running_emulator

__all__ = ["BUCKET", "free_port", "gcs_emulator"]

BUCKET = "bridge-test"
os.environ.setdefault(GCSFS_HNS_ENV, "false")


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """The emulator's URL; the bucket `BUCKET` exists."""
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    with running_emulator(BUCKET) as url:
        os.environ["STORAGE_EMULATOR_HOST"] = url
        try:
            yield url
        finally:
            if previous is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = previous
