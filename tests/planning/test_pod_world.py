"""What the pods will have: the env's config files in the image, and Kedro's `params:` names
defined by an env's parameters (nested keys, DAG params)."""

from __future__ import annotations

from pathlib import Path

from kedro_gcs_bridge.config import parse_config
from kedro_gcs_bridge.planning.grouping import NodeSpec
from kedro_gcs_bridge.planning.image import ImageFilter
from kedro_gcs_bridge.planning.plan import plan_tasks
from kedro_gcs_bridge.planning.pod_world import (
    PodConfig,
    env_problem,
    excluded_config,
    missing_parameters,
    parameter_names,
    runtime_parameter_names,
)

SHIPPED = (Path(__file__).resolve().parents[2] / "docker/Dockerfile.dockerignore").read_text()
IMAGE = ImageFilter.parse(SHIPPED, "docker/Dockerfile.dockerignore")


def test_parameter_names_are_kedros() -> None:
    names = parameter_names({"a": {"base": {"lr": 1}}, "b": [1, 2]})
    assert names == {"params:a", "params:a.base", "params:a.base.lr", "params:b"}


def test_runtime_parameters_define_their_parents() -> None:
    assert runtime_parameter_names(["a.b"]) == {"params:a", "params:a.b"}


def test_credentials_are_meant_to_be_left_out() -> None:
    files = [
        "conf/local/credentials.yml",
        "conf/local/credentials/db.yml",
        "conf/local/catalog.yml",
        "conf/base/catalog.yml",
    ]
    assert excluded_config(files, IMAGE) == {"conf/local/catalog.yml": "conf/local/**"}


def test_an_env_in_the_image_is_no_problem() -> None:
    pods = PodConfig("gcs", "conf", ("conf/base/catalog.yml", "conf/gcs/catalog.yml"), frozenset())
    assert env_problem(pods, IMAGE) is None


def test_nested_namespace_parameters_are_checked_per_task() -> None:
    nodes = [
        NodeSpec("a.base.fit", ("params:a.base.options", "x"), ("y",), namespace="a.base"),
        NodeSpec("a.c1.fit", ("params:a.c1.options", "parameters"), ("z",), namespace="a.c1"),
    ]
    plan = plan_tasks("p", nodes, parse_config({}))
    pods = PodConfig("gcs", "conf", (), parameter_names({"a": {"base": {"options": 1}}}))
    (problem,) = missing_parameters(plan.tasks, nodes, pods)
    assert problem.startswith("task 'a.c1.fit' reads params:a.c1.options, which env 'gcs'")
