"""The DAG file: Python literals, the DagFile spec, and the real template rendered in-process for
pipelines and configs the example project cannot express, loaded by a real Airflow DagBag."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import RUN_ID, template_context
from hypothesis import given, settings
from hypothesis import strategies as st
from kedro.pipeline import Pipeline, node

from kedro_gcs_bridge.dag.dagfile import build_dag_file, py_literal
from kedro_gcs_bridge.planning.naming import run_segment

RFC1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=25,
)


def identity(value: Any) -> Any:
    return value


def chain(*names: str, tags: dict[str, list[str]] | None = None) -> Pipeline:
    """A pipeline n0 -> n1 -> ... with the given node names."""
    tags = tags or {}
    return Pipeline(
        [
            node(identity, f"d{i}", f"d{i + 1}", name=name, tags=tags.get(name))
            for i, name in enumerate(names)
        ]
    )


def load(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(dag id -> DAG, file -> import error) of a DAG folder, read by Airflow."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(path.parent))
    return dict(bag.dags), dict(bag.import_errors)


def only_dag(path: Path) -> Any:
    dags, errors = load(path)
    assert not errors, errors
    (dag,) = dags.values()
    return dag


class TestPyLiteral:
    @settings(max_examples=200, deadline=None)
    @given(json_values, st.sampled_from([0, 8, 60]))
    def test_round_trips_through_python(self, value: Any, indent: int) -> None:
        assert ast.literal_eval(py_literal(value, indent)) == value

    def test_long_containers_are_split_one_item_per_line(self) -> None:
        value = {"arguments": [f"argument_number_{i}" for i in range(10)]}
        lines = py_literal(value, indent=8).splitlines()
        assert all(len(line) <= 100 for line in lines[1:])
        assert len([line for line in lines if "argument_number_" in line]) == 10

    def test_refuses_values_it_cannot_write(self) -> None:
        with pytest.raises(TypeError, match="cannot write"):
            py_literal({"when": datetime(2023, 1, 1)})


class TestBuildDagFile:
    VARIABLES: dict[str, Any] = {
        "pipeline_name": "__default__",
        "env": "local",
        "package_name": "pkg",
        "gcp_project_id": "p",
        "gcp_region": "r",
        "gcp_gke_cluster_name": "c",
        "docker_image": "i",
        "gcs_bridge_root": "gs://b/r",
    }

    def test_missing_deployment_keys_are_an_error_naming_them(self) -> None:
        variables = {**self.VARIABLES, "gcs_bridge_root": None, "docker_image": ""}
        dag = build_dag_file({**variables, "pipeline": chain("a")})
        assert dag.plan is None
        assert "misses ['docker_image', 'gcs_bridge_root']" in (dag.error or "")

    def test_config_error_is_returned_not_raised(self) -> None:
        dag = build_dag_file({**self.VARIABLES, "pipeline": chain("a"), "retries": "many"})
        assert dag.plan is None
        assert "'retries' must be a whole number" in (dag.error or "")

    def test_conf_source_is_passed_to_kedro_run(self) -> None:
        variables = {**self.VARIABLES, "pipeline": chain("a"), "conf_source": "conf.tar.gz"}
        dag = build_dag_file(variables)
        assert dag.plan is not None
        assert dag.arguments(dag.plan.tasks[0])[-2:] == ["--conf-source", "conf.tar.gz"]

    def test_dag_id_from_config_wins(self) -> None:
        dag = build_dag_file({**self.VARIABLES, "pipeline": chain("a"), "dag_id": "nightly"})
        assert dag.dag_id == "nightly"

    @pytest.mark.parametrize(
        ("pipeline_name", "env", "command"),
        [
            ("__default__", "local", "kedro airflow create -j templates/gcs_bridge.j2"),
            ("ds", "prod", "kedro airflow create -j templates/gcs_bridge.j2 -p ds -e prod"),
        ],
    )
    def test_file_says_how_to_regenerate_it(
        self, pipeline_name: str, env: str, command: str
    ) -> None:
        variables = {**self.VARIABLES, "pipeline_name": pipeline_name, "env": env}
        assert build_dag_file({**variables, "pipeline": chain("a")}).create_command() == command


class TestRenderedTemplate:
    def test_config_reaches_the_dag(self, render_dag_file: Callable[..., Path]) -> None:
        path = render_dag_file(
            chain("a"),
            schedule_interval="@daily",
            start_date=[2024, 5, 6, 7, 8],
            catchup=True,
            max_active_runs=2,
            owner="data-team",
            retries=3,
            retry_delay=1.5,
            tags=["nightly"],
            dag_id="custom_id",
        )
        dag = only_dag(path)
        assert dag.dag_id == "custom_id"
        assert dag.start_date == datetime(2024, 5, 6, 7, 8, tzinfo=UTC)
        assert (dag.catchup, dag.max_active_runs) == (True, 2)
        assert dag.schedule == "@daily"
        assert {"nightly", "kedro", "pkg"} <= set(dag.tags)
        task = dag.get_task("a")
        assert (task.owner, task.retries, task.retry_delay) == (
            "data-team",
            3,
            timedelta(minutes=1.5),
        )

    def test_unusual_node_names_give_a_loadable_dag(
        self, render_dag_file: Callable[..., Path]
    ) -> None:
        # Kedro allows [\w.-]+: these slugify alike, hold non-ASCII, dots or digits first.
        names = ["a-b", "a_b", "A_B", "a.b", "Grüße", "ns.node", "n" * 300, "1st"]
        dag = only_dag(render_dag_file(chain(*names)))
        assert len(dag.task_ids) == len(names)
        ran: list[str] = []
        for task in dag.tasks:
            task.render_template_fields(template_context(dag))
            pod = task.build_pod_request_obj(dry_run=True)
            assert len(pod.metadata.name) <= 63 and RFC1123_LABEL.match(pod.metadata.name)
            args = pod.spec.containers[0].args
            ran.append(args[args.index("--nodes") + 1])
        # Pods run the nodes by their real names, whatever the task ids became.
        assert sorted(ran) == sorted(names)

    @pytest.mark.parametrize(
        "name",
        [
            "dag",
            "k8s",
            "datetime",
            "timedelta",
            "timezone",
            "annotations",
            "DAG",
            "RUN_ENV",
            "POD_DEFAULTS",
            "RESOURCES",
            "GKEStartPodOperator",
            "BashOperator",
            "PROJECT_PATH",
        ],
    )
    def test_node_named_like_a_dag_file_variable(
        self, name: str, render_dag_file: Callable[..., Path]
    ) -> None:
        dag = only_dag(render_dag_file(chain(name, "after")))
        assert sorted(dag.task_ids) == sorted([name, "after"])
        assert dag.get_task("after").upstream_task_ids == {name}

    def test_planning_error_gives_a_file_that_fails_with_the_message(
        self, render_dag_file: Callable[..., Path]
    ) -> None:
        # What the template writes if it is ever rendered without the hook's check.
        cyclic = chain("a", "b", "c", tags={"a": ["airflow.g"], "c": ["airflow.g"]})
        dags, errors = load(render_dag_file(cyclic))
        assert not dags
        (error,) = errors.values()
        assert "invalid grouping that creates a cycle" in error
        assert "{'b', 'c'}" in error

    def test_run_prefix_uses_the_configured_root(
        self, render_dag_file: Callable[..., Path]
    ) -> None:
        dag = only_dag(render_dag_file(chain("a"), gcs_bridge_root="gs://other/root/"))
        task = dag.get_task("a")
        task.render_template_fields(template_context(dag))
        (container,) = task.build_pod_request_obj(dry_run=True).spec.containers
        env = {var.name: var.value for var in container.env}
        assert env["KEDRO_GCS_BRIDGE_RUN_PREFIX"] == (
            f"gs://other/root/pkg__default__local/{run_segment(RUN_ID)}"
        )
