"""Commands the tests run as real processes, with this environment plus a few variables.

`kedro` commands run as a batch (`run_jobs` in tests/_kedro_jobs.py) start warm: each forked
from a server that has imported Kedro, the bridge and what the example's code imports
(replay's own warm start, dag/warm.py), instead of a new Python process importing them again
(~3 s of CPU each: sklearn, matplotlib, pandas). Each is still a process of its own, with its
own folder, environment and exit status; the server never imports a project's own package,
so each copy's edits are its own. `KEDRO_GCS_BRIDGE_TEST_COLD=1` runs every command cold.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from kedro_gcs_bridge.dag.warm import WarmStarter

_COLD = os.environ.get("KEDRO_GCS_BRIDGE_TEST_COLD") == "1"


def run(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 900
) -> subprocess.CompletedProcess[str]:
    """Runs a command to its end (bounded by `timeout`) and keeps its output; never raises
    on a non-zero exit."""
    return run_in({**os.environ, **env}, cmd, cwd, timeout)


def run_in(
    env: Mapping[str, str],
    cmd: Sequence[str],
    cwd: Path,
    timeout: float = 900,
    warm: WarmStarter | None = None,
) -> subprocess.CompletedProcess[str]:
    """`run` in exactly the environment `env`: forked from `warm` where it can start there."""
    if warm is None or warm.cold_reason(cmd, env):
        return subprocess.run(
            list(cmd),
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    # Seen as a started process by the `slow` marker's audit hook (tests/_slow.py).
    sys.audit("subprocess.Popen", cmd[0], list(cmd), str(cwd), dict(env))
    code, stdout, stderr = warm.run_captured(cmd, cwd, env, timeout)
    return subprocess.CompletedProcess(list(cmd), code, stdout, stderr)


@contextlib.contextmanager
def warm_server(
    project: Path, env: Mapping[str, str], commands: int
) -> Iterator[WarmStarter | None]:
    """A warm server for `commands` kedro commands in `env` (None for fewer than 3, where
    starting it costs what it saves), ended on leaving."""
    if _COLD or commands < 3:
        yield None
        return
    warm = WarmStarter(project, env, own_dirs=False)
    try:
        yield warm
    finally:
        warm.close()
