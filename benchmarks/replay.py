"""Replay of the example's DAG against one plain `kedro run` of the same project, side by side.

A copy of examples/spaceflights (temp folder) gets its DAG from `kedro airflow create` with
the bridge's template (`local_disk=warn`: the example keeps its data on local disk). Then, after
one untimed warm-up of each, `--runs` rounds (default 3; `--quick`: 1) each time, interleaved:

- plain: `kedro run` in the project folder, the default runner, every node in one process;
- replay: `kedro gcs-bridge replay <dag> --parallel 2 --prefix file://...` with a fresh run id,
  every task a `kedro run` of its own in its own copy of the project, as pods run them.

The wall time of each whole process is compared by median. Target from issue 28: replay
<= 2x the plain run. The replay's tasks each pay a `kedro run` start (imports, session,
catalog), so the gap is mostly (tasks / parallel) starts.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import _common as common

NAME = "replay"
TARGET = 2.0
PARALLEL = 2
EXAMPLE = common.REPO / "examples" / "spaceflights"
KEDRO = str(common.BIN / "kedro")
#: What a copy of the example leaves out (earlier runs, caches).
_IGNORED = shutil.ignore_patterns(
    "airflow_dags", ".gcs-bridge-runs", "runs", "__pycache__", "*.egg-info", ".venv"
)


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall seconds of one process; fails loudly with its output's tail."""
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(args[:4])} failed ({done.returncode}):\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return seconds


def _project(root: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """A copy of the example and its generated DAG file."""
    project = root / "spaceflights"
    shutil.copytree(EXAMPLE, project, ignore=_IGNORED)
    target = project / "airflow_dags"
    template = str(common.REPO / "templates" / "gcs_bridge.j2")
    args = [KEDRO, "airflow", "create", "-j", template, "-t", str(target)]
    _run([*args, "--params", "local_disk=warn"], project, env)
    (dag,) = sorted(target.glob("*.py"))
    return project, dag


def _replay_args(project: Path, dag: Path) -> list[str]:
    prefix = (project / "runs").as_uri()
    run_id = f"manual__bench-{uuid.uuid4().hex[:8]}"
    return [KEDRO, "gcs-bridge", "replay", str(dag), "--run-id", run_id, "--prefix", prefix]


def _measure(project: Path, dag: Path, env: dict[str, str], runs: int) -> dict[str, list[float]]:
    """Wall seconds of each variant, `runs` interleaved rounds after one warm-up each."""
    commands = {
        "plain kedro run": lambda: [KEDRO, "run"],
        f"replay --parallel {PARALLEL}": lambda: [
            *_replay_args(project, dag),
            "--parallel",
            str(PARALLEL),
        ],
    }
    for command in commands.values():
        _run(command(), project, env)
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            seconds[name].append(_run(command(), project, env))
    return seconds


def main() -> None:
    args = common.parser(__doc__.splitlines()[0])
    args.add_argument("--runs", type=int, default=None, help="timed rounds (default 3; quick 1)")
    options = args.parse_args()
    runs = options.runs or (1 if options.quick else 3)
    root = Path(tempfile.mkdtemp(prefix="kedro-gcs-bridge-replay-bench-"))
    env = common.child_env(COLUMNS="200", AIRFLOW_HOME=str(root / "airflow_home"))
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    try:
        project, dag = _project(root, env)
        seconds = _measure(project, dag, env, runs)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    plain, replayed = (common.median(values) for values in seconds.values())
    ratio = replayed / plain
    rows: list[dict[str, Any]] = [
        {"variant": name, "median_s": common.median(values), "runs_s": values}
        for name, values in seconds.items()
    ]
    print(
        common.table(
            f"examples/spaceflights, wall time of the whole process (median of {runs})",
            ["variant", "median s", "runs s", "x plain"],
            [
                [
                    r["variant"],
                    r["median_s"],
                    " ".join(f"{s:.2f}" for s in r["runs_s"]),
                    r["median_s"] / plain,
                ]
                for r in rows
            ],
        )
    )
    targets = [
        common.Target(
            f"replay (--parallel {PARALLEL}) vs one plain kedro run of the example",
            f"<= {TARGET:g}x",
            f"{ratio:.2f}x ({replayed:.1f} s vs {plain:.1f} s)",
            ratio <= TARGET,
        )
    ]
    print()
    print(common.targets_table(targets))
    common.write_result(
        NAME,
        {"runs": runs, "parallel": PARALLEL, "project": "examples/spaceflights"},
        {"rows": rows, "ratio": ratio},
        targets,
        notes=["each replayed task is a `kedro run` of its own in its own copy of the project"],
    )


if __name__ == "__main__":
    main()
