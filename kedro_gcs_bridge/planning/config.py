"""Moved to `kedro_gcs_bridge.config`; these names stay importable from here."""

from __future__ import annotations

from kedro_gcs_bridge.config import BridgeConfig, merge_airflow_config, parse_config, unknown_keys

__all__ = ["BridgeConfig", "merge_airflow_config", "parse_config", "unknown_keys"]
