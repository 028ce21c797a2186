"""The plan: the Airflow tasks of one pipeline, computed once in Python.

`plan_tasks` is the single source of truth for groups, edges, names, machine classes and
boundary datasets. `kedro gcs-bridge plan|validate`, the hook that guards `kedro airflow
create`, the DAG template and the runner all call it; the template only renders its result.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from kedro_gcs_bridge.config import BridgeConfig
from kedro_gcs_bridge.errors import PlanError
from kedro_gcs_bridge.planning.grouping import (
    Grouping,
    NodeSpec,
    base_name,
    boundary_datasets,
    group_pipeline,
    node_specs,
)
from kedro_gcs_bridge.planning.machines import MachineClass, check_autopilot
from kedro_gcs_bridge.planning.naming import nameless, pod_names, python_names, task_ids

#: The finalize task's id (a suffix `_1`, `_2`, ... keeps it apart from a group's).
FINALIZE_TASK = "gcs_bridge_finalize"
#: Finalize is cheap and idempotent: transient GCS or MLflow errors are retried.
FINALIZE_RETRIES = 2
#: Seconds between finalize attempts.
FINALIZE_RETRY_DELAY = 15
#: The task that fails the DAG run when a group failed (suffixed like finalize's when taken).
#: Finalize reports the verdict and succeeds, so Airflow never retries it for a verdict that
#: a retry cannot change (on GKE each retry is one more pod).
RUN_FAILED_TASK = "gcs_bridge_run_failed"


@dataclass(frozen=True)
class TaskPlan:
    """One Airflow task: a group of nodes in one pod.

    Attributes:
        group: The group name (`airflow.<group>` tag, or the node's name).
        task_id: Airflow task id.
        pod_name: Kubernetes pod name (before the operator's random suffix).
        var_name: Python variable for the task in the DAG file.
        nodes: Node names, in topological order.
        machine: The machine class the pod gets.
        upstream: Task ids this task waits for.
        inputs: Boundary datasets loaded from the run prefix, with the producing task id.
        outputs: Boundary datasets saved to the run prefix.
        retries: Airflow retries (more for Spot classes).
    """

    group: str
    task_id: str
    pod_name: str
    var_name: str
    nodes: tuple[str, ...]
    machine: MachineClass
    upstream: tuple[str, ...]
    inputs: tuple[tuple[str, str], ...]
    outputs: tuple[str, ...]
    retries: int


@dataclass(frozen=True)
class Plan:
    """The tasks of one pipeline's DAG, plus the warnings found while planning.

    `tasks` are the group tasks; `finalize` is the DAG's last task (MLflow parent status,
    verdict, cleanup), planned here like any task, or None when the config needs none;
    `run_failed`, with finalize, fails the DAG run when a group failed. `renamed` holds
    (group, task id) for each group whose name is not its task id as it is.
    """

    pipeline_name: str
    tasks: tuple[TaskPlan, ...]
    warnings: tuple[str, ...]
    finalize: TaskPlan | None = None
    run_failed: TaskPlan | None = None

    @property
    def renamed(self) -> tuple[tuple[str, str], ...]:
        """(group, task id) for each group whose task id is not its name."""
        return tuple((t.group, t.task_id) for t in self.tasks if t.group != t.task_id)

    def task(self, task_id: str) -> TaskPlan:
        """The task with this id."""
        return self._by_id[task_id]

    @functools.cached_property
    def _by_id(self) -> dict[str, TaskPlan]:
        return {task.task_id: task for task in self.tasks}

    def edges(self) -> list[tuple[str, str]]:
        """(upstream task id, downstream task id), in task order."""
        return [(up, task.task_id) for task in self.tasks for up in task.upstream]


def machine_tags(node: NodeSpec, prefix: str) -> list[str]:
    """The machine classes a node's `machine.<class>` tags name (`prefix`: the config's
    `resources_tag_prefix`), in tag order: the one reader of those tags."""
    return [tag[len(prefix) :] for tag in sorted(node.tags) if tag.startswith(prefix)]


def node_classes(nodes: Sequence[NodeSpec], config: BridgeConfig) -> dict[str, str]:
    """Node -> the machine class its pod gets on its own, as the plan chooses it: the largest
    class its tags name, else the default class; a class the config lacks keeps its name."""
    found = {}
    for node in nodes:
        machine, _, _ = _machine_for_group(node.name, [node], config)
        tagged = machine_tags(node, config.resources_tag_prefix)
        found[node.name] = machine.name if machine is not None else tagged[0]
    return found


def _machine_for_group(
    group: str,
    nodes: Sequence[NodeSpec],
    config: BridgeConfig,
) -> tuple[MachineClass | None, list[str], list[str]]:
    """The group's machine class, with errors and warnings about its machine tags."""
    prefix = config.resources_tag_prefix
    wanted: dict[str, list[str]] = {}
    for node in nodes:
        for name in machine_tags(node, prefix):
            wanted.setdefault(name, []).append(node.name)
    errors = [
        f"unknown machine class '{name}' (tag '{prefix}{name}') on node(s) {sorted(users)}; "
        f"known classes: {sorted(config.machine_classes)}. Define it under machine_classes "
        "in airflow.yml or fix the tag."
        for name, users in sorted(wanted.items())
        if name not in config.machine_classes
    ]
    if errors:
        return None, errors, []
    if not wanted:
        return config.machine_classes[config.default_machine_class], [], []
    classes = [config.machine_classes[name] for name in wanted]
    chosen = max(classes, key=MachineClass.size_key)
    warnings = []
    if len(classes) > 1:
        detail = ", ".join(f"'{name}' on {sorted(users)}" for name, users in sorted(wanted.items()))
        warnings.append(
            f"group '{group}' has nodes with different machine tags ({detail}); the pod uses "
            f"the largest, '{chosen.name}' ({chosen.describe()}), because all its nodes share "
            "one pod. Tag them alike or split the group."
        )
    return chosen, [], warnings


