"""The task's start reaches its pod: a generated DAG, loaded by a real Airflow DagBag, renders
`KEDRO_GCS_BRIDGE_TASK_START` from the task instance Airflow 3 hands templates, and replay sets
it when a task starts. The runner measures the pod start from it
(tests/pod/test_runner_pod_start.py); tests/ops/test_finalize.py's real `airflow dags test`
checks that each group's manifest measures it from the start Airflow rendered.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import template_context
from kedro.pipeline import Pipeline, node

from kedro_gcs_bridge.dag.replay import ReplayTask, run_task
from kedro_gcs_bridge.pod.context import TASK_START_ENV

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCAL_DAG_ID = "spaceflights__default__local_local"
STARTED = dt.datetime(2026, 11, 30, 4, 0, 1, 123456, tzinfo=dt.UTC)


def identity(x: Any) -> Any:
    return x


def two_groups() -> Pipeline:
    return Pipeline(
        [
            node(identity, "a", "b", name="first"),
            node(identity, "b", "c", name="second"),
        ]
    )


def only_dag(path: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(path.parent))
    assert not bag.import_errors, bag.import_errors
    (dag,) = bag.dags.values()
    return dag


def pod_env(task: Any, context: dict[str, Any]) -> dict[str, str]:
    task.render_template_fields(context)
    (container,) = task.build_pod_request_obj(dry_run=True).spec.containers
    return {var.name: var.value for var in container.env}


def runtime_ti(start: dt.datetime | None) -> Any:
    """The `ti` Airflow 3 puts in a task's template context (the Task SDK's own class)."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    return RuntimeTaskInstance.model_construct(start_date=start, try_number=1)


class TestRenderedPod:
    def test_every_pod_gets_the_task_instance_start(
        self, render_dag_file: Callable[..., Path]
    ) -> None:
        dag = only_dag(render_dag_file(two_groups()))
        assert len(dag.tasks) >= 2
        for task in dag.tasks:
            env = pod_env(task, template_context(dag) | {"ti": runtime_ti(STARTED)})
            assert env[TASK_START_ENV] == "2026-11-30T04:00:01.123456+00:00"
            assert dt.datetime.fromisoformat(env[TASK_START_ENV]) == STARTED

    def test_a_context_without_a_start_renders_empty(
        self, render_dag_file: Callable[..., Path]
    ) -> None:
        dag = only_dag(render_dag_file(two_groups()))
        for task in dag.tasks:
            # A `ti` with only a try number (replay's), and the Task SDK's with no start.
            assert pod_env(task, template_context(dag))[TASK_START_ENV] == ""
        dag = only_dag(render_dag_file(two_groups()))
        for task in dag.tasks:
            env = pod_env(task, template_context(dag) | {"ti": runtime_ti(None)})
            assert env[TASK_START_ENV] == ""


class TestReplay:
    def test_each_task_is_told_when_it_started(self, tmp_path: Path) -> None:
        show = "import os; print(os.environ['KEDRO_GCS_BRIDGE_TASK_START'])"
        # What a replayed DAG's pod env holds: the template rendered without a start.
        task = ReplayTask(
            "show", (sys.executable, "-c", show), {TASK_START_ENV: ""}, frozenset(), ()
        )
        result = run_task(task, tmp_path, None, pod_start_delay=0.3)
        assert result.state == "success", result.log
        told = dt.datetime.fromisoformat(result.log.strip())
        # The start before the pod start delay, as Airflow's task start precedes the pod.
        assert result.started is not None
        assert abs(told.timestamp() - result.started) < 0.01
        assert told.tzinfo is not None
