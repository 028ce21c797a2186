"""Auto-grouping: a cost model of a DAG on GKE Autopilot, and a search for cheaper groups.

Pure functions over `NodeSpec` plus what a measured run left behind (each node's seconds, each
dataset's bytes); `kedro gcs-bridge suggest` reads those from a run prefix and calls
`suggest_groups`. A task (one group in one pod) takes

    pod start + kedro start + fixed GCS round trips + its nodes' seconds
    + per boundary dataset saved: round trips + bytes / bandwidth + bytes / encode rate
    + per boundary dataset loaded: round trips + bytes / bandwidth + bytes / decode rate

and the DAG's makespan is its longest path (Autopilot adds nodes, so parallel branches run at
once); pod-seconds are the sum over tasks. The search starts from the current grouping, the
ungrouped one and kedro-airflow's `--group-by memory|namespace` (each that follows the rules),
greedily merges groups joined by an edge, in batches that are each checked in full, accepting
only what lowers the objective, and keeps the best result: the estimate is never worse than any
start, the task graph stays acyclic, and machine classes are never mixed unless allowed.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kedro_gcs_bridge.errors import PlanError
from kedro_gcs_bridge.planning.grouping import NodeSpec, base_name, is_parameter
from kedro_gcs_bridge.planning.views import human_size

OBJECTIVES = ("time", "cost")
_EPS = 1e-9


@dataclass(frozen=True)
class CostModel:
    """The constants of the estimate; every one is an assumption unless measured.

    Attributes:
        pod_start_s: Pod scheduled to container running. Autopilot takes 30 s on a warm node
            and 90 s when it adds one (benchmarks/critical_path.py); 60 s is between.
        kedro_start_s: `kedro run` start in the pod (interpreter, Kedro, session): 5 s, as in
            benchmarks/critical_path.py (pod_overhead.py measures ~1 s warm, pods start cold).
        round_trip_s: One GCS request from GKE to a bucket in its region: 40 ms (as in
            critical_path.py).
        fixed_round_trips: Per task, whatever it moves (reach check, start, manifest): 5;
        save_round_trips: per dataset saved: 8; load_round_trips: per dataset loaded: 6
            (counted by benchmarks/runid_handoff.py).
        bandwidth_bytes_s: One pod's GCS throughput: 200 MB/s (the "~200 MB/s" of the README's
            benchmark notes; a single stream from one pod).
        encode_bytes_s, decode_bytes_s: Arrow IPC, uncompressed: 1 GB/s each (about pickle-5's
            speed, README "frame format" row).
    """

    pod_start_s: float = 60.0
    kedro_start_s: float = 5.0
    round_trip_s: float = 0.040
    fixed_round_trips: int = 5
    save_round_trips: int = 8
    load_round_trips: int = 6
    bandwidth_bytes_s: float = 200e6
    encode_bytes_s: float = 1e9
    decode_bytes_s: float = 1e9

    def task_overhead(self) -> float:
        """Seconds every task pays before and after its nodes, whatever it moves."""
        return self.pod_start_s + self.kedro_start_s + self.fixed_round_trips * self.round_trip_s

    def save_s(self, size: float) -> float:
        """Seconds to save one boundary dataset of `size` bytes."""
        transfer = size / self.bandwidth_bytes_s + size / self.encode_bytes_s
        return self.save_round_trips * self.round_trip_s + transfer

    def load_s(self, size: float) -> float:
        """Seconds to load one boundary dataset of `size` bytes."""
        transfer = size / self.bandwidth_bytes_s + size / self.decode_bytes_s
        return self.load_round_trips * self.round_trip_s + transfer

    def to_json(self) -> dict[str, float]:
        """The constants, for reports."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def measured_pod_start(manifests: Sequence[dict[str, Any]]) -> tuple[float, int] | None:
    """The median `pod_start_seconds` the run's groups measured (task start to first node),
    and how many measured it; None when none did (no `KEDRO_GCS_BRIDGE_TASK_START`)."""
    measured = [
        float(value)
        for value in (manifest.get("pod_start_seconds") for manifest in manifests)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    ]
    return (statistics.median(measured), len(measured)) if measured else None


