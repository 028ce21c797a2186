"""Views of a plan for people: a text listing, and Mermaid or Graphviz drawings of the tasks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

# Only a type here: `kedro gcs-bridge` reads FORMATS when Kedro loads its commands, which
# Kedro does for every command, a pod's `kedro run` included; the planner stays unloaded.
if TYPE_CHECKING:
    from kedro_gcs_bridge.planning.plan import Plan

FORMATS = ("text", "mermaid", "dot")


def plan_text(plan: Plan, local_disk: Mapping[str, str] | None = None) -> str:
    """A listing of the tasks: nodes, machine class, upstream tasks, crossing datasets.

    Args:
        plan: The plan.
        local_disk: Crossing datasets that are catalog entries on local disk -> a note
            (their path and what happens to them: `StoragePlan.local_disk_edges`); they are
            flagged, because a file written in one pod is gone in the next.
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
    return f"  [LOCAL DISK {local_disk[dataset]}]"


def _crossing(plan: Plan) -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for task in plan.tasks:
        for dataset, producer in task.inputs:
            edges.setdefault((producer, task.task_id), []).append(dataset)
    return edges


def _edge_label(datasets: list[str], local_disk: Mapping[str, str]) -> tuple[str, bool]:
    """The datasets of an edge, local-disk ones marked; and whether any is on local disk."""
    names = [f"{name} (local disk)" if name in local_disk else name for name in sorted(datasets)]
    return ", ".join(names), any(name in local_disk for name in datasets)


def plan_mermaid(plan: Plan, local_disk: Mapping[str, str] | None = None) -> str:
    """A Mermaid flowchart: one box per task listing its nodes, edges labelled with data.

    Edges that carry a dataset on local disk are dotted and say `(local disk)`.
    """
    ids = {task.task_id: f"t{i}" for i, task in enumerate(plan.tasks)}
    lines = ["flowchart LR"]
    for task in plan.tasks:
        body = "<br/>".join([f"<b>{task.task_id}</b>", *task.nodes, f"<i>{task.machine.name}</i>"])
        lines.append(f'    {ids[task.task_id]}["{_mermaid_escape(body)}"]')
    for (up, down), datasets in _crossing(plan).items():
        text, local = _edge_label(datasets, local_disk or {})
        arrow = ('-. "{}" .->' if local else '-- "{}" -->').format(_mermaid_escape(text))
        lines.append(f"    {ids[up]} {arrow} {ids[down]}")
    return "\n".join(lines) + "\n"


def _mermaid_escape(text: str) -> str:
    return text.replace('"', "#quot;")


def plan_dot(plan: Plan, local_disk: Mapping[str, str] | None = None) -> str:
    """A Graphviz digraph: one box per task listing its nodes, edges labelled with data.

    Edges that carry a dataset on local disk are dashed, red, and say `(local disk)`.
    """
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
        text, local = _edge_label(datasets, local_disk or {})
        style = ", style=dashed, color=red" if local else ""
        edge = f'"{_dot_escape(up)}" -> "{_dot_escape(down)}"'
        lines.append(f'  {edge} [label="{_dot_escape(text)}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def render_plan(plan: Plan, fmt: str, local_disk: Mapping[str, str] | None = None) -> str:
    """The plan in one of `FORMATS`."""
    if fmt == "mermaid":
        return plan_mermaid(plan, local_disk)
    if fmt == "dot":
        return plan_dot(plan, local_disk)
    return plan_text(plan, local_disk)


def human_size(size: float) -> str:
    """Bytes for people: `512 B`, `1.5 KiB`, ... `2.0 GiB`."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover


def replay_table(rows: Sequence[tuple[str, str, float, int, Sequence[str]]]) -> str:
    """The tasks a replay ran: (task, state, seconds, bytes out, nodes) per row."""
    # The `dag` extra: Kedro reads FORMATS from this module in a pod, which lacks tabulate.
    from tabulate import tabulate

    return tabulate(
        [
            (task, state, f"{seconds:.1f}", str(out), ", ".join(nodes))
            for task, state, seconds, out, nodes in rows
        ],
        headers=("task", "state", "seconds", "bytes out", "nodes"),
        tablefmt="plain",
        disable_numparse=True,
    )
