"""The real local GCS emulator as a pytest fixture, for tests that use gs:// URLs.

One in-memory gcp-storage-emulator per test module on a free 127.0.0.1 port (started by the
package's own `kedro_gcs_bridge.ops.emulator`), stopped when the module's last test ends;
`STORAGE_EMULATOR_HOST` points at it, so gcsfs and kedro-gcs-bridge talk to it anonymously.
Registered in conftest.py.

Per module, not per session: the emulator keeps every object it ever held in memory, deleted
ones too (6-8 GB after the fault tests on one instance), so the suite's memory stays bounded
by what one module writes. At most one runs at a time: the fixture refuses to start one while
another of the suite is still running (tests/test_gcs_emulator_scope.py shows both).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from kedro_gcs_bridge.ops.emulator import GCSFS_HNS_ENV, free_port
from kedro_gcs_bridge.ops.emulator import gcs_emulator as running_emulator

__all__ = ["BUCKET", "RUNNING", "free_port", "gcs_emulator"]

BUCKET = "bridge-test"
os.environ.setdefault(GCSFS_HNS_ENV, "false")
#: The URL of the emulator the fixture is running now (none, or one).
RUNNING: list[str] = []


@pytest.fixture(scope="module")
def gcs_emulator() -> Iterator[str]:
    """The emulator's URL; the bucket `BUCKET` exists (fresh for each test module)."""
    assert not RUNNING, f"an earlier module's GCS emulator still runs: {RUNNING}"
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    with running_emulator(BUCKET) as url:
        os.environ["STORAGE_EMULATOR_HOST"] = url
        RUNNING.append(url)
        try:
            yield url
        finally:
            RUNNING.remove(url)
            if previous is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = previous
