"""Project settings; everything not set here keeps the Kedro default.

See https://docs.kedro.org/en/stable/configure/configuration_basics/ for the
available settings and their default values.
"""

from __future__ import annotations

from typing import Any

# Keyword arguments for the configuration loader (OmegaConfigLoader by default).
CONFIG_LOADER_ARGS: dict[str, Any] = {
    "base_env": "base",
    "default_run_env": "local",
}
