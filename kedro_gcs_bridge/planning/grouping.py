"""Grouping: which Kedro nodes run together in one pod, and how the groups depend on each other.

Pure functions over `NodeSpec`, a plain copy of what matters about a Kedro node (name, inputs,
outputs, tags), so the rules can be tested on thousands of random pipelines without Kedro.
A node tagged `<grouping_prefix><group>` joins that group, and so does a node that the `groups:`
config key puts there (by name, `tag:<tag>` or `namespace:<ns>`); any other node is a group of
its own, named after the node.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kedro_gcs_bridge.planning.node_names import resolve_node_names

if TYPE_CHECKING:
    from kedro.pipeline import Pipeline

PARAMS_PREFIX = "params:"
PARAMETERS = "parameters"
#: Selectors of the `groups:` config key besides plain node names.
TAG_SELECTOR = "tag:"
NAMESPACE_SELECTOR = "namespace:"
#: `namespace=<ns>`: the nodes of that namespace alone, not of the namespaces nested in it.
NAMESPACE_EXACT = "namespace="


@dataclass(frozen=True)
class NodeSpec:
    """What grouping needs to know about one Kedro node."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    tags: frozenset[str] = frozenset()
    namespace: str | None = None
    #: How Kedro prints a node whose name it generated (`train_model([X;y]) -> [z]` for
    #: `train_model__<hash>`), else "": `groups:` takes either form (planning/node_names.py).
    kedro_node: str = ""


@dataclass(frozen=True)
class Group:
    """The nodes that run in one pod, in the pipeline's topological order."""

    name: str
    nodes: tuple[str, ...]
    tagged: bool


@dataclass(frozen=True)
class Grouping:
    """Groups of a pipeline and the datasets that cross between them.

    Attributes:
        groups: Groups in a topological order of the task graph.
        group_of: Node name -> group name.
        edges: (upstream group, downstream group) -> base names of the datasets that cross.
        problems: Errors found; when not empty, `groups` and `edges` may be incomplete.
        warnings: Things that work but look wrong (a `groups:` entry naming no node).
    """

    groups: tuple[Group, ...]
    group_of: Mapping[str, str]
    edges: Mapping[tuple[str, str], frozenset[str]]
    problems: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def base_name(dataset: str) -> str:
    """The dataset name without its transcoding suffix (`x@pandas` -> `x`)."""
    return dataset.split("@", 1)[0]


def is_parameter(dataset: str) -> bool:
    """Parameters come from config in every pod and never cross."""
    return dataset == PARAMETERS or dataset.startswith(PARAMS_PREFIX)


def group_tags(node: NodeSpec, prefix: str) -> list[str]:
    """The group names a node's tags ask for."""
    return sorted(tag[len(prefix) :] for tag in node.tags if tag.startswith(prefix))


def producers(nodes: Iterable[NodeSpec]) -> dict[str, str]:
    """Base dataset name -> the node that outputs it."""
    return {base_name(out): node.name for node in nodes for out in node.outputs}


def _in_namespace(node: NodeSpec, wanted: str) -> bool:
    namespace = node.namespace or ""
    return namespace == wanted or namespace.startswith(f"{wanted}.")


#: `groups:` selector kind -> whether it takes a node, given the text after the kind.
_MATCHERS: dict[str, Callable[[NodeSpec, str], bool]] = {
    TAG_SELECTOR: lambda node, tag: tag in node.tags,
    NAMESPACE_SELECTOR: _in_namespace,
    NAMESPACE_EXACT: lambda node, wanted: (node.namespace or "") == wanted,
}


def _kind(selector: str) -> str | None:
    """The selector's kind (`tag:`, `namespace:`, `namespace=`), None for a node name."""
    return next((kind for kind in _MATCHERS if selector.startswith(kind)), None)


def selector_matches(node: NodeSpec, selector: str) -> bool:
    """Whether a `groups:` entry (node name, `tag:<tag>`, `namespace:<ns>` with its nested
    namespaces, or `namespace=<ns>` alone) takes the node."""
    kind = _kind(selector)
    if kind is None:
        return node.name == selector
    return _MATCHERS[kind](node, selector[len(kind) :])


def _selected(nodes: Sequence[NodeSpec], selector: str, names: Set[str]) -> list[str]:
    """The names of the nodes a `groups:` entry takes, in pipeline order (`names`: the
    nodes' names, so a plain name is one look-up)."""
    if _kind(selector) is None:
        return [selector] if selector in names else []
    return [node.name for node in nodes if selector_matches(node, selector)]