def pod_start_choice(
    given: float | None, kedro_start: float | None, manifests: Sequence[dict[str, Any]]
) -> tuple[float | None, float | None, str]:
    """(pod start, kedro start, where the pod start is from): `--pod-start`, else the run's
    measured median, else the model's default.

    A measured pod start runs to the first node, so it holds `kedro run`'s start already: the
    model's kedro start is then 0 unless `--kedro-start` is given.
    """
    if given is not None:
        return given, kedro_start, "--pod-start"
    measured = measured_pod_start(manifests)
    if measured is None:
        return None, kedro_start, "the model's default: the run measured no pod start"
    median, count = measured
    source = f"measured: median task start -> first node of {count} task(s)"
    if kedro_start is None:
        source += ", `kedro run` start included (--kedro-start 0)"
    return median, 0.0 if kedro_start is None else kedro_start, source


def cost_model(
    pod_start: float | None, kedro_start: float | None, round_trip_ms: float | None
) -> CostModel:
    """The default model with the constants given on the command line."""
    given = {
        "pod_start_s": pod_start,
        "kedro_start_s": kedro_start,
        "round_trip_s": None if round_trip_ms is None else round_trip_ms / 1000,
    }
    return CostModel(**{name: value for name, value in given.items() if value is not None})


@dataclass(frozen=True)
class Measurements:
    """What a run measured, and what the model assumes where it measured nothing.

    Attributes:
        node_seconds: Node name -> seconds its function ran.
        dataset_bytes: Base dataset name -> bytes as stored in the run prefix.
        default_bytes: Size assumed for a dataset that never crossed in the measured run.
        persisted: Catalog datasets that persist by themselves: they order tasks but never
            go through the run prefix, so grouping does not change what they cost.
    """

    node_seconds: Mapping[str, float]
    dataset_bytes: Mapping[str, int] = field(default_factory=dict)
    default_bytes: int = 0
    persisted: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Estimate:
    """One grouping and what the model says it costs (`makespan_s` None: the task graph has
    a cycle, so Airflow could not run it)."""

    tasks: int
    makespan_s: float | None
    pod_seconds: float | None
    bytes: int
    groups: Mapping[str, tuple[str, ...]]
    mixed: tuple[str, ...] = ()

    def to_json(self, with_groups: bool = False) -> dict[str, Any]:
        """The figures (and the groups as the `groups:` config key: only multi-node ones)."""
        payload: dict[str, Any] = {
            "tasks": self.tasks,
            "makespan_s": _round(self.makespan_s),
            "pod_seconds": _round(self.pod_seconds),
            "bytes": self.bytes,
        }
        if with_groups:
            payload["groups"] = groups_block(self.groups)
        return payload


