"""On-paper wall time of the example project's DAG on GKE Autopilot: GCS handoff vs XCom sidecar.

The tasks come from the package itself: `bootstrap_project(examples/spaceflights)`, the
registered `__default__` pipeline, `node_specs`, and `plan_tasks` with grouping on and off
(the example's `conf/base/airflow.yml`). Node compute is measured by a local in-process replay
(each node run once in topological order on the example's data, nothing written); every other
figure is a stated assumption:

- pod start: 30 s when a node with room is warm, 90 s when Autopilot has to add a node
  (scale-up, image pull included); both are typical figures, not measurements;
- `kedro run` start inside the pod (interpreter, Kedro, pandas, scikit-learn, session):
  5 s (`pod_overhead.py` measures 0.9 s here for a one-node project with warm bytecode; a
  pod starts cold and imports more);
- GCS handoff: per task 5 round trips of fixed work (check_reachable, start_attempt,
  manifest) + 8 per dataset saved + 6 per dataset loaded (`runid_handoff.py` counts these;
  its JSON is used when present), 40 ms each (GKE to a bucket in the same region);
- XCom sidecar, on every task that hands something to another task: +10 s typical (sidecar
  start, then after the main container ends: wait for it, `exec cat`, `exec kill`) and a
  5% chance per task of a hang of 365 s, as reported in apache/airflow #39184 (also #22318,
  #37298, #38115, #45772; the setup this project replaces saw ~5 min on one task).

The DAG's wall time is its longest path with each task weighted by
pod start + kedro start + compute + handoff.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common as common

NAME = "critical_path"
EXAMPLE = common.REPO / "examples" / "spaceflights"
POD_START_S = {"warm node": 30.0, "scale-up": 90.0}
KEDRO_START_S = 5.0
GCS_ROUND_TRIP_S = 0.040
FIXED_ROUND_TRIPS = 5
SAVE_ROUND_TRIPS = 8
LOAD_ROUND_TRIPS = 6
SIDECAR_S = 10.0
HANG_P = 0.05
HANG_S = 365.0
ISSUES = ("apache/airflow#39184", "#22318", "#37298", "#38115", "#45772")


@dataclass(frozen=True)
class Task:
    """What the estimate needs of one planned task."""

    task_id: str
    nodes: tuple[str, ...]
    upstream: tuple[str, ...]
    loads: int
    saves: int
    compute_s: float


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def replay_nodes(pipeline: Any) -> dict[str, float]:
    """Runs every node once, in order, in this process; seconds per node (nothing is saved)."""
    from kedro.config import OmegaConfigLoader
    from kedro.io import DataCatalog

    loader = OmegaConfigLoader(
        conf_source=str(EXAMPLE / "conf"), base_env="base", default_run_env="local"
    )
    catalog = DataCatalog.from_config(loader["catalog"])
    parameters = loader["parameters"]
    values: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    with _cwd(EXAMPLE):
        for node in pipeline.nodes:
            inputs = {}
            for name in node.inputs:
                if name in values:
                    inputs[name] = values[name]
                elif name.startswith("params:"):
                    inputs[name] = _param(parameters, name[len("params:") :])
                elif name == "parameters":
                    inputs[name] = parameters
                else:
                    inputs[name] = catalog.load(name)
            outputs, seconds[node.name] = common.timed(lambda n=node, i=inputs: n.run(i))
            values.update(outputs)
    return seconds


def _param(parameters: Mapping[str, Any], dotted: str) -> Any:
    value: Any = parameters
    for part in dotted.split("."):
        value = value[part]
    return value


def plan(grouping: bool) -> tuple[list[Task], Any]:
    """The example's tasks with grouping on or off, straight from `plan_tasks`."""
    import yaml
    from kedro.framework.project import pipelines

    from kedro_gcs_bridge.config import merge_airflow_config, parse_config
    from kedro_gcs_bridge.planning.plan import node_specs, plan_tasks

    raw = yaml.safe_load((EXAMPLE / "conf" / "base" / "airflow.yml").read_text()) or {}
    merged = merge_airflow_config(raw, "__default__", {"grouping": grouping})
    pipeline = pipelines["__default__"]
    planned = plan_tasks("__default__", node_specs(pipeline), parse_config(merged))
    tasks = [
        Task(t.task_id, t.nodes, t.upstream, len(t.inputs), len(t.outputs), 0.0)
        for t in planned.tasks
    ]
    return tasks, pipeline


