"""Issue 16 item 4 on a synthetic fan-out: the cost model's makespan against real replays with a
pod start delay, and a suggested `groups:` block pasted into airflow.yml.

The project is written on the fly: one source node, `BRANCHES` parallel chains of `STEPS`
nodes that each sleep `STEP_SLEEP` seconds and pass a small frame, and a join that writes the
result (both sleep `END_SLEEP`). Ungrouped it is `2 + BRANCHES * STEPS` tasks on a critical path
of `2 + STEPS`. `BRANCHES` is no more than this machine's CPUs (2 in CI): pods each have their
own CPU, and `kedro run` starting in more processes than CPUs starts slower than in a pod.
The suggestion is one pod per branch, or one pod for all when the `kedro run` start the replay
measured outweighs a branch's sleeps (a loaded machine): either replays faster than ungrouped.
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from _processes import run
from conftest import EXAMPLE, TEMPLATE, kedro_env

from kedro_gcs_bridge.planning.naming import run_segment

BIN = Path(sys.executable).parent
RUN_ID = "manual__2026-11-30T05:00:00+00:00"
BRANCHES = 2
STEPS = 3
STEP_SLEEP = 2.5
END_SLEEP = 0.2
DELAY = 0.5
ROWS = 50

pytestmark = pytest.mark.slow

_NODES = '''\
"""Nodes of a synthetic fan-out: each sleeps a known time and passes a small frame."""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd

STEP_SLEEP = {step_sleep}
END_SLEEP = {end_sleep}


def source(rows: int) -> pd.DataFrame:
    time.sleep(END_SLEEP)
    return pd.DataFrame({{"x": range(rows)}})


def step(branch: int, number: int) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def run_step(frame: pd.DataFrame) -> pd.DataFrame:
        time.sleep(STEP_SLEEP)
        return frame.assign(x=frame["x"] * (number + 2) + branch)

    return run_step


def join(*frames: pd.DataFrame) -> dict[str, int]:
    time.sleep(END_SLEEP)
    return {{f"branch_{{i}}": int(frame["x"].sum()) for i, frame in enumerate(frames)}}
'''

_REGISTRY = '''\
"""Project pipelines: source -> {branches} chains of {steps} steps -> join."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fanout.nodes import join, source, step


def register_pipelines() -> dict[str, Pipeline]:
    nodes = [Node(source, "params:rows", "s", name="source")]
    ends = []
    for branch in range({branches}):
        last = "s"
        for number in range({steps}):
            name = f"b{{branch}}_{{number}}"
            nodes.append(Node(step(branch, number), last, f"{{name}}_out", name=name))
            last = f"{{name}}_out"
        ends.append(last)
    nodes.append(Node(join, ends, "result", name="join"))
    return {{"__default__": Pipeline(nodes)}}