def _overlap(
    first: tuple[str, str], second: tuple[str, str], nodes: Sequence[str], nested: set[str]
) -> str:
    """One problem for two `groups:` entries of different groups that take the same nodes;
    `nested` holds the namespaces of those nodes."""
    shown = ", ".join(repr(name) for name in nodes[:3]) + (", ..." if len(nodes) > 3 else "")
    taken = f"node {shown}" if len(nodes) == 1 else f"{len(nodes)} nodes ({shown})"
    wide = [
        selector[len(NAMESPACE_SELECTOR) :]
        for _, selector in (first, second)
        if selector.startswith(NAMESPACE_SELECTOR)
        and nested - {selector[len(NAMESPACE_SELECTOR) :]}
    ]
    hint = "".join(
        f" '{NAMESPACE_EXACT}{namespace}' takes namespace '{namespace}' alone, without the "
        "namespaces nested in it."
        for namespace in wide
    )
    return (
        f"groups {first[0]!r} ({first[1]!r}) and {second[0]!r} ({second[1]!r}) both take "
        f"{taken} of the `groups:` config; a node runs in exactly one pod: keep each node "
        f"under one of them.{hint}"
    )


def configured_groups(
    nodes: Sequence[NodeSpec], groups: Mapping[str, Sequence[str]]
) -> tuple[dict[str, str], list[str]]:
    """Node -> group from the `groups:` config key, and the entries that overlap.

    Args:
        nodes: The pipeline's nodes.
        groups: Group name -> node names or selectors (`tag:<tag>`, `namespace:<ns>`,
            `namespace=<ns>`).

    Returns:
        node -> group for the nodes the key names, and one problem per pair of entries of
        different groups that take the same nodes.
    """
    names = {node.name for node in nodes}
    entries: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for group, selectors in groups.items():
        for selector in selectors:
            for name in _selected(nodes, selector, names):
                entries[name].append((group, selector))
    pairs: dict[tuple[tuple[str, str], tuple[str, str]], list[str]] = defaultdict(list)
    for node_name, taken in entries.items():
        for i, first in enumerate(taken):
            for second in taken[i + 1 :]:
                if first[0] != second[0]:
                    pairs[(first, second)].append(node_name)
    namespace_of = {node.name: node.namespace or "" for node in nodes}
    problems = [
        _overlap(first, second, shared, {namespace_of[name] for name in shared})
        for (first, second), shared in pairs.items()
    ]
    return {name: taken[0][0] for name, taken in entries.items()}, problems


