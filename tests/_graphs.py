"""Pure helpers for plan tests: Mermaid and Graphviz drawings parsed back into boxes and
edges, random pipelines (hypothesis), and graph checks independent of the package's own."""

from __future__ import annotations

import re
from collections.abc import Iterable

from hypothesis import strategies as st

from kedro_gcs_bridge.planning.grouping import NodeSpec

# --- Drawings of a plan ----------------------------------------------------------------------

MERMAID_BOX = re.compile(r'^    (t\d+)\["(.*)"\]$')
#: A solid edge, or a dotted one (`-. "label" .->`) for data on local disk.
MERMAID_EDGE = re.compile(r'^    (t\d+) (?:--|-\.) "(.*)" (?:-->|\.->) (t\d+)$')
DOT_BOX = re.compile(r'^  "(.+?)" \[label="(.*)"\];$')
DOT_EDGE = re.compile(r'^  "(.+?)" -> "(.+?)" \[label="(.*?)"(?:, style=dashed, color=red)?\];$')


def mermaid_graph(text: str) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """(task id -> box text, (up task, down task) -> edge label) of a Mermaid flowchart."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    boxes = {m[1]: m[2] for line in lines if (m := MERMAID_BOX.match(line))}
    names = {key: re.match(r"<b>(.*?)</b>", body)[1] for key, body in boxes.items()}
    edges = {(names[m[1]], names[m[3]]): m[2] for line in lines if (m := MERMAID_EDGE.match(line))}
    assert len(boxes) + len(edges) == len(lines) - 1, text
    return {names[key]: body for key, body in boxes.items()}, edges


def dot_graph(text: str) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """(task id -> label, (up, down) -> edge label) of a Graphviz digraph."""
    lines = text.splitlines()
    edges = {(m[1], m[2]): m[3] for line in lines if (m := DOT_EDGE.match(line))}
    boxes = {
        m[1]: m[2] for line in lines if (m := DOT_BOX.match(line)) and not DOT_EDGE.match(line)
    }
    assert lines[0].startswith("digraph ") and lines[-1] == "}"
    assert len(boxes) + len(edges) + 4 == len(lines), text
    return boxes, edges


# --- Random pipelines (hypothesis) -----------------------------------------------------------

GROUP_POOL = ("g0", "g1", "g2", "g3")


@st.composite
def random_pipelines(draw: st.DrawFn) -> list[NodeSpec]:
    """DAG-shaped pipelines in topological order: each node reads raw inputs, parameters or
    outputs of earlier nodes; some nodes carry a group tag from a small pool, some a machine
    tag. Group names never equal node names (name clashes have their own tests)."""
    available = ["raw_a", "raw_b"]
    nodes = []
    for index in range(draw(st.integers(min_value=1, max_value=10))):
        inputs = draw(st.lists(st.sampled_from(available), max_size=3, unique=True))
        if draw(st.integers(0, 4)) == 0:
            inputs.append("params:alpha")
        outputs = [f"d{index}_{j}" for j in range(draw(st.integers(1, 2)))]
        tags = set()
        group = draw(st.none() | st.sampled_from(GROUP_POOL))
        if group is not None:
            tags.add(f"airflow.{group}")
        machine = draw(st.none() | st.sampled_from(("small", "medium")))
        if machine is not None:
            tags.add(f"machine.{machine}")
        nodes.append(NodeSpec(f"n{index}", tuple(inputs), tuple(outputs), frozenset(tags)))
        available += outputs
    return nodes


def has_cycle(vertices: Iterable[str], edges: Iterable[tuple[str, str]]) -> bool:
    """Plain three-colour DFS, independent of the package's Tarjan implementation."""
    successors: dict[str, set[str]] = {vertex: set() for vertex in vertices}
    for up, down in edges:
        successors.setdefault(up, set()).add(down)
        successors.setdefault(down, set())
    state: dict[str, int] = dict.fromkeys(successors, 0)  # 0 new, 1 on path, 2 done

    def visit(vertex: str) -> bool:
        state[vertex] = 1
        for child in successors[vertex]:
            if state[child] == 1 or (state[child] == 0 and visit(child)):
                return True
        state[vertex] = 2
        return False

    return any(state[vertex] == 0 and visit(vertex) for vertex in successors)


def ancestors(edges: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """Vertex -> every vertex with a path to it (for acyclic graphs)."""
    parents: dict[str, set[str]] = {}
    for up, down in edges:
        parents.setdefault(down, set()).add(up)
        parents.setdefault(up, set())
    found: dict[str, set[str]] = {}

    def collect(vertex: str) -> set[str]:
        if vertex not in found:
            found[vertex] = set()
            for parent in parents.get(vertex, ()):
                found[vertex] |= {parent, *collect(parent)}
        return found[vertex]

    for vertex in parents:
        collect(vertex)
    return found