@dataclass(frozen=True)
class Suggestion:
    """The suggested grouping next to the ones it is compared with."""

    ungrouped: Estimate
    current: Estimate
    suggested: Estimate
    by_memory: Estimate
    by_namespace: Estimate
    notes: tuple[str, ...] = ()

    def rows(self) -> list[tuple[str, Estimate]]:
        """(label, estimate) in report order."""
        return [
            ("ungrouped", self.ungrouped),
            ("current", self.current),
            ("suggested", self.suggested),
            ("kedro-airflow --group-by memory", self.by_memory),
            ("kedro-airflow --group-by namespace", self.by_namespace),
        ]

    def to_json(self) -> dict[str, Any]:
        """`{"ungrouped": ..., "current": ..., "suggested": {..., "groups": ...}, ...}`."""
        return {
            "ungrouped": self.ungrouped.to_json(),
            "current": self.current.to_json(),
            "suggested": self.suggested.to_json(with_groups=True),
            "kedro_airflow_memory": self.by_memory.to_json(),
            "kedro_airflow_namespace": self.by_namespace.to_json(),
            "notes": list(self.notes),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def groups_block(groups: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The groups with more than one node, as the `groups:` config key holds them."""
    return {name: list(nodes) for name, nodes in groups.items() if len(nodes) > 1}


# --- The graph and one evaluation ------------------------------------------------------------


@dataclass(frozen=True)
class _Graph:
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


def _graph(
    nodes: Sequence[NodeSpec],
    measured: Measurements,
    classes: Mapping[str, str],
    model: CostModel,
) -> _Graph:
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
    return _Graph(
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
class _Eval:
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


def _evaluate(graph: _Graph, labels: list[int]) -> _Eval | None:
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
    return _Eval(
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
    import heapq

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


# --- The search ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rules:
    objective: str
    allow_mixed: bool
    max_memory: float | None


def _key(e: _Eval, objective: str) -> tuple[float, float]:
    return (e.makespan, e.pod_seconds) if objective == "time" else (e.pod_seconds, e.makespan)


def _better(new: _Eval, old: _Eval, objective: str) -> bool:
    (a1, a2), (b1, b2) = _key(new, objective), _key(old, objective)
    return a1 < b1 - _EPS or (abs(a1 - b1) <= _EPS and a2 < b2 - _EPS)


def _merged_duration(graph: _Graph, e: _Eval, u: int, v: int) -> float:
    """The duration of u+v (u upstream of v), from their figures: what v loaded from u, and
    what both loaded from elsewhere, is no longer loaded twice; what u saved only for v is
    no longer saved."""
    pair = {u, v}
    small, big = sorted((e.loads[u], e.loads[v]), key=len)
    shared = sum(graph.load_s[ds] for ds in small if ds in big)
    inner, outer = sorted((e.saves[u], e.loads[v]), key=len)
    from_u = sum(graph.load_s[ds] for ds in inner if ds in outer)
    saves_u = sum(
        graph.save_s[ds]
        for ds in e.saves[u]
        if any(e.labels[c] not in pair for c in graph.consumers[ds])
    )
    handoff = e.load_s[u] + e.load_s[v] - shared - from_u + saves_u + e.save_s[v]
    return graph.overhead + e.compute[u] + e.compute[v] + handoff


def _top3(values: Mapping[int, float], among: set[int]) -> list[tuple[float, int]]:
    """The three largest (value, group) among some groups: enough to skip any two of them."""
    import heapq

    return heapq.nlargest(3, ((values[g], g) for g in among))


def _best_except(top: list[tuple[float, int]], skip: set[int]) -> float:
    return next((value for value, g in top if g not in skip), 0.0)


def _through(
    e: _Eval, tops: tuple[dict[int, Any], dict[int, Any]], u: int, v: int, duration: float
) -> float:
    """The longest path through the merged group (exact when the merge is acyclic)."""
    before, after = tops
    pair = {u, v}
    start = max(_best_except(before[u], pair), _best_except(before[v], pair))
    end = max(_best_except(after[u], pair), _best_except(after[v], pair))
    return start + duration + end


def _creates_cycle(e: _Eval, u: int, v: int) -> bool:
    """Whether another path leads from u to v (then u+v would wait for itself)."""
    if len(e.succ[u]) == 1 or len(e.pred[v]) == 1:
        return False
    limit = e.pos[v]
    stack = [s for s in e.succ[u] if s != v and e.pos[s] < limit]
    seen = set(stack)
    while stack:
        g = stack.pop()
        if v in e.succ[g]:
            return True
        for s in e.succ[g]:
            if s not in seen and e.pos[s] < limit:
                seen.add(s)
                stack.append(s)
    return False


def _classes_of(graph: _Graph, e: _Eval) -> dict[int, set[str]]:
    found: dict[int, set[str]] = defaultdict(set)
    for i, label in enumerate(e.labels):
        found[label].add(graph.klass[i])
    return found


def _touched_by(graph: _Graph, e: _Eval) -> dict[int, set[int]]:
    """Group -> the datasets its nodes read or write (for the memory bound)."""
    found: dict[int, set[int]] = defaultdict(set)
    for i, label in enumerate(e.labels):
        found[label].update(graph.touches[i])
    return found


def _too_big(graph: _Graph, touched: Mapping[int, set[int]], u: int, v: int, bound: float) -> bool:
    return sum(graph.size[ds] for ds in touched[u] | touched[v]) > bound


def _candidates(graph: _Graph, e: _Eval, rules: _Rules) -> list[tuple[tuple[Any, ...], int, int]]:
    """Merges of groups joined by an edge that the rules allow, best first."""
    classes = _classes_of(graph, e)
    touched = _touched_by(graph, e) if rules.max_memory is not None else {}
    tops = (
        {g: _top3(e.finish, e.pred[g]) for g in e.pred},
        {g: _top3(e.tail, e.succ[g]) for g in e.succ},
    )
    found = []
    for u, downs in e.succ.items():
        for v in downs:
            if not rules.allow_mixed and len(classes[u] | classes[v]) > 1:
                continue
            if rules.max_memory is not None and _too_big(graph, touched, u, v, rules.max_memory):
                continue
            duration = _merged_duration(graph, e, u, v)
            saving = e.duration[u] + e.duration[v] - duration
            through = _through(e, tops, u, v, duration)
            if saving <= _EPS or (rules.objective == "time" and through > e.makespan + _EPS):
                continue
            order = (through, -saving) if rules.objective == "time" else (-saving, through)
            found.append(((*order, e.pos[u], e.pos[v]), u, v))
    found.sort()
    return found


def _batch(e: _Eval, candidates: list[tuple[tuple[Any, ...], int, int]]) -> list[tuple[int, int]]:
    """Candidates with no group in common and no cycle of their own, best first."""
    used: set[int] = set()
    chosen = []
    for _, u, v in candidates:
        if u in used or v in used or _creates_cycle(e, u, v):
            continue
        used |= {u, v}
        chosen.append((u, v))
    return chosen


def _merge(labels: list[int], pairs: Sequence[tuple[int, int]]) -> list[int]:
    target = {}
    for u, v in pairs:
        keep = min(u, v)
        target[u] = target[v] = keep
    return [target.get(label, label) for label in labels]


def _search(graph: _Graph, start: _Eval, rules: _Rules) -> _Eval:
    """Greedy merging in checked batches; a batch that does not improve is halved."""
    current = start
    for _ in range(len(graph.names) + 1):  # every round merges at least one pair or stops
        pairs = _batch(current, _candidates(graph, current, rules))
        improved = None
        size = len(pairs)
        while size >= 1 and improved is None:
            trial = _evaluate(graph, _merge(current.labels, pairs[:size]))
            if trial is not None and _better(trial, current, rules.objective):
                improved = trial
            size //= 2
        if improved is None:
            return current
        current = improved
    return current


# --- Groupings to compare --------------------------------------------------------------------


def _labels_of(graph: _Graph, group_of: Mapping[str, str]) -> list[int]:
    first: dict[str, int] = {}
    return [first.setdefault(group_of[name], i) for i, name in enumerate(graph.names)]


def memory_grouping(nodes: Sequence[NodeSpec], persisted: frozenset[str]) -> dict[str, str]:
    """kedro-airflow 0.11's `--group-by memory`: connected components over memory datasets
    (it checks no cycle); a group is named after its first node."""
    parent = {node.name: node.name for node in nodes}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    made = {out: node.name for node in nodes for out in node.outputs}
    for node in nodes:
        for name in node.inputs:
            if name in made and name not in persisted and not is_parameter(name):
                a, b = sorted((root(made[name]), root(node.name)))
                parent[b] = a
    firsts: dict[str, str] = {}
    for node in nodes:
        firsts.setdefault(root(node.name), node.name)
    return {node.name: firsts[root(node.name)] for node in nodes}


def namespace_grouping(nodes: Sequence[NodeSpec]) -> dict[str, str]:
    """Kedro's `group_nodes_by("namespace")` (kedro-airflow `--group-by namespace`): the
    top-level namespace, or the node's own name."""
    return {
        node.name: node.namespace.split(".")[0] if node.namespace else node.name for node in nodes
    }


def _estimate(graph: _Graph, labels: list[int], names: Mapping[int, str]) -> Estimate:
    e = _evaluate(graph, labels)
    members: dict[int, list[str]] = defaultdict(list)
    klass: dict[int, set[str]] = defaultdict(set)
    for i, label in enumerate(labels):
        members[label].append(graph.names[i])
        klass[label].add(graph.klass[i])
    groups = {names[label]: tuple(nodes) for label, nodes in members.items()}
    mixed = tuple(sorted(names[label] for label, found in klass.items() if len(found) > 1))
    if e is None:
        return Estimate(len(members), None, None, 0, groups, mixed)
    return Estimate(len(members), e.makespan, e.pod_seconds, e.bytes, groups, mixed)


def _given_names(graph: _Graph, labels: list[int], group_of: Mapping[str, str]) -> dict[int, str]:
    return {label: group_of[graph.names[label]] for label in set(labels)}


def _suggested_names(
    graph: _Graph, labels: list[int], current: Mapping[str, str]
) -> dict[int, str]:
    """Each group keeps the current group name most of its nodes have (so `airflow.` tags
    stay valid), else takes its first node's name; never a name another group has."""
    members: dict[int, list[str]] = defaultdict(list)
    for i, label in enumerate(labels):
        members[label].append(graph.names[i])
    names: dict[int, str] = {}
    taken: set[str] = set()
    every = set(graph.names)
    for label in sorted(members):
        votes = Counter(current.get(name, name) for name in members[label])
        best = max(votes, key=votes.__getitem__)  # ties: the first node's group
        foreign = best in every and best not in members[label]
        name = members[label][0] if best in taken or foreign else best
        names[label] = name
        taken.add(name)
    return names


# --- Entry point -----------------------------------------------------------------------------


def suggest_groups(
    nodes: Sequence[NodeSpec],
    measured: Measurements,
    classes: Mapping[str, str],
    current: Mapping[str, str],
    model: CostModel | None = None,
    objective: str = "time",
    allow_mixed: bool = False,
    max_memory: float | None = None,
) -> Suggestion:
    """Searches for the grouping with the lowest estimated makespan (or pod-seconds).

    Args:
        nodes: The pipeline's nodes, in topological order.
        measured: Node seconds and dataset bytes of a run.
        classes: Node name -> its machine class name.
        current: Node name -> its group in the current plan.
        model: The cost constants (default `CostModel()`).
        objective: `time` (makespan, then pod-seconds) or `cost` (pod-seconds, then makespan).
        allow_mixed: Let a group hold nodes of different machine classes.
        max_memory: Bytes a group may touch at most (the sizes of the datasets its nodes read
            and write, summed: an upper bound of what it holds), or None.

    Returns:
        The suggestion with the ungrouped, current and kedro-airflow groupings it beat.
    """
    model = model or CostModel()
    graph = _graph(nodes, measured, classes, model)
    alone = {name: name for name in graph.names}
    rules = _Rules(objective, allow_mixed, max_memory)
    by_memory = memory_grouping(nodes, measured.persisted)
    by_namespace = namespace_grouping(nodes)
    starts, notes = _starts(graph, current, (alone, by_memory, by_namespace), rules)
    best = _best_of([_search(graph, start, rules) for start in starts], objective)
    unmeasured = [ds for ds in _flow_names(nodes) if ds not in measured.dataset_bytes]
    if unmeasured:
        notes.append(
            f"{len(unmeasured)} dataset(s) have no measured size (they never crossed in the "
            f"measured run); assumed {measured.default_bytes} bytes each. A run with "
            "grouping=false measures them all."
        )
    return Suggestion(
        ungrouped=_named_estimate(graph, alone),
        current=_named_estimate(graph, current),
        suggested=_estimate(graph, best.labels, _suggested_names(graph, best.labels, current)),
        by_memory=_named_estimate(graph, by_memory),
        by_namespace=_named_estimate(graph, by_namespace),
        notes=tuple(notes),
    )


def _named_estimate(graph: _Graph, group_of: Mapping[str, str]) -> Estimate:
    labels = _labels_of(graph, group_of)
    return _estimate(graph, labels, {label: group_of[graph.names[label]] for label in labels})


def _starts(
    graph: _Graph,
    current: Mapping[str, str],
    others: Sequence[Mapping[str, str]],
    rules: _Rules,
) -> tuple[list[_Eval], list[str]]:
    """Where the search starts: the current grouping, the ungrouped one (always: the first of
    `others`), and kedro-airflow's groupings, each when it follows the rules.

    Several starts because greedy merging only takes steps that improve the estimate: from
    one pod per node it cannot reach one pod for a small fan-out (its first merges lengthen
    the critical path), which `--group-by memory` gives at once.
    """
    ungrouped = _evaluate(graph, _labels_of(graph, others[0]))
    if ungrouped is None:  # pragma: no cover - a pipeline's node graph is acyclic
        raise PlanError("suggest", ["the pipeline's nodes form a cycle"])
    mine = _evaluate(graph, _labels_of(graph, current))
    problem = "has a cycle" if mine is None else _breaks(graph, mine, rules)
    notes = []
    if problem:
        notes.append(f"the current grouping {problem}; the search does not start from it.")
    starts = [] if problem or mine is None else [mine]
    starts.append(ungrouped)
    for grouping in others[1:]:
        found = _evaluate(graph, _labels_of(graph, grouping))
        if found is not None and not _breaks(graph, found, rules):
            starts.append(found)
    return starts, notes


def _breaks(graph: _Graph, e: _Eval, rules: _Rules) -> str:
    """The rule a grouping breaks ("" when none)."""
    classes = _classes_of(graph, e)
    if not rules.allow_mixed and any(len(found) > 1 for found in classes.values()):
        return "mixes machine classes (--allow-mixed keeps such groups)"
    if rules.max_memory is not None:
        touched = _touched_by(graph, e)
        if any(sum(graph.size[ds] for ds in t) > rules.max_memory for t in touched.values()):
            return "has a group that touches more bytes than --max-memory"
    return ""


def _best_of(found: Sequence[_Eval], objective: str) -> _Eval:
    """The best search result; the earliest start wins a tie (the current grouping first)."""
    best = found[0]
    for e in found[1:]:
        if _better(e, best, objective):
            best = e
    return best


def _flow_names(nodes: Sequence[NodeSpec]) -> list[str]:
    made = {base_name(out) for node in nodes for out in node.outputs}
    read = {base_name(i) for node in nodes for i in node.inputs if not is_parameter(i)}
    return sorted(made & read)


# --- What a run left behind, and the reports -------------------------------------------------


@dataclass(frozen=True)
class RunFigures:
    """What the manifests of one run prefix say.

    Attributes:
        measurements: Node seconds and dataset bytes.
        tasks: How many groups committed a manifest.
        estimated_nodes: Nodes whose seconds are their group's wall time split evenly (a
            manifest written before node timings were recorded).
    """

    measurements: Measurements
    tasks: int
    estimated_nodes: tuple[str, ...]


def _seconds_between(start: Any, end: Any) -> float:
    import datetime as dt

    try:
        delta = dt.datetime.fromisoformat(str(end)) - dt.datetime.fromisoformat(str(start))
    except ValueError:
        return 0.0
    return max(delta.total_seconds(), 0.0)


def figures_from_manifests(
    manifests: Sequence[Mapping[str, Any]], persisted: frozenset[str] = frozenset()
) -> RunFigures:
    """Node seconds and dataset bytes from a run's committed manifests (parsed JSON).

    Sizes the run did not measure (datasets internal to a group) are assumed to be the
    median measured size.
    """
    seconds: dict[str, float] = {}
    sizes: dict[str, int] = {}
    estimated: list[str] = []
    for manifest in manifests:
        timed = manifest.get("node_seconds")
        nodes = [str(name) for name in manifest.get("nodes", [])]
        if isinstance(timed, Mapping) and timed:
            seconds.update({str(k): float(v) for k, v in timed.items()})
        elif nodes:
            wall = _seconds_between(manifest.get("started_at"), manifest.get("finished_at"))
            seconds.update(dict.fromkeys(nodes, wall / len(nodes)))
            estimated += nodes
        for name, record in manifest.get("datasets", {}).items():
            sizes[str(name)] = int(record.get("size", 0))
    known = sorted(sizes.values())
    default = known[len(known) // 2] if known else 0
    measured = Measurements(seconds, sizes, default, persisted)
    return RunFigures(measured, len(manifests), tuple(sorted(estimated)))


def groups_yaml(groups: Mapping[str, Sequence[str]]) -> str:
    """The suggestion as a `groups:` block to paste under `default:` in airflow.yml."""
    import yaml

    block = groups_block(groups)
    if not block:
        return "groups: {}  # every node in a pod of its own\n"
    return yaml.safe_dump({"groups": block}, sort_keys=False, default_flow_style=False)


def suggestion_text(suggestion: Suggestion, model: CostModel) -> str:
    """The comparison table, the `groups:` block and the notes, for a terminal."""
    rows = [("grouping", "tasks", "makespan", "pod-seconds", "bytes via GCS")]
    for label, e in suggestion.rows():
        cyclic = e.makespan_s is None
        rows.append(
            (
                label + (" (mixes classes)" if e.mixed else ""),
                str(e.tasks),
                "cycle" if cyclic else f"{e.makespan_s:,.0f} s",
                "-" if cyclic else f"{e.pod_seconds:,.0f}",
                "-" if cyclic else human_size(e.bytes),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    assumptions = (
        f"model: pod start {model.pod_start_s:g} s, kedro start {model.kedro_start_s:g} s, "
        f"GCS round trip {model.round_trip_s * 1000:g} ms, {model.bandwidth_bytes_s / 1e6:g} MB/s, "
        f"encode/decode {model.encode_bytes_s / 1e6:g}/{model.decode_bytes_s / 1e6:g} MB/s"
    )
    notes = "".join(f"note: {note}\n" for note in suggestion.notes)
    block = groups_yaml(suggestion.suggested.groups)
    return "\n".join(lines) + f"\n\n{assumptions}\n{notes}\nPaste into airflow.yml:\n\n{block}"
