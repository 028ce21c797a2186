"""What MLflow tracking adds to a pod's `kedro run`, against an `mlflow server` on loopback.

A throwaway one-node Kedro project (as in pod_overhead.py) is run through GCSRunner with
tracking off (`MLFLOW_TRACKING_URI` unset) and on, against a real `mlflow server` on 127.0.0.1
(its own SQLite store is the server's business: a pod talks HTTP to it, as in production).
Every tracked run is a new DAG run (its own run prefix and run id), so each one does what the
first pod of a DAG run does: looks the experiment up, creates the parent run, logs the
parameters, creates its child run, logs the group's figures and ends it. Variants, interleaved,
`--runs` each after one untimed warm-up each (none with `--quick`), compared by median:

- `off`: no tracking.
- `REST`: the bridge as shipped: MLflow's REST API through `requests`, no `import mlflow`.
- `MlflowClient`: the same calls through `MlflowClient` (`import mlflow` on the pod's critical
  path: what pods paid before).
- `MlflowClient, background import`: as above, with `import mlflow` started in a thread when
  the process starts, overlapping Kedro's start (the other way to take it off the critical path).

The last two force the library client by patching the bridge's URI check before Kedro's CLI
starts; nothing else differs. Target: REST tracking adds <= 0.5 s per pod.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import _common as common
from pod_overhead import make_project

NAME = "tracking"
TARGET_S = 0.5
RUNNER = "kedro_gcs_bridge.GCSRunner"
OFF, REST, LIBRARY, BACKGROUND = "off", "REST", "MlflowClient", "MlflowClient, background import"
VARIANTS = (OFF, REST, LIBRARY, BACKGROUND)

_KEDRO = "from kedro.framework.cli import main; main()"
_LIBRARY = "import kedro_gcs_bridge.tracking.client as c; c.is_rest_uri = lambda uri: False; "
_BACKGROUND = "import threading; threading.Thread(target=__import__, args=('mlflow',)).start(); "
#: How each variant starts `kedro run` (`python -c CODE run --runner ...`).
_CODE = {
    OFF: _KEDRO,
    REST: _KEDRO,
    LIBRARY: _LIBRARY + _KEDRO,
    BACKGROUND: _BACKGROUND + _LIBRARY + _KEDRO,
}


def mlflow_server(folder: Path) -> AbstractContextManager[str]:
    """A real `mlflow server` on 127.0.0.1 (SQLite backend), as the tests start it."""
    sys.path.insert(0, str(common.REPO / "tests"))
    from _mlflow_server import running_mlflow_server

    return running_mlflow_server(folder, wait_seconds=180)


def run_once(project: Path, variant: str, runs: Path, uri: str) -> float:
    """Wall seconds of one whole `kedro run` process of the variant."""
    name = f"r{time.perf_counter_ns()}"
    env = common.child_env(KEDRO_GCS_BRIDGE_RUN_PREFIX=(runs / name).as_uri())
    if variant != OFF:
        env |= {
            "MLFLOW_TRACKING_URI": uri,
            "KEDRO_GCS_BRIDGE_RUN_ID": f"manual__{name}",
            "KEDRO_GCS_BRIDGE_MLFLOW_EXPERIMENT": "tracking-benchmark",
            "KEDRO_GCS_BRIDGE_MLFLOW_REQUIRED": "true",  # a run that did not track fails
        }
    command = [sys.executable, "-c", _CODE[variant], "run", "--runner", RUNNER]
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"kedro run ({variant}) failed:\n{done.stderr[-3000:]}")
    return seconds


def measure(runs: int, warm_up: bool = True) -> tuple[dict[str, list[float]], int]:
    """Seconds per variant, and how many runs the server recorded (parents and children)."""
    root = Path(tempfile.mkdtemp(prefix="bench-tracking-"))
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    try:
        project = make_project(root, package="trackbench")
        (root / "server").mkdir()
        with mlflow_server(root / "server") as uri:
            for variant in VARIANTS if warm_up else ():  # page cache, bytecode, the experiment
                run_once(project, variant, root / "runs", uri)
            for i in range(runs):
                for variant in VARIANTS if i % 2 == 0 else VARIANTS[::-1]:
                    times[variant].append(run_once(project, variant, root / "runs", uri))
            recorded = _count_runs(uri)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return times, recorded


def _count_runs(uri: str) -> int:
    import json

    request = urllib.request.Request(
        f"{uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name=tracking-benchmark"
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        experiment_id = json.load(answer)["experiment"]["experiment_id"]
    body = json.dumps({"experiment_ids": [experiment_id], "max_results": 1000}).encode()
    search = urllib.request.Request(
        f"{uri}/api/2.0/mlflow/runs/search",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(search, timeout=10) as answer:
        return len(json.load(answer).get("runs", []))


def main() -> None:
    args = common.parser(__doc__.splitlines()[0])
    args.add_argument("--runs", type=int, default=None, help="timed runs each (default 7)")
    options = args.parse_args()
    runs = options.runs or (1 if options.quick else 7)
    times, recorded = measure(runs, warm_up=not options.quick)
    medians = {v: common.median(times[v]) for v in VARIANTS}
    extra = {v: medians[v] - medians[OFF] for v in VARIANTS}
    rows: list[dict[str, Any]] = [
        {
            "variant": v,
            "median_s": medians[v],
            "extra_s": extra[v],
            "min_s": min(times[v]),
            "max_s": max(times[v]),
            "runs": times[v],
        }
        for v in VARIANTS
    ]
    print(
        common.table(
            f"`kedro run` through GCSRunner, one-node project, tracking against `mlflow server` "
            f"on 127.0.0.1, {runs} run(s) each, interleaved",
            ["tracking", "median s", "extra s", "min s", "max s"],
            [[r["variant"], r["median_s"], r["extra_s"], r["min_s"], r["max_s"]] for r in rows],
        )
    )
    # Every tracked run is a new DAG run: one parent and one child each, warm-ups included.
    expected = 2 * (len(VARIANTS) - 1) * (runs + (0 if options.quick else 1))
    print(f"\nruns recorded by the server: {recorded} (expected {expected})")
    targets = [
        common.Target(
            "MLflow tracking on (REST), extra wall time per pod",
            f"<= {TARGET_S} s",
            f"{extra[REST]:+.3f} s",
            extra[REST] <= TARGET_S,
        ),
        common.Target(
            "every tracked run recorded its parent and child run",
            f"{expected} runs",
            f"{recorded} runs",
            recorded == expected,
        ),
    ]
    print()
    print(common.targets_table(targets))
    common.write_result(
        NAME,
        {"runs": runs, "runner": RUNNER},
        {"rows": rows, "extra_s": extra, "recorded_runs": recorded},
        targets,
        [
            "Whole `kedro run` process wall time (interpreter start to exit), median.",
            "Tracking against a real `mlflow server` on 127.0.0.1 (SQLite backend on the server "
            "side only); each tracked run is a new DAG run (parent + child created).",
            "MlflowClient variants force the bridge's library client by patching its URI check "
            "before Kedro's CLI starts; the background variant starts `import mlflow` in a "
            "thread at process start.",
        ],
    )


if __name__ == "__main__":
    main()
