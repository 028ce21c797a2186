"""Moved to `kedro_gcs_bridge.values`; these names stay importable from here."""

from __future__ import annotations

from kedro_gcs_bridge.values import as_bool, as_count, as_root_url

__all__ = ["as_bool", "as_count", "as_root_url"]
