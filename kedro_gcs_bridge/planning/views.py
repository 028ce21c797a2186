"""Views of a plan for people: a text listing, and Mermaid or Graphviz drawings of the tasks."""

from __future__ import annotations

from collections.abc import Mapping

from kedro_gcs_bridge.planning.plan import Plan

FORMATS = ("text", "mermaid", "dot")


def plan_text(plan: Plan, local_disk: Mapping[str, str] | None = None) -> str:
    """A listing of the tasks: nodes, machine class, upstream tasks, crossing datasets.

    Args:
        plan: The plan.
        local_disk: Crossing datasets that are catalog entries on local disk -> their path;
            they are flagged, because a file written in one pod is gone in the next.
    """
    local_disk = local_disk or {}
    lines = [f"Pipeline {plan.pipeline_name}: {len(plan.tasks)} task(s)"]
    for task in plan.tasks:
        lines.append("")
        lines.append(f"task {task.task_id}  (pod {task.pod_name}, retries {task.retries})")
        lines.append(f"  nodes:    {', '.join(task.nodes)}")
        lines.append(f"  machine:  {task.machine.name}: {task.machine.describe()}")
        lines.append(f"  upstream: {', '.join(task.upstream) or '-'}")
        for dataset, producer in task.inputs:
            flag = _flag(dataset, local_disk)
            lines.append(f"  in:       {dataset} <- {producer}{flag}")
        for dataset in task.outputs:
            lines.append(f"  out:      {dataset}{_flag(dataset, local_disk)}")
    if plan.warnings:
        lines.append("")
        lines += [f"warning: {warning}" for warning in plan.warnings]
    return "\n".join(lines) + "\n"


def _flag(dataset: str, local_disk: Mapping[str, str]) -> str:
    if dataset not in local_disk:
        return ""
    return f"  [LOCAL DISK {local_disk[dataset]}: lost between pods]"


def _crossing(plan: Plan) -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for task in plan.tasks:
        for dataset, producer in task.inputs:
            edges.setdefault((producer, task.task_id), []).append(dataset)
    return edges


def plan_mermaid(plan: Plan) -> str:
    """A Mermaid flowchart: one box per task listing its nodes, edges labelled with data."""
    ids = {task.task_id: f"t{i}" for i, task in enumerate(plan.tasks)}
    lines = ["flowchart LR"]
    for task in plan.tasks:
        body = "<br/>".join([f"<b>{task.task_id}</b>", *task.nodes, f"<i>{task.machine.name}</i>"])
        lines.append(f'    {ids[task.task_id]}["{_mermaid_escape(body)}"]')
    for (up, down), datasets in _crossing(plan).items():
        label = _mermaid_escape(", ".join(sorted(datasets)))
        lines.append(f'    {ids[up]} -- "{label}" --> {ids[down]}')
    return "\n".join(lines) + "\n"


def _mermaid_escape(text: str) -> str:
    return text.replace('"', "#quot;")


def plan_dot(plan: Plan) -> str:
    """A Graphviz digraph: one box per task listing its nodes, edges labelled with data."""
    lines = [
        f'digraph "{_dot_escape(plan.pipeline_name)}" {{',
        "  rankdir=LR;",
        "  node [shape=box];",
    ]
    for task in plan.tasks:
        parts = [task.task_id, *task.nodes, f"[{task.machine.name}]"]
        label = "\\n".join(_dot_escape(part) for part in parts)
        lines.append(f'  "{_dot_escape(task.task_id)}" [label="{label}"];')
    for (up, down), datasets in _crossing(plan).items():
        label = _dot_escape(", ".join(sorted(datasets)))
        lines.append(f'  "{_dot_escape(up)}" -> "{_dot_escape(down)}" [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def render_plan(plan: Plan, fmt: str, local_disk: Mapping[str, str] | None = None) -> str:
    """The plan in one of `FORMATS`."""
    if fmt == "mermaid":
        return plan_mermaid(plan)
    if fmt == "dot":
        return plan_dot(plan)
    return plan_text(plan, local_disk)
