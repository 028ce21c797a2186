"""Issue 22 item 5, the pod lifecycle from the provider's own issues: a task timeout bounds the
pod too (deferrable pods ignore `execution_timeout`, apache/airflow#67227), deferrable tasks
stream logs, a failed container's log tail lands in the pod status, the cluster endpoint is a
config key, and `durable` is passed only where the installed versions have it (item 4's
range: kedro_gcs_bridge/dag/providers.py)."""

from __future__ import annotations

import copy
import runpy
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import template_context
from kedro.pipeline import Pipeline, node

from kedro_gcs_bridge.dag import providers
from kedro_gcs_bridge.dag.dagfile import build_dag_file
from kedro_gcs_bridge.dag.pod_spec import LOGGING_INTERVAL_SECONDS

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
GPU_CLASS = {"gpu": {"execution_timeout": 90}}


def identity(value: Any) -> Any:
    return value


def two_nodes() -> Pipeline:
    """a -> b, with b on the GPU class (its own timeout)."""
    return Pipeline(
        [
            node(identity, "d0", "d1", name="a"),
            node(identity, "d1", "d2", name="b", tags=["machine.gpu"]),
        ]
    )


def load(path: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a deprecated or ineffective option is a failure here
        bag = DagBag(dag_folder=str(path.parent))
    assert not bag.import_errors, bag.import_errors
    (dag,) = bag.dags.values()
    return dag


def pods(dag: Any) -> dict[str, Any]:
    """task id -> the V1Pod each pod task would start (templates rendered, no cluster)."""
    dag = copy.deepcopy(dag)
    built = {}
    for task in dag.tasks:
        if hasattr(task, "build_pod_request_obj"):
            task.render_template_fields(template_context(dag))
            built[task.task_id] = task.build_pod_request_obj(dry_run=True)
    return built


def pod_tasks(dag: Any) -> list[Any]:
    return [task for task in dag.tasks if hasattr(task, "build_pod_request_obj")]


@pytest.fixture
def dag_of(render_dag_file: Callable[..., Path]) -> Callable[..., Any]:
    def make(**config: Any) -> Any:
        return load(render_dag_file(two_nodes(), cleanup="on_success", **config))

    return make


class TestTimeoutBoundsThePod:
    def test_every_pod_gets_its_tasks_timeout_as_active_deadline(
        self, dag_of: Callable[..., Any]
    ) -> None:
        dag = dag_of(execution_timeout=30, deferrable=True, machine_classes=GPU_CLASS)
        deadlines = {task: pod.spec.active_deadline_seconds for task, pod in pods(dag).items()}
        assert deadlines == {"a": 1800, "b": 5400, "gcs_bridge_finalize": 1800}

    def test_no_timeout_no_deadline(self, dag_of: Callable[..., Any]) -> None:
        assert {pod.spec.active_deadline_seconds for pod in pods(dag_of()).values()} == {None}


class TestLogs:
    def test_deferrable_tasks_stream_logs(self, dag_of: Callable[..., Any]) -> None:
        for task in pod_tasks(dag_of(deferrable=True)):
            assert task.deferrable is True
            assert task.logging_interval == LOGGING_INTERVAL_SECONDS

    def test_a_failed_containers_log_tail_is_its_termination_message(
        self, dag_of: Callable[..., Any]
    ) -> None:
        for pod in pods(dag_of()).values():
            assert pod.spec.containers[0].termination_message_policy == "FallbackToLogsOnError"


class TestClusterEndpoint:
    def test_defaults_are_the_public_endpoint(self, dag_of: Callable[..., Any]) -> None:
        for task in pod_tasks(dag_of()):
            assert (task.use_dns_endpoint, task.use_internal_ip) == (False, False)

    @pytest.mark.parametrize("key", ["use_dns_endpoint", "use_internal_ip"])
    def test_each_key_reaches_every_pod_task(self, key: str, dag_of: Callable[..., Any]) -> None:
        tasks = pod_tasks(dag_of(pod={key: True}))
        assert len(tasks) == 3
        assert all(getattr(task, key) is True for task in tasks)

    @pytest.mark.parametrize("key", ["use_dns_endpoint", "use_internal_ip"])
    def test_a_bad_value_names_the_key(self, key: str) -> None:
        dag = build_dag_file({**VARIABLES, "pipeline": two_nodes(), "pod": {key: "maybe"}})
        assert dag.plan is None and f"pod.{key}" in (dag.error or "")


class TestRefusedAtCreateTime:
    """Options the oldest supported provider set would run wrongly stop `kedro airflow
    create` with the versions they need; no DAG file holds them."""

    def test_dns_endpoint_with_deferrable(self, render_dag_file: Callable[..., Path]) -> None:
        config = {"pod": {"use_dns_endpoint": True, "deferrable": True}}
        dag = build_dag_file({**VARIABLES, "pipeline": two_nodes(), **config})
        assert dag.plan is None
        error = dag.error or ""
        assert "'pod.use_dns_endpoint: true' with 'pod.deferrable: true'" in error
        assert "21.3.0" in error and providers.OLDEST[providers.GOOGLE] in error
        text = render_dag_file(two_nodes(), **config).read_text("utf-8")
        assert "raise ImportError" in text and "GKEStartPodOperator" not in text

    def test_both_endpoints(self) -> None:
        config = {"pod": {"use_dns_endpoint": True, "use_internal_ip": True}}
        dag = build_dag_file({**VARIABLES, "pipeline": two_nodes(), **config})
        assert dag.plan is None and "set only one of them" in (dag.error or "")

    def test_local_processes_have_no_endpoint_to_refuse(self, tmp_path: Path) -> None:
        config = {"pod": {"use_dns_endpoint": True, "deferrable": True}, "pod_backend": "local"}
        local = {**VARIABLES, "local_root": tmp_path.as_uri(), "gcs_bridge_root": None}
        dag = build_dag_file({**local, "pipeline": two_nodes(), **config})
        assert dag.error is None, dag.error


class TestNewerOptions:
    def test_the_oldest_set_lacks_durable_and_the_newest_has_it(self) -> None:
        assert not providers.has(providers.OLDEST, "durable")
        assert providers.has(providers.NEWEST, "durable")
        assert providers.newer_options() == [
            (
                {"airflow.providers.cncf.kubernetes": "10.20.0", "airflow": "3.3.0"},
                {"durable": True},
            )
        ]

    @pytest.mark.parametrize("option", sorted(providers.OPTION_SINCE))
    def test_every_option_of_the_table_is_in_the_oldest_set_or_passed_conditionally(
        self, option: str
    ) -> None:
        """What the DAG file writes unconditionally, every supported set must accept."""
        conditional = {name for _, options in providers.newer_options() for name in options}
        assert providers.has(providers.OLDEST, option) or option in conditional

    @pytest.mark.parametrize("option", sorted(providers.OPTION_SINCE))
    def test_the_installed_operator_takes_every_option_of_the_table(self, option: str) -> None:
        import inspect

        from airflow.providers.google.cloud.operators.kubernetes_engine import (
            GKEStartPodOperator,
        )

        names = {
            name
            for cls in GKEStartPodOperator.__mro__
            if "__init__" in vars(cls)
            for name in inspect.signature(cls.__init__).parameters
        }
        assert option in names

    def test_the_installed_newest_set_gets_durable(
        self, render_dag_file: Callable[..., Path]
    ) -> None:
        from importlib.metadata import version

        installed = {dist: version(dist) for dist in providers.NEWEST}
        assert providers.has(installed, "durable")  # this venv is the newest set
        path = render_dag_file(two_nodes())
        assert runpy.run_path(str(path))["POD_DEFAULTS"]["durable"] is True
        assert all(task.durable is True for task in pod_tasks(load(path)))

    def test_an_older_set_does_not_get_it(
        self, render_dag_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The DAG file asks the installed modules, at parse time (the old venv itself is
        tests/test_providers.py)."""
        import airflow.providers.cncf.kubernetes as cncf

        path = render_dag_file(two_nodes())
        monkeypatch.setattr(cncf, "__version__", "10.8.2")
        assert "durable" not in runpy.run_path(str(path))["POD_DEFAULTS"]
        monkeypatch.setattr(cncf, "__version__", "10.20.0")
        assert runpy.run_path(str(path))["POD_DEFAULTS"]["durable"] is True

    def test_the_modules_are_the_distributions(self) -> None:
        from importlib import import_module
        from importlib.metadata import version

        for dist, module in providers.MODULES.items():
            assert import_module(module).__version__ == version(dist)

    @pytest.mark.parametrize("name", ["version", "Version", "_installed", "_options"])
    def test_a_node_named_like_the_check_changes_nothing(
        self, name: str, render_dag_file: Callable[..., Path]
    ) -> None:
        pipeline = Pipeline([node(identity, "d0", "d1", name=name)])
        path = render_dag_file(pipeline)
        assert runpy.run_path(str(path))["POD_DEFAULTS"]["durable"] is True
        assert {task.task_id for task in pod_tasks(load(path))} == {name}

    def test_version_parsing(self) -> None:
        assert providers.has({providers.CNCF: "10.20.1", providers.AIRFLOW: "3.3"}, "durable")
        assert not providers.has({providers.CNCF: "10.9.0", providers.AIRFLOW: "3.3.2"}, "durable")
        assert not providers.has({}, "durable")
