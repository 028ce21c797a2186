"""kedro-gcs-bridge: run Kedro pipelines on Airflow + GKE Autopilot, data handed over through GCS.

`kedro run --runner kedro_gcs_bridge.GCSRunner` resolves `GCSRunner` here; it is imported on
first use so that `import kedro_gcs_bridge` (done by every Kedro session for the hook) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kedro_gcs_bridge._version import __version__

__all__ = ["GCSRunner", "__version__"]

if TYPE_CHECKING:
    from kedro_gcs_bridge.pod.runner import GCSRunner


def __getattr__(name: str) -> Any:
    if name == "GCSRunner":
        from kedro_gcs_bridge.pod.runner import GCSRunner

        return GCSRunner
    raise AttributeError(f"module 'kedro_gcs_bridge' has no attribute {name!r}")