def longest_path(tasks: Sequence[Task], weight: Mapping[str, float]) -> tuple[float, list[str]]:
    """(length, task ids) of the heaviest path; tasks are in topological order."""
    best: dict[str, tuple[float, list[str]]] = {}
    for task in tasks:
        before = max((best[up] for up in task.upstream), key=lambda b: b[0], default=(0.0, []))
        best[task.task_id] = (before[0] + weight[task.task_id], [*before[1], task.task_id])
    return max(best.values(), key=lambda b: b[0])


def _round_trips() -> tuple[dict[str, int], str]:
    """Round trips per handoff operation: from runid_handoff.json when present."""
    path = common.RESULTS / "runid_handoff.json"
    counts = {"fixed": FIXED_ROUND_TRIPS, "save": SAVE_ROUND_TRIPS, "load": LOAD_ROUND_TRIPS}
    if not path.exists():
        return counts, "assumed"
    rows = {r["operation"]: r for r in json.loads(path.read_text())["results"]["rows"]}
    with contextlib.suppress(KeyError):
        counts = {
            "fixed": rows["check_reachable"]["round_trips"]
            + rows["start_attempt"]["round_trips"]
            + rows["write_manifest"]["round_trips"],
            "save": rows["save small JSON value"]["round_trips"],
            "load": rows["load small JSON value"]["round_trips"],
        }
        return counts, f"from {path.name}"
    return counts, "assumed"


def estimate(
    tasks: Sequence[Task], pod_start: float, handoff: str, trips: Mapping[str, int]
) -> dict[str, Any]:
    """Wall time of the DAG under one set of assumptions."""
    weight: dict[str, float] = {}
    for task in tasks:
        base = pod_start + KEDRO_START_S + task.compute_s
        if handoff == "GCS":
            rounds = trips["fixed"] + trips["save"] * task.saves + trips["load"] * task.loads
            weight[task.task_id] = base + rounds * GCS_ROUND_TRIP_S
        else:
            pushes = task.saves > 0
            extra = {
                "XCom typical": SIDECAR_S,
                "XCom expected": SIDECAR_S + HANG_P * HANG_S,
                "XCom one hang": SIDECAR_S,
            }[handoff]
            weight[task.task_id] = base + (extra if pushes else 0.0)
    length, path = longest_path(tasks, weight)
    pushing = [t for t in tasks if t.task_id in path and t.saves > 0]
    if handoff == "XCom one hang" and pushing:
        length += HANG_S
    return {
        "seconds": length,
        "path": path,
        "path_tasks": len(path),
        "path_handoffs": len(pushing),
        "p_hang_on_path": 1 - (1 - HANG_P) ** len(pushing) if handoff.startswith("XCom") else 0.0,
    }


