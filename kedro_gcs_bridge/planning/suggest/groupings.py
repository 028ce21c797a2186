"""The groupings compared, and `suggest_groups`: the search starts from the current grouping,
the ungrouped one and kedro-airflow's `--group-by memory|namespace` (each that follows the
rules) and keeps the best result, so the estimate is never worse than any start."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

from kedro_gcs_bridge.errors import PlanError
from kedro_gcs_bridge.planning.grouping import NodeSpec, base_name, is_parameter
from kedro_gcs_bridge.planning.suggest.evaluation import (
    Evaluation,
    Graph,
    build_graph,
    classes_of,
    evaluate,
    touched_by,
)
from kedro_gcs_bridge.planning.suggest.model import CostModel, Estimate, Measurements, Suggestion
from kedro_gcs_bridge.planning.suggest.search import Rules, better, search, tags_of


def _labels_of(graph: Graph, group_of: Mapping[str, str]) -> list[int]:
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


def _estimate(graph: Graph, labels: list[int], names: Mapping[int, str]) -> Estimate:
    e = evaluate(graph, labels)
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


def _suggested_names(
    graph: Graph, labels: list[int], current: Mapping[str, str], tags: Sequence[str]
) -> dict[int, str]:
    """A group with tagged nodes is named after their tag (`kedro airflow create` refuses
    config that disagrees with a tag); any other keeps the current group name most of its
    nodes have, else takes its first node's name; never a name another group has."""
    members: dict[int, list[str]] = defaultdict(list)
    for i, label in enumerate(labels):
        members[label].append(graph.names[i])
    names = {labels[i]: tag for i, tag in enumerate(tags) if tag}
    taken = set(names.values())
    every = set(graph.names)
    for label in sorted(members):
        if label in names:
            continue
        votes = Counter(current.get(name, name) for name in members[label])
        best = max(votes, key=votes.__getitem__)  # ties: the first node's group
        foreign = best in every and best not in members[label]
        name = members[label][0] if best in taken or foreign else best
        names[label] = name
        taken.add(name)
    return names


def _with_tags(labels: Sequence[int], tags: Sequence[str]) -> list[int]:
    """The grouping with every tag group whole: groups holding nodes of one tag are merged
    (each label stays its group's first node)."""
    parent = {label: label for label in labels}

    def root(label: int) -> int:
        while parent[label] != label:
            label = parent[label]
        return label

    first: dict[str, int] = {}
    for i, tag in enumerate(tags):
        if tag:
            a, b = sorted((root(labels[i]), root(first.setdefault(tag, labels[i]))))
            parent[b] = a
    return [root(label) for label in labels]


def suggest_groups(
    nodes: Sequence[NodeSpec],
    measured: Measurements,
    classes: Mapping[str, str],
    current: Mapping[str, str],
    model: CostModel | None = None,
    objective: str = "time",
    allow_mixed: bool = False,
    max_memory: float | None = None,
    tagged: Mapping[str, str] | None = None,
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
        tagged: Node name -> the group its `airflow.<group>` tag asks for: such groups stay
            whole, keep their name, and never merge with another tag's group, so the block
            agrees with the tags as `kedro airflow create` demands.

    Returns:
        The suggestion with the ungrouped, current and kedro-airflow groupings it beat.
    """
    model = model or CostModel()
    graph = build_graph(nodes, measured, classes, model)
    alone = {name: name for name in graph.names}
    tags = tuple((tagged or {}).get(name, "") for name in graph.names)
    rules = Rules(objective, allow_mixed, max_memory, tags)
    by_memory = memory_grouping(nodes, measured.persisted)
    by_namespace = namespace_grouping(nodes)
    starts, notes = _starts(graph, current, (alone, by_memory, by_namespace), rules)
    best = _best_of([search(graph, start, rules) for start in starts], objective)
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
        suggested=_estimate(
            graph, best.labels, _suggested_names(graph, best.labels, current, tags)
        ),
        by_memory=_named_estimate(graph, by_memory),
        by_namespace=_named_estimate(graph, by_namespace),
        notes=tuple(notes),
    )


def _named_estimate(graph: Graph, group_of: Mapping[str, str]) -> Estimate:
    labels = _labels_of(graph, group_of)
    return _estimate(graph, labels, {label: group_of[graph.names[label]] for label in labels})


def _starts(
    graph: Graph,
    current: Mapping[str, str],
    others: Sequence[Mapping[str, str]],
    rules: Rules,
) -> tuple[list[Evaluation], list[str]]:
    """Where the search starts: the current grouping, the ungrouped one (always: the first of
    `others`), and kedro-airflow's groupings, each when it follows the rules; all but the
    current one with every tag group whole (the ungrouped start then groups only the tags).

    Several starts because greedy merging only takes steps that improve the estimate: from
    one pod per node it cannot reach one pod for a small fan-out (its first merges lengthen
    the critical path), which `--group-by memory` gives at once.
    """
    ungrouped = evaluate(graph, _with_tags(_labels_of(graph, others[0]), rules.tags))
    if ungrouped is None:
        raise PlanError(
            "suggest",
            [
                "the groups of the nodes' `airflow.<group>` tags wait for each other (a "
                "cycle): `kedro gcs-bridge plan` names the nodes; fix their tags first."
            ],
        )
    mine = evaluate(graph, _labels_of(graph, current))
    problem = "has a cycle" if mine is None else _breaks(graph, mine, rules)
    notes = []
    if problem:
        notes.append(f"the current grouping {problem}; the search does not start from it.")
    starts = [] if problem or mine is None else [mine]
    starts.append(ungrouped)
    for grouping in others[1:]:
        found = evaluate(graph, _with_tags(_labels_of(graph, grouping), rules.tags))
        if found is not None and not _breaks(graph, found, rules):
            starts.append(found)
    return starts, notes


def _breaks(graph: Graph, e: Evaluation, rules: Rules) -> str:
    """The rule a grouping breaks ("" when none)."""
    tags = tags_of(e, rules)
    if any(len(found) > 1 for found in tags.values()):
        return "puts nodes of different `airflow.<group>` tags in one group"
    groups_of_tag: dict[str, set[int]] = defaultdict(set)
    for i, tag in enumerate(rules.tags):
        if tag:
            groups_of_tag[tag].add(e.labels[i])
    if any(len(found) > 1 for found in groups_of_tag.values()):
        return "splits the nodes of one `airflow.<group>` tag"
    classes = classes_of(graph, e)
    if not rules.allow_mixed and any(len(found) > 1 for found in classes.values()):
        return "mixes machine classes (--allow-mixed keeps such groups)"
    if rules.max_memory is not None:
        touched = touched_by(graph, e)
        if any(sum(graph.size[ds] for ds in t) > rules.max_memory for t in touched.values()):
            return "has a group that touches more bytes than --max-memory"
    return ""


def _best_of(found: Sequence[Evaluation], objective: str) -> Evaluation:
    """The best search result; the earliest start wins a tie (the current grouping first)."""
    best = found[0]
    for e in found[1:]:
        if better(e, best, objective):
            best = e
    return best


def _flow_names(nodes: Sequence[NodeSpec]) -> list[str]:
    made = {base_name(out) for node in nodes for out in node.outputs}
    read = {base_name(i) for node in nodes for i in node.inputs if not is_parameter(i)}
    return sorted(made & read)