def unmatched_selectors(
    nodes: Sequence[NodeSpec],
    groups: Mapping[str, Sequence[str]],
    registered: Sequence[NodeSpec] = (),
) -> list[str]:
    """Warnings for `groups:` entries that take no node (typos, mostly).

    Args:
        nodes: The pipeline's nodes.
        groups: The `groups:` config key.
        registered: The nodes of every registered pipeline: an entry that takes one of them
            is meant for another pipeline (`groups:` under `default:` applies to all), so it
            is no warning. Empty: only this pipeline's nodes count.
    """
    known = list(registered) or list(nodes)
    known_names = {node.name for node in known}
    names = sorted(known_names)
    scope = "any registered pipeline" if registered else "this pipeline"
    warnings = []
    for group, selectors in sorted(groups.items()):
        for selector in selectors:
            if _selected(known, selector, known_names):
                continue
            close = difflib.get_close_matches(selector, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            warnings.append(
                f"groups: '{group}' lists '{selector}', which matches no node of "
                f"{scope}{hint}; fix it or remove it."
            )
    return warnings


def _tag_groups(nodes: Sequence[NodeSpec], prefix: str) -> tuple[dict[str, str], list[str]]:
    """Node -> group its tag asks for (tagged nodes only), and the problems of the tags."""
    chosen: dict[str, str] = {}
    problems: list[str] = []
    for node in nodes:
        names = group_tags(node, prefix)
        if len(names) > 1:
            problems.append(
                f"node '{node.name}' has {len(names)} group tags "
                f"{[prefix + name for name in names]}; a node runs in exactly one pod, "
                "keep one of them."
            )
        if names and not names[0]:
            problems.append(
                f"node '{node.name}' has the tag '{prefix}' with no group name after it; "
                f"write '{prefix}<group>'."
            )
        if names and names[0]:
            chosen[node.name] = names[0]
    return chosen, problems


def assign_groups(
    nodes: Sequence[NodeSpec],
    prefix: str,
    enabled: bool = True,
    configured: Mapping[str, Sequence[str]] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """Maps every node to its group name.

    Args:
        nodes: The pipeline's nodes.
        prefix: The grouping tag prefix (`airflow.`).
        enabled: With False every node is its own group (tags and `groups:` ignored).
        configured: The `groups:` config key: group name -> node names or selectors.

    Returns:
        node -> group, and the problems found (two group tags on one node, a group tag with
        an empty name, a node in two configured groups, a tag and the config that put a node
        in different groups, a group named like a node outside it).
    """
    if not enabled:
        return {node.name: node.name for node in nodes}, []
    by_tag, problems = _tag_groups(nodes, prefix)
    by_config, config_problems = configured_groups(nodes, configured or {})
    problems += config_problems
    problems += [
        f"node '{name}' is tagged '{prefix}{by_tag[name]}' but the `groups:` config puts it in "
        f"group '{group}'; tags and config must agree: remove the tag or change `groups:`."
        for name, group in by_config.items()
        if name in by_tag and by_tag[name] != group
    ]
    group_of = {
        node.name: by_config.get(node.name) or by_tag.get(node.name) or node.name for node in nodes
    }
    problems += _name_clashes(group_of, set(by_tag) | set(by_config), prefix)
    return group_of, problems


def _name_clashes(group_of: Mapping[str, str], tagged: set[str], prefix: str) -> list[str]:
    """A group tag named like a node that is not in that group (or that is there untagged,
    as its own one-node task): both tasks would get the same task id."""
    members: dict[str, list[str]] = defaultdict(list)
    for node_name, group in group_of.items():
        members[group].append(node_name)
    problems = []
    for group, names in sorted(members.items()):
        if group not in group_of:
            continue
        if group_of[group] != group:
            problems.append(
                f"group '{group}' (nodes {sorted(names)}) has the same name as node "
                f"'{group}', which runs in group '{group_of[group]}'; their tasks would be "
                "indistinguishable: rename the group tag or the node."
            )
        elif group not in tagged and len(names) > 1:
            others = sorted(name for name in names if name != group)
            problems.append(
                f"group '{group}' (nodes {others}) has the same name as node '{group}', "
                f"which has no group tag and so is a task of its own; their tasks would be "
                f"indistinguishable: tag node '{group}' '{prefix}{group}' (or list it under "
                f"`groups: {group}`) to put it in the group, or rename the group or the node."
            )
    return problems


def group_edges(
    nodes: Sequence[NodeSpec], group_of: Mapping[str, str]
) -> dict[tuple[str, str], frozenset[str]]:
    """(upstream group, downstream group) -> the base dataset names that cross the edge."""
    made_by = producers(nodes)
    crossing: dict[tuple[str, str], set[str]] = defaultdict(set)
    for node in nodes:
        for dataset in node.inputs:
            if is_parameter(dataset):
                continue
            producer = made_by.get(base_name(dataset))
            if producer is None:
                continue
            upstream, downstream = group_of[producer], group_of[node.name]
            if upstream != downstream:
                crossing[(upstream, downstream)].add(base_name(dataset))
    return {edge: frozenset(names) for edge, names in crossing.items()}


def _strongly_connected(
    vertices: Sequence[str], edges: Iterable[tuple[str, str]]
) -> list[list[str]]:
    """Tarjan's algorithm, iterative (pipelines can be thousands of groups deep)."""
    successors: dict[str, list[str]] = defaultdict(list)
    for up, down in edges:
        successors[up].append(down)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in vertices:
        if root in index:
            continue
        work = [(root, iter(successors[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            vertex, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors[child])))
                elif child in on_stack:
                    low[vertex] = min(low[vertex], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[vertex])
            if low[vertex] == index[vertex]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == vertex:
                        break
                components.append(component)
    return components


def _cycle_problems(
    pipeline_name: str,
    nodes: Sequence[NodeSpec],
    group_of: Mapping[str, str],
    edges: Mapping[tuple[str, str], frozenset[str]],
    prefix: str,
    configured: bool = False,
) -> list[str]:
    groups = list(dict.fromkeys(group_of[node.name] for node in nodes))
    made_by = producers(nodes)
    problems = []
    for component in _strongly_connected(groups, edges):
        if len(component) < 2:
            continue
        members = set(component)
        # The nodes that close the cycle: those reading, inside the cycle, data that another
        # group of the cycle made.
        closing = sorted(
            {
                node.name
                for node in nodes
                if group_of[node.name] in members
                for dataset in node.inputs
                if not is_parameter(dataset)
                and (producer := made_by.get(base_name(dataset))) is not None
                and group_of[producer] in members
                and group_of[producer] != group_of[node.name]
            }
        )
        problems.append(
            f"Pipeline {pipeline_name} has invalid grouping that creates a cycle in its "
            f"grouping tags regarding nodes: {{{', '.join(repr(n) for n in closing)}}}. "
            f"Groups {sorted(members)} would each wait for the other. Move those nodes into "
            f"one group, or remove their '{prefix}' tags so they run in pods of their own."
            + (" Check the `groups:` config too." if configured else "")
        )
    return problems


def topological_groups(
    nodes: Sequence[NodeSpec],
    group_of: Mapping[str, str],
    edges: Mapping[tuple[str, str], frozenset[str]],
) -> tuple[Group, ...]:
    """Groups in a topological order of the (acyclic) task graph, ties in pipeline order."""
    members: dict[str, list[str]] = defaultdict(list)
    for node in nodes:
        members[group_of[node.name]].append(node.name)
    order = list(members)
    rank = {name: i for i, name in enumerate(order)}
    indegree = dict.fromkeys(order, 0)
    successors: dict[str, list[str]] = defaultdict(list)
    for up, down in edges:
        successors[up].append(down)
        indegree[down] += 1
    ready = sorted((name for name in order if indegree[name] == 0), key=rank.__getitem__)
    result: list[Group] = []
    while ready:
        name = ready.pop(0)
        result.append(Group(name, tuple(members[name]), tagged=members[name] != [name]))
        for child in successors[name]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
                ready.sort(key=rank.__getitem__)
    return tuple(result)


def group_pipeline(
    pipeline_name: str,
    nodes: Sequence[NodeSpec],
    prefix: str,
    enabled: bool = True,
    configured: Mapping[str, Sequence[str]] | None = None,
    registered: Sequence[NodeSpec] = (),
) -> Grouping:
    """Groups a pipeline's nodes and derives the task graph, checking it has no cycle.

    Args:
        pipeline_name: For messages.
        nodes: The pipeline's nodes in topological order.
        prefix: The grouping tag prefix.
        enabled: False puts every node in a group of its own.
        configured: The `groups:` config key (group name -> node names or selectors).
        registered: The nodes of every registered pipeline (see `unmatched_selectors`).

    Returns:
        The grouping; `problems` lists every error found, `warnings` the `groups:` entries
        that take no node.
    """
    configured = resolve_node_names(nodes, configured or {})
    group_of, problems = assign_groups(nodes, prefix, enabled, configured)
    edges = group_edges(nodes, group_of)
    problems += _cycle_problems(pipeline_name, nodes, group_of, edges, prefix, bool(configured))
    groups = () if problems else topological_groups(nodes, group_of, edges)
    warnings = unmatched_selectors(nodes, configured or {}, registered) if enabled else []
    return Grouping(groups, group_of, edges, tuple(problems), tuple(warnings))


def node_specs(pipeline: Pipeline) -> list[NodeSpec]:
    """Plain copies of a Kedro pipeline's nodes, in topological order."""
    return [
        NodeSpec(
            node.name,
            tuple(node.inputs),
            tuple(node.outputs),
            frozenset(node.tags),
            node.namespace,
            str(node) if getattr(node, "_name", "") is None else "",
        )
        for node in pipeline.nodes
    ]


def registered_node_specs(pipelines: Iterable[Pipeline | None]) -> list[NodeSpec]:
    """The nodes of every registered pipeline, each once (what a `groups:` entry may name)."""
    found = {spec.name: spec for pipe in pipelines if pipe is not None for spec in node_specs(pipe)}
    return list(found.values())


def boundary_datasets(
    all_nodes: Iterable[NodeSpec], selected: Iterable[str]
) -> tuple[set[str], set[str]]:
    """Datasets that cross the border of a set of nodes within a pipeline.

    The same rule as the edges between groups (`group_edges`): the selected nodes are one
    group, every other node another.

    Args:
        all_nodes: Every node of the registered pipeline.
        selected: The names of the nodes this pod runs.

    Returns:
        (loaded: made outside and read here, saved: made here and read outside), as base
        names (no transcoding suffix); parameters excluded.
    """
    nodes = list(all_nodes)
    chosen = set(selected)
    side = {node.name: "here" if node.name in chosen else "outside" for node in nodes}
    edges = group_edges(nodes, side)
    return set(edges.get(("outside", "here"), ())), set(edges.get(("here", "outside"), ()))
