"""What the pods will have, not the laptop: the Kedro env they run with in the image, and every
parameter a task reads defined in that env.

A pod runs `kedro run --env <env>` in the image, which holds the project minus what the docker
ignore file leaves out (`planning/image.py`): `conf/local/**` by default. A project whose
catalog or parameters live in the excluded folder runs on the laptop and fails in every pod.
Pure: `dag/create.py` lists the config files and loads the env's parameters; `validate` and
`kedro airflow create` report what these functions find, before any file is written.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kedro_gcs_bridge.planning.grouping import PARAMS_PREFIX

if TYPE_CHECKING:
    from kedro_gcs_bridge.planning.grouping import NodeSpec
    from kedro_gcs_bridge.planning.image import ImageFilter
    from kedro_gcs_bridge.planning.plan import TaskPlan

#: Files Kedro reads as config (OmegaConfigLoader).
CONFIG_SUFFIXES = (".yml", ".yaml", ".json")


@dataclass(frozen=True)
class PodConfig:
    """The config a DAG's pods run with, as the laptop sees it.

    Attributes:
        env: The Kedro env of every pod (`--env`).
        conf_root: The project-relative conf folder ("" when pods read a remote conf source).
        files: Project-relative config files of the base env and of `env`.
        parameters: The `params:` names the env defines (Kedro's names: `params:a.b`).
        elsewhere: `params:` name -> a parameters file of another env that defines it.
    """

    env: str
    conf_root: str
    files: tuple[str, ...]
    parameters: frozenset[str]
    elsewhere: Mapping[str, str] = field(default_factory=dict)


def parameter_names(parameters: Mapping[str, Any]) -> frozenset[str]:
    """Every `params:<key>` Kedro feeds from a parameters dict, nested keys included."""
    names: set[str] = set()
    pending: list[tuple[str, Any]] = list(parameters.items())
    while pending:
        key, value = pending.pop()
        names.add(f"{PARAMS_PREFIX}{key}")
        if isinstance(value, Mapping):
            pending += [(f"{key}.{child}", inner) for child, inner in value.items()]
    return frozenset(names)


def runtime_parameter_names(names: Iterable[str]) -> frozenset[str]:
    """The `params:` names a `kedro run --params a.b=...` defines (`a.b` and `a`)."""
    found: set[str] = set()
    for name in names:
        parts = str(name).split(".")
        found.update(f"{PARAMS_PREFIX}{'.'.join(parts[:end])}" for end in range(1, len(parts) + 1))
    return frozenset(found)


def _is_credentials(relative: str) -> bool:
    """Kedro's credentials files (`credentials*`, `credentials*/**`): meant to stay out of
    the image."""
    return any(part.startswith("credentials") for part in relative.split("/"))


def excluded_config(files: Iterable[str], image: ImageFilter) -> dict[str, str]:
    """Config file -> the ignore rule that leaves it out of the image (credentials skipped:
    pods authenticate through Workload Identity)."""
    ruled = {relative: image.rule_for(relative) for relative in files}
    return {
        relative: rule
        for relative, rule in sorted(ruled.items())
        if rule is not None and not _is_credentials(relative)
    }


def env_problem(pods: PodConfig, image: ImageFilter) -> str | None:
    """Why the pods' env is not in the image, or None when every config file of it is."""
    excluded = excluded_config(pods.files, image)
    if not excluded:
        return None
    rules = sorted(set(excluded.values()))
    shown = ", ".join(list(excluded)[:5]) + (", ..." if len(excluded) > 5 else "")
    folder = posixpath.join(pods.conf_root, pods.env)
    return (
        f"The DAG runs every pod with `--env {pods.env}`, but {image.source} leaves "
        f"{len(excluded)} config file(s) of it out of the image ({shown}; rule(s) "
        f"{', '.join(repr(rule) for rule in rules)}): each pod would run without them. "
        f"Either pass `-e <env>` for an env the image holds (e.g. `kedro gcs-bridge catalog "
        f"--root gs://<bucket> -e gcs` writes one, then `-e gcs`), or move the config out of "
        f"{folder}/ into {posixpath.join(pods.conf_root, 'base')}/ or a new env folder."
    )


def missing_parameters(
    tasks: Sequence[TaskPlan], nodes: Sequence[NodeSpec], pods: PodConfig
) -> list[str]:
    """One line per (task, parameter) a task reads that the pods' env does not define."""
    inputs = {node.name: node.inputs for node in nodes}
    problems = []
    for task in tasks:
        wanted = {
            name
            for node in task.nodes
            for name in inputs.get(node, ())
            if name.startswith(PARAMS_PREFIX)
        }
        problems += [
            f"task {task.task_id!r} reads {name}, which env {pods.env!r} does not define"
            f"{_found_in(pods.elsewhere.get(name), pods.env)}: add it to "
            f"{posixpath.join(pods.conf_root, 'base')}/parameters*.yml (every env) "
            f"or {posixpath.join(pods.conf_root, pods.env)}/parameters*.yml."
            for name in sorted(wanted - pods.parameters)
        ]
    return problems


def _found_in(source: str | None, env: str) -> str:
    return f" ({source} does, which env {env!r} does not read)" if source else ""