def _members(nodes: Sequence[NodeSpec], grouping: Grouping) -> dict[str, list[NodeSpec]]:
    members: dict[str, list[NodeSpec]] = {}
    for node in nodes:
        members.setdefault(grouping.group_of[node.name], []).append(node)
    return members


def finalize_machine(config: BridgeConfig) -> MachineClass:
    """The finalize pod's class: the smallest one not on Spot (it only talks to GCS and MLflow)."""
    classes = [machine for machine in config.machine_classes.values() if not machine.spot]
    chosen = classes or list(config.machine_classes.values())
    return min(chosen, key=lambda machine: (machine.size_key(), machine.name))


def _check_machines(
    members: Mapping[str, Sequence[NodeSpec]], config: BridgeConfig
) -> tuple[dict[str, MachineClass], list[str], list[str]]:
    """Each group's machine class, with the problems and warnings of every class used."""
    machines: dict[str, MachineClass] = {}
    problems: list[str] = []
    warnings: list[str] = []
    for group_name, group_nodes in members.items():
        machine, errors, notes = _machine_for_group(group_name, group_nodes, config)
        problems += errors
        warnings += notes
        if machine is not None:
            machines[group_name] = machine
    used = {machine.name: machine for machine in machines.values()}
    if config.finalize:
        used.setdefault(finalize_machine(config).name, finalize_machine(config))
    for machine in used.values():
        check = check_autopilot(machine)
        problems += check.errors
        warnings += check.warnings
    return machines, problems, warnings


def _metrics_warnings(nodes: Sequence[NodeSpec], config: BridgeConfig) -> list[str]:
    made = {base_name(output) for node in nodes for output in node.outputs}
    return [
        f"mlflow.metrics names '{name}', which no node of this pipeline outputs; nothing is "
        "logged for it. Fix the name or remove it."
        for name in config.mlflow.metrics
        if name not in made
    ]


def _group_tasks(
    grouping: Grouping, machines: Mapping[str, MachineClass], config: BridgeConfig, pod_prefix: str
) -> list[TaskPlan]:
    """One task per group, with its upstream tasks and the boundary datasets it moves."""
    names = [group.name for group in grouping.groups]
    ids = task_ids(names)
    pods = pod_names(names, pod_prefix)
    variables = python_names(ids.values())
    # One pass over the edges: looking them up per group is O(groups x edges).
    into: dict[str, list[tuple[str, frozenset[str]]]] = {}
    out_of: dict[str, set[str]] = {}
    for (up, down), datasets in grouping.edges.items():
        into.setdefault(down, []).append((up, datasets))
        out_of.setdefault(up, set()).update(datasets)
    tasks = []
    for group in grouping.groups:
        edges_in = into.get(group.name, [])
        machine = machines[group.name]
        tasks.append(
            TaskPlan(
                group=group.name,
                task_id=ids[group.name],
                pod_name=pods[group.name],
                var_name=variables[ids[group.name]],
                nodes=group.nodes,
                machine=machine,
                upstream=tuple(sorted(ids[up] for up, _ in edges_in)),
                inputs=tuple(sorted((ds, ids[up]) for up, datasets in edges_in for ds in datasets)),
                outputs=tuple(sorted(out_of.get(group.name, set()))),
                retries=config.retries + (config.spot_retries if machine.spot else 0),
            )
        )
    return tasks


