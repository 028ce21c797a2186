"""Commands the tests run as real processes, with this environment plus a few variables."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def run(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 900
) -> subprocess.CompletedProcess[str]:
    """Runs a command to its end (bounded by `timeout`) and keeps its output; never raises
    on a non-zero exit."""
    return subprocess.run(
        cmd,
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