def main() -> None:
    args = common.parser(__doc__.splitlines()[0])
    args.parse_args()
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(EXAMPLE)
    # bootstrap_project installs Kedro's rich logging: keep the tables readable.
    for name in ("kedro", "py.warnings", "spaceflights"):
        logging.getLogger(name).setLevel(logging.ERROR)
    trips, trips_source = _round_trips()
    plans: dict[str, list[Task]] = {}
    pipeline = None
    for grouping in (True, False):
        tasks, pipeline = plan(grouping)
        plans["on" if grouping else "off"] = tasks
    started = time.perf_counter()
    node_seconds = replay_nodes(pipeline)
    replay_s = time.perf_counter() - started
    for key, tasks in plans.items():
        plans[key] = [
            Task(
                t.task_id,
                t.nodes,
                t.upstream,
                t.loads,
                t.saves,
                sum(node_seconds[n] for n in t.nodes),
            )
            for t in tasks
        ]

    rows: list[dict[str, Any]] = []
    for grouping, tasks in plans.items():
        for start_name, pod_start in POD_START_S.items():
            for handoff in ("GCS", "XCom typical", "XCom expected", "XCom one hang"):
                result = estimate(tasks, pod_start, handoff, trips)
                rows.append(
                    {
                        "grouping": grouping,
                        "pod_start": start_name,
                        "handoff": handoff,
                        "tasks": len(tasks),
                        "handoffs": sum(t.saves for t in tasks),
                    }
                    | result
                )
    single = {
        name: start + KEDRO_START_S + sum(node_seconds.values())
        for name, start in POD_START_S.items()
    }
    gcs = {(r["grouping"], r["pod_start"]): r["seconds"] for r in rows if r["handoff"] == "GCS"}
    for row in rows:
        row["vs_gcs"] = row["seconds"] / gcs[(row["grouping"], row["pod_start"])]

    print(
        common.table(
            "Tasks of examples/spaceflights (__default__) from plan_tasks",
            ["grouping", "task", "nodes", "upstream", "loads", "saves", "compute s"],
            [
                [
                    g,
                    t.task_id,
                    ", ".join(t.nodes),
                    ", ".join(t.upstream) or "-",
                    t.loads,
                    t.saves,
                    t.compute_s,
                ]
                for g, tasks in plans.items()
                for t in tasks
            ],
        )
    )
    print()
    print(
        common.table(
            "Estimated DAG wall time on Autopilot (longest path)",
            [
                "grouping",
                "pod start",
                "handoff",
                "tasks",
                "path tasks",
                "handoffs on path",
                "P(hang on path)",
                "wall s",
                "x GCS",
            ],
            [
                [
                    r["grouping"],
                    r["pod_start"],
                    r["handoff"],
                    r["tasks"],
                    r["path_tasks"],
                    r["path_handoffs"],
                    r["p_hang_on_path"],
                    r["seconds"],
                    r["vs_gcs"],
                ]
                for r in rows
            ],
        )
    )
    print(
        f"\nnode compute (local replay, {replay_s:.2f} s in all): "
        + ", ".join(f"{n} {s:.3f} s" for n, s in node_seconds.items())
    )
    print(
        "one pod for the whole pipeline (no split, for reference): "
        + ", ".join(f"{name} {s:.0f} s" for name, s in single.items())
    )
    print(
        f"assumptions: pod start {POD_START_S}, kedro start {KEDRO_START_S:g} s, GCS round "
        f"trip {GCS_ROUND_TRIP_S * 1000:g} ms x {trips} ({trips_source}), sidecar "
        f"+{SIDECAR_S:g} s, hang p={HANG_P:g} of {HANG_S:g} s ({', '.join(ISSUES)})"
    )
    common.write_result(
        NAME,
        {
            "pod_start_s": POD_START_S,
            "kedro_start_s": KEDRO_START_S,
            "gcs_round_trip_s": GCS_ROUND_TRIP_S,
            "round_trips": trips,
            "round_trips_source": trips_source,
            "sidecar_s": SIDECAR_S,
            "hang_probability": HANG_P,
            "hang_s": HANG_S,
            "issues": list(ISSUES),
        },
        {
            "tasks": {
                g: [t.__dict__ | {"nodes": list(t.nodes), "upstream": list(t.upstream)} for t in ts]
                for g, ts in plans.items()
            },
            "node_compute_s": node_seconds,
            "estimates": rows,
            "single_pod_s": single,
        },
        [],
        [
            "An on-paper estimate: only node compute is measured (in-process replay of the "
            "example on its own small data).",
            "XCom rows put the sidecar on every task that hands data to another task; the "
            "data itself would still have to go somewhere (XCom carries small values only).",
        ],
    )


if __name__ == "__main__":
    main()