def _free_names(base: str, taken: set[str], pod_prefix: str) -> tuple[str, str, str]:
    """Task id, pod name and variable for `base`, suffixed `_1`, `_2`, ... until none is taken."""
    for i in range(len(taken) + 1):
        task_id = base + (f"_{i}" if i else "")
        pod = pod_names([task_id], pod_prefix)[task_id]
        variable = python_names([task_id])[task_id]
        if not {task_id, pod, variable} & taken:
            break
    return task_id, pod, variable


def _names_of(tasks: Sequence[TaskPlan]) -> set[str]:
    return {name for task in tasks for name in (task.task_id, task.pod_name, task.var_name)}


def _finalize_task(tasks: Sequence[TaskPlan], config: BridgeConfig, pod_prefix: str) -> TaskPlan:
    """The last task: after every leaf task, whatever its outcome (see ops/finalize.py)."""
    task_id, pod, variable = _free_names(FINALIZE_TASK, _names_of(tasks), pod_prefix)
    with_downstream = {up for task in tasks for up in task.upstream}
    machine = finalize_machine(config)
    return TaskPlan(
        group=FINALIZE_TASK,
        task_id=task_id,
        pod_name=pod,
        var_name=variable,
        nodes=(),
        machine=machine,
        upstream=tuple(task.task_id for task in tasks if task.task_id not in with_downstream),
        inputs=(),
        outputs=(),
        retries=FINALIZE_RETRIES + (config.spot_retries if machine.spot else 0),
    )


def _run_failed_task(tasks: Sequence[TaskPlan], final: TaskPlan, pod_prefix: str) -> TaskPlan:
    """The task that fails the run once any group failed (Airflow's `one_failed`; no pod)."""
    task_id, pod, variable = _free_names(RUN_FAILED_TASK, _names_of([*tasks, final]), pod_prefix)
    return replace(
        final,
        group=RUN_FAILED_TASK,
        task_id=task_id,
        pod_name=pod,
        var_name=variable,
        upstream=tuple(task.task_id for task in tasks),
        retries=0,
    )


def plan_tasks(
    pipeline_name: str,
    nodes: Sequence[NodeSpec],
    config: BridgeConfig,
    pod_prefix: str = "",
    registered: Sequence[NodeSpec] = (),
) -> Plan:
    """Plans the Airflow tasks of a pipeline.

    Args:
        pipeline_name: The registered pipeline's name (for messages).
        nodes: The pipeline's nodes in topological order (`node_specs`).
        config: The parsed airflow config.
        pod_prefix: Put in front of every pod name (the package name, say).
        registered: The nodes of every registered pipeline: a `groups:` entry warns only
            when it takes none of them (empty: none of this pipeline's).

    Returns:
        The plan, with warnings (mixed machine tags, requests Autopilot would raise, unknown
        `mlflow.metrics` datasets) and, when the config asks for one, the finalize task.

    Raises:
        PlanError: With every problem found: two group tags on a node, a cyclic grouping,
            an unknown machine class, a group named like a node, a pod Autopilot would
            reject; with `strict: true` the warnings too.
    """
    if not nodes:
        raise PlanError(pipeline_name, ["the pipeline has no nodes (check --tags / --pipeline)."])
    grouping = group_pipeline(
        pipeline_name, nodes, config.grouping_prefix, config.grouping, config.groups, registered
    )
    # Machine tags are checked on the groups the tags ask for even when the grouping itself
    # has problems, so one run reports every problem.
    machines, problems, warnings = _check_machines(_members(nodes, grouping), config)
    problems = list(grouping.problems) + problems
    problems += [
        f"group {name!r} has no letter or digit, so nothing of it would name its task or pod: "
        f"rename it (its tag '{config.grouping_prefix}{name}' or its `groups:` entry)."
        for name in nameless(dict.fromkeys(grouping.group_of.values()))
    ]
    warnings += [*grouping.warnings, *_metrics_warnings(nodes, config)]
    if config.strict and warnings:
        problems += [f"{warning} (an error because strict: true)" for warning in warnings]
    if problems:
        raise PlanError(pipeline_name, problems)
    tasks = _group_tasks(grouping, machines, config, pod_prefix)
    if not config.finalize:
        return Plan(pipeline_name, tuple(tasks), tuple(warnings))
    final = _finalize_task(tasks, config, pod_prefix)
    watcher = _run_failed_task(tasks, final, pod_prefix)
    return Plan(pipeline_name, tuple(tasks), tuple(warnings), final, watcher)


__all__ = [
    "FINALIZE_TASK",
    "RUN_FAILED_TASK",
    "Plan",
    "TaskPlan",
    "boundary_datasets",
    "finalize_machine",
    "node_specs",
    "plan_tasks",
]