'''

_PYPROJECT = """\
[tool.kedro]
package_name = "fanout"
project_name = "fanout"
kedro_init_version = "1.7.0"
source_dir = "src"
"""


def write_fanout_project(root: Path) -> Path:
    """A Kedro project `fanout` under `root/fanout`, with the example's airflow.yml."""
    project = root / "fanout"
    package = project / "src" / "fanout"
    package.mkdir(parents=True)
    (project / "conf" / "local").mkdir(parents=True)
    files = {
        project / "pyproject.toml": _PYPROJECT,
        package / "__init__.py": '"""Synthetic fan-out project."""\n',
        package / "settings.py": '"""Kedro defaults."""\n',
        package / "nodes.py": _NODES.format(step_sleep=STEP_SLEEP, end_sleep=END_SLEEP),
        package / "pipeline_registry.py": _REGISTRY.format(branches=BRANCHES, steps=STEPS),
        project / "conf" / "base" / "parameters.yml": f"rows: {ROWS}\n",
        project / "conf" / "base" / "catalog.yml": textwrap.dedent(
            """\
            result:
              type: json.JSONDataset
              filepath: data/result.json
            """
        ),
        project / "conf" / "base" / "airflow.yml": (EXAMPLE / "conf/base/airflow.yml").read_text(
            encoding="utf-8"
        ),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return project


def _create(project: Path, env: dict[str, str], *params: str) -> Path:
    """`kedro airflow create -j templates/gcs_bridge.j2`; returns the DAG file it wrote."""
    target = project / "airflow_dags"
    before = set(target.glob("*.py")) if target.exists() else set()
    args = [str(BIN / "kedro"), "airflow", "create", "-j", str(TEMPLATE), "-t", str(target)]
    result = run([*args, "--params", ",".join((*params, "local_disk=warn"))], project, env)
    assert result.returncode == 0, result.stderr[-3000:]
    (written,) = set(target.glob("*.py")) - before
    return written


def expected_result() -> dict[str, int]:
    """What the join writes: each branch's steps applied to 0..ROWS-1, summed."""
    found = {}
    for branch in range(BRANCHES):
        values = list(range(ROWS))
        for number in range(STEPS):
            values = [x * (number + 2) + branch for x in values]
        found[f"branch_{branch}"] = sum(values)
    return found


def _replay(project: Path, dag: Path, env: dict[str, str], kept: Path) -> str:
    args = [str(BIN / "kedro"), "gcs-bridge", "replay", str(dag), "--run-id", RUN_ID]
    args += ["--prefix", (project / "runs").as_uri(), "--keep-task-dirs", str(kept)]
    args += ["--parallel", str(BRANCHES), "--pod-start-delay", str(DELAY)]
    result = run(args, project, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _figure(out: str, pattern: str) -> float:
    found = re.search(pattern, out)
    assert found, out[-3000:]
    return float(found.group(1))


def _result_json(kept: Path) -> dict[str, int]:
    """result.json as the join's task left it in its own copy of the project."""
    (path,) = kept.glob("*/project/data/result.json")
    return json.loads(path.read_text(encoding="utf-8"))


def _suggest(project: Path, env: dict[str, str], dag_id: str, out: str) -> dict[str, Any]:
    """`suggest --format json` with the constants this replay measured (its last line)."""
    prefix = f"{(project / 'runs').as_uri()}/{dag_id}/{run_segment(RUN_ID)}"
    kedro_start = _figure(out, r"--kedro-start ([\d.]+)")
    args = [str(BIN / "kedro"), "gcs-bridge", "suggest", "--from", prefix, "--format", "json"]
    args += ["--pod-start", str(DELAY), "--kedro-start", str(kedro_start), "--round-trip-ms", "0"]
    result = run(args, project, env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout[result.stdout.index("{") :])


def _paste_groups(project: Path, groups: dict[str, list[str]]) -> None:
    airflow_yml = project / "conf" / "base" / "airflow.yml"
    config = yaml.safe_load(airflow_yml.read_text(encoding="utf-8"))
    config["default"]["groups"] = groups
    airflow_yml.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


#: What the ungrouped DAG's critical path cannot take less than, by configuration: each of its
#: `2 + STEPS` tasks waits the pod start delay, and its nodes sleep their configured time.
CRITICAL_FLOOR = (2 + STEPS) * DELAY + 2 * END_SLEEP + STEPS * STEP_SLEEP


@pytest.mark.skipif((os.cpu_count() or 1) < BRANCHES, reason="fewer CPUs than branches")
def test_model_and_suggested_groups_replay_to_same_outputs(tmp_path: Path) -> None:
    """The model's figures are bounded by configuration (delays and sleeps), not compared with
    the replay's clock: how close the model comes is a measurement, printed for
    docs/benchmarks.md."""
    project = write_fanout_project(tmp_path)
    env = kedro_env() | {"AIRFLOW_HOME": str(tmp_path / "airflow_home")}
    ungrouped_dag = _create(project, env, "grouping=false")
    out = _replay(project, ungrouped_dag, env, tmp_path / "kept-ungrouped")
    assert f"({2 + BRANCHES * STEPS} tasks)" in out
    # Every ready task started at once, as on Autopilot: the model assumes nothing else.
    assert "for a free --parallel slot" not in out
    measured = _figure(out, r"makespan: ([\d.]+) s")
    assert measured >= CRITICAL_FLOOR
    model = _suggest(project, env, "fanout__default__local_ungrouped", out)
    assert model["model"]["pod_start_s"] == DELAY
    assert model["ungrouped"]["tasks"] == 2 + BRANCHES * STEPS
    assert model["ungrouped"]["makespan_s"] >= CRITICAL_FLOOR
    assert _result_json(tmp_path / "kept-ungrouped") == expected_result()

    suggested = model["suggested"]
    assert suggested["tasks"] < model["ungrouped"]["tasks"]
    assert suggested["makespan_s"] < model["ungrouped"]["makespan_s"]  # same measured inputs
    _paste_groups(project, suggested["groups"])
    grouped_dag = _create(project, env)
    grouped_out = _replay(project, grouped_dag, env, tmp_path / "kept-grouped")
    # Replay loaded it with Airflow's DagBag: one pod task per suggested group.
    assert f"fanout__default__local ({suggested['tasks']} tasks)" in grouped_out
    assert "for a free --parallel slot" not in grouped_out
    faster = _figure(grouped_out, r"makespan: ([\d.]+) s")
    remodel = _suggest(project, env, "fanout__default__local", grouped_out)
    assert remodel["current"]["tasks"] == suggested["tasks"]
    # At least one pod start and every node's sleep on a branch, whatever the grouping.
    assert faster >= DELAY + 2 * END_SLEEP + STEPS * STEP_SLEEP
    assert _result_json(tmp_path / "kept-grouped") == expected_result()
    # The figures, for docs/benchmarks.md (`pytest -s`).
    print(f"\nungrouped: {measured} s measured, {model['ungrouped']['makespan_s']} s model")
    print(
        f"suggested ({suggested['tasks']} tasks): {faster} s measured, "
        f"{suggested['makespan_s']} s predicted, {remodel['current']['makespan_s']} s model"
    )
