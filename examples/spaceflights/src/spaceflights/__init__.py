"""spaceflights: a small Kedro example project used by kedro-gcs-bridge."""

from __future__ import annotations

__version__ = "0.1.0"
