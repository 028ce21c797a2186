"""Replay of the example's DAG against one plain `kedro run` of the same project, side by side.

A copy of examples/spaceflights (temp folder) gets its DAG from `kedro airflow create` with
the bridge's template (`local_disk=warn`: the example keeps its data on local disk). Then, after
one untimed warm-up of each (none with `--quick`), `--runs` rounds (default 3; `--quick`: 1),
interleaved:

- plain: `kedro run` in the project folder, the default runner, every node in one process;
- replay: `kedro gcs-bridge replay <dag> --parallel 2 --prefix file://...` with a fresh run id,
  every task a `kedro run` of its own in its own copy of the project, as pods run them, each
  started warm (forked from replay's server that has imported Kedro and the project's imports,
  dag/warm.py).

The wall time of each whole process is compared by median. Target from issue 28: replay
<= 2x the plain run. The replay also prints its own makespan and measured `kedro run` start
per task; the rest of its wall time is outside the tasks (Kedro's CLI, Airflow's import, the
DagBag, rendering the pods, the summary). The warm server's imports are paid once, beside
Airflow's; each level of the DAG then pays a warm `kedro run` start (config, catalog, session).
"""

from __future__ import annotations

import re
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
REPLAY = f"replay --parallel {PARALLEL}"
#: The same replay with every task a new process (`--with-cold`: what the warm start saves).
COLD = f"{REPLAY} --cold-start"
#: Figures the replay prints after its table.
_REPLAY_FIGURES = {
    "makespan_s": r"makespan: ([0-9.]+) s",
    "kedro_start_s": r"kedro run start, measured: ([0-9.]+) s",
}
EXAMPLE = common.REPO / "examples" / "spaceflights"
KEDRO = str(common.BIN / "kedro")
#: What a copy of the example leaves out (earlier runs, caches).
_IGNORED = shutil.ignore_patterns(
    "airflow_dags", ".gcs-bridge-runs", "runs", "__pycache__", "*.egg-info", ".venv"
)


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """(wall seconds, stdout) of one process; fails loudly with its output's tail."""
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(args[:4])} failed ({done.returncode}):\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return seconds, done.stdout


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


def _replay_figures(stdout: str) -> dict[str, float]:
    """What the replay measured itself: its makespan and the `kedro run` start per task."""
    figures: dict[str, float] = {}
    for key, pattern in _REPLAY_FIGURES.items():
        found = re.search(pattern, stdout)
        if found:
            figures[key] = float(found.group(1))
    return figures


def _measure(
    project: Path, dag: Path, env: dict[str, str], runs: int, warm_up: bool, cold: bool = False
) -> tuple[dict[str, list[float]], list[dict[str, float]]]:
    """Wall seconds of each variant, `runs` interleaved rounds (after one warm-up each), and
    the replay's own figures of each timed round (`cold`: the cold-start replay too)."""
    commands = {
        "plain kedro run": lambda: [KEDRO, "run"],
        REPLAY: lambda: [*_replay_args(project, dag), "--parallel", str(PARALLEL)],
    }
    if cold:
        commands[COLD] = lambda: [*commands[REPLAY](), "--cold-start"]
    for command in commands.values() if warm_up else ():
        _run(command(), project, env)
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    figures: list[dict[str, float]] = []
    for _ in range(runs):
        for name, command in commands.items():
            took, stdout = _run(command(), project, env)
            seconds[name].append(took)
            if name == REPLAY:
                figures.append(_replay_figures(stdout))
    return seconds, figures


def main() -> None:
    args = common.parser(__doc__.splitlines()[0])
    args.add_argument("--runs", type=int, default=None, help="timed rounds (default 3; quick 1)")
    args.add_argument(
        "--with-cold", action="store_true", help="also time the replay with --cold-start"
    )
    options = args.parse_args()
    runs = options.runs or (1 if options.quick else 3)
    root = Path(tempfile.mkdtemp(prefix="kedro-gcs-bridge-replay-bench-"))
    env = common.child_env(COLUMNS="200", AIRFLOW_HOME=str(root / "airflow_home"))
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    try:
        project, dag = _project(root, env)
        warm_up = not options.quick
        seconds, figures = _measure(project, dag, env, runs, warm_up, options.with_cold)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    _report(seconds, figures, runs)


def _breakdown(replayed: float, figures: list[dict[str, float]]) -> dict[str, float]:
    """The replay's medians: makespan, `kedro run` start per task, and the time outside its
    tasks (Kedro's CLI, Airflow's import, the DagBag, rendering, the summary)."""
    found = {
        key: common.median(f[key] for f in figures)
        for key in _REPLAY_FIGURES
        if figures and all(key in f for f in figures)
    }
    if "makespan_s" in found:
        found["outside_tasks_s"] = replayed - found["makespan_s"]
    return found


def _report(seconds: dict[str, list[float]], figures: list[dict[str, float]], runs: int) -> None:
    """Prints the table and the target, writes the JSON."""
    plain, replayed = common.median(seconds["plain kedro run"]), common.median(seconds[REPLAY])
    ratio = replayed / plain
    rows: list[dict[str, Any]] = [
        {"variant": name, "median_s": common.median(values), "runs_s": values}
        for name, values in seconds.items()
    ]
    title = f"examples/spaceflights, wall time of the whole process (median of {runs})"
    print(
        common.table(
            title,
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
    breakdown = _breakdown(replayed, figures)
    print(
        "replay's own figures (medians): " + ", ".join(f"{k} {v:.1f}" for k, v in breakdown.items())
    )
    targets = [
        common.Target(
            f"{REPLAY} vs one plain kedro run of the example",
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
        {"rows": rows, "ratio": ratio, "replay_breakdown": breakdown},
        targets,
        notes=[
            "each replayed task is a `kedro run` of its own in its own copy of the project, "
            "forked from replay's warm server (dag/warm.py)"
        ],
    )


if __name__ == "__main__":
    main()
