"""One evaluation of a grouping: the pipeline as integer-indexed arrays, and the duration,
finish time and makespan of each group's task under the cost model."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kedro_gcs_bridge.planning.grouping import NodeSpec, base_name, is_parameter
from kedro_gcs_bridge.planning.suggest.model import CostModel, Measurements


@dataclass(frozen=True)
class Graph:
    """The pipeline as integer-indexed arrays: nodes in topological order, datasets that
    flow between nodes (producer, consumers, cost of saving and loading, bytes moved)."""

    names: tuple[str, ...]
    seconds: tuple[float, ...]
    klass: tuple[str, ...]
    producer: tuple[int, ...]
    consumers: tuple[tuple[int, ...], ...]
    save_s: tuple[float, ...]
    load_s: tuple[float, ...]
    moved: tuple[int, ...]
    size: tuple[int, ...]
    touches: tuple[tuple[int, ...], ...]
    overhead: float


def build_graph(
    nodes: Sequence[NodeSpec],
    measured: Measurements,
    classes: Mapping[str, str],
    model: CostModel,
) -> Graph:
    index = {node.name: i for i, node in enumerate(nodes)}
    made = {base_name(out): index[node.name] for node in nodes for out in node.outputs}
    readers: dict[str, set[int]] = defaultdict(set)
    for node in nodes:
        for name in node.inputs:
            if not is_parameter(name) and base_name(name) in made:
                readers[base_name(name)].add(index[node.name])
    flows = sorted(readers, key=lambda ds: (made[ds], ds))
    size = {ds: measured.dataset_bytes.get(ds, measured.default_bytes) for ds in flows}
    carried = {ds: ds not in measured.persisted for ds in flows}
    touches: list[list[int]] = [[] for _ in nodes]
    for ds_id, ds in enumerate(flows):
        for i in sorted({made[ds], *readers[ds]}):
            touches[i].append(ds_id)
    return Graph(
        names=tuple(node.name for node in nodes),
        seconds=tuple(float(measured.node_seconds.get(node.name, 0.0)) for node in nodes),
        klass=tuple(classes.get(node.name, "") for node in nodes),
        producer=tuple(made[ds] for ds in flows),
        consumers=tuple(tuple(sorted(readers[ds])) for ds in flows),
        save_s=tuple(model.save_s(size[ds]) if carried[ds] else 0.0 for ds in flows),
        load_s=tuple(model.load_s(size[ds]) if carried[ds] else 0.0 for ds in flows),
        moved=tuple(size[ds] if carried[ds] else 0 for ds in flows),
        size=tuple(size[ds] for ds in flows),
        touches=tuple(tuple(found) for found in touches),
        overhead=model.task_overhead(),
    )


@dataclass
class Evaluation:
    """A grouping (label per node: the index of its group's first node) and its figures."""

    labels: list[int]
    duration: dict[int, float]
    compute: dict[int, float]
    save_s: dict[int, float]
    load_s: dict[int, float]
    saves: dict[int, set[int]]
    loads: dict[int, set[int]]
    succ: dict[int, set[int]]
    pred: dict[int, set[int]]
    pos: dict[int, int]
    finish: dict[int, float]
    tail: dict[int, float]
    makespan: float
    pod_seconds: float
    bytes: int


def evaluate(graph: Graph, labels: list[int]) -> Evaluation | None:
    """The figures of a grouping; None when its task graph has a cycle."""
    groups = list(dict.fromkeys(labels))
    compute: dict[int, float] = dict.fromkeys(groups, 0.0)
    for i, label in enumerate(labels):
        compute[label] += graph.seconds[i]
    saves: dict[int, set[int]] = {g: set() for g in groups}
    loads: dict[int, set[int]] = {g: set() for g in groups}
    succ: dict[int, set[int]] = {g: set() for g in groups}
    pred: dict[int, set[int]] = {g: set() for g in groups}
    moved = 0
    for ds, producer in enumerate(graph.producer):
        up = labels[producer]
        downs = {labels[c] for c in graph.consumers[ds]} - {up}
        if downs:
            saves[up].add(ds)
            moved += graph.moved[ds]
        for down in downs:
            loads[down].add(ds)
            succ[up].add(down)
            pred[down].add(up)
    save_s = {g: sum(graph.save_s[ds] for ds in saves[g]) for g in groups}
    load_s = {g: sum(graph.load_s[ds] for ds in loads[g]) for g in groups}
    duration = {g: graph.overhead + compute[g] + save_s[g] + load_s[g] for g in groups}
    order = _topological(groups, succ, pred)
    if order is None:
        return None
    finish: dict[int, float] = {}
    for g in order:
        finish[g] = max((finish[p] for p in pred[g]), default=0.0) + duration[g]
    tail: dict[int, float] = {}
    for g in reversed(order):
        tail[g] = duration[g] + max((tail[s] for s in succ[g]), default=0.0)
    pos = {g: i for i, g in enumerate(order)}
    makespan = max(finish.values(), default=0.0)
    pod = sum(duration.values())
    return Evaluation(
        labels,
        duration,
        compute,
        save_s,
        load_s,
        saves,
        loads,
        succ,
        pred,
        pos,
        finish,
        tail,
        makespan,
        pod,
        moved,
    )


def _topological(
    groups: list[int], succ: Mapping[int, set[int]], pred: Mapping[int, set[int]]
) -> list[int] | None:
    """Kahn's order, ties by label (the first node's position: deterministic); None if cyclic."""

    indegree = {g: len(pred[g]) for g in groups}
    ready = [g for g in groups if indegree[g] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        g = heapq.heappop(ready)
        order.append(g)
        for s in succ[g]:
            indegree[s] -= 1
            if indegree[s] == 0:
                heapq.heappush(ready, s)
    return order if len(order) == len(groups) else None


def classes_of(graph: Graph, e: Evaluation) -> dict[int, set[str]]:
    found: dict[int, set[str]] = defaultdict(set)
    for i, label in enumerate(e.labels):
        found[label].add(graph.klass[i])
    return found


def touched_by(graph: Graph, e: Evaluation) -> dict[int, set[int]]:
    """Group -> the datasets its nodes read or write (for the memory bound)."""
    found: dict[int, set[int]] = defaultdict(set)
    for i, label in enumerate(e.labels):
        found[label].update(graph.touches[i])
    return found
