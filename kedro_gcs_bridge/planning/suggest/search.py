"""The search: greedy merging of groups joined by an edge, in batches that are each checked in
full, accepting only what lowers the objective; the task graph stays acyclic, and machine
classes are never mixed unless allowed."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kedro_gcs_bridge.planning.suggest.evaluation import (
    Evaluation,
    Graph,
    classes_of,
    evaluate,
    touched_by,
)
from kedro_gcs_bridge.planning.suggest.model import EPS


@dataclass(frozen=True)
class Rules:
    """What a grouping must respect; `tags` holds, per node, the group its `airflow.<group>`
    tag asks for ("" when none): `kedro airflow create` refuses config that disagrees."""

    objective: str
    allow_mixed: bool
    max_memory: float | None
    tags: tuple[str, ...] = ()


def tags_of(e: Evaluation, rules: Rules) -> dict[int, set[str]]:
    """Group -> the tag groups its nodes ask for (empty for untagged nodes)."""
    found: dict[int, set[str]] = {label: set() for label in e.labels}
    for i, tag in enumerate(rules.tags):
        if tag:
            found[e.labels[i]].add(tag)
    return found


def _key(e: Evaluation, objective: str) -> tuple[float, float]:
    return (e.makespan, e.pod_seconds) if objective == "time" else (e.pod_seconds, e.makespan)


def better(new: Evaluation, old: Evaluation, objective: str) -> bool:
    (a1, a2), (b1, b2) = _key(new, objective), _key(old, objective)
    return a1 < b1 - EPS or (abs(a1 - b1) <= EPS and a2 < b2 - EPS)


def _merged_duration(graph: Graph, e: Evaluation, u: int, v: int) -> float:
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

    return heapq.nlargest(3, ((values[g], g) for g in among))


def _best_except(top: list[tuple[float, int]], skip: set[int]) -> float:
    return next((value for value, g in top if g not in skip), 0.0)


def _through(
    e: Evaluation, tops: tuple[dict[int, Any], dict[int, Any]], u: int, v: int, duration: float
) -> float:
    """The longest path through the merged group (exact when the merge is acyclic)."""
    before, after = tops
    pair = {u, v}
    start = max(_best_except(before[u], pair), _best_except(before[v], pair))
    end = max(_best_except(after[u], pair), _best_except(after[v], pair))
    return start + duration + end


def _creates_cycle(e: Evaluation, u: int, v: int) -> bool:
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


def _too_big(graph: Graph, touched: Mapping[int, set[int]], u: int, v: int, bound: float) -> bool:
    return sum(graph.size[ds] for ds in touched[u] | touched[v]) > bound


def _candidates(
    graph: Graph, e: Evaluation, rules: Rules
) -> list[tuple[tuple[Any, ...], int, int]]:
    """Merges of groups joined by an edge that the rules allow, best first."""
    classes = classes_of(graph, e)
    tags = tags_of(e, rules)
    touched = touched_by(graph, e) if rules.max_memory is not None else {}
    tops = (
        {g: _top3(e.finish, e.pred[g]) for g in e.pred},
        {g: _top3(e.tail, e.succ[g]) for g in e.succ},
    )
    found = []
    for u, downs in e.succ.items():
        for v in downs:
            if not rules.allow_mixed and len(classes[u] | classes[v]) > 1:
                continue
            if len(tags[u] | tags[v]) > 1:
                continue
            if rules.max_memory is not None and _too_big(graph, touched, u, v, rules.max_memory):
                continue
            duration = _merged_duration(graph, e, u, v)
            saving = e.duration[u] + e.duration[v] - duration
            through = _through(e, tops, u, v, duration)
            if saving <= EPS or (rules.objective == "time" and through > e.makespan + EPS):
                continue
            order = (through, -saving) if rules.objective == "time" else (-saving, through)
            found.append(((*order, e.pos[u], e.pos[v]), u, v))
    found.sort()
    return found


def _batch(
    e: Evaluation, candidates: list[tuple[tuple[Any, ...], int, int]]
) -> list[tuple[int, int]]:
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


def search(graph: Graph, start: Evaluation, rules: Rules) -> Evaluation:
    """Greedy merging in checked batches; a batch that does not improve is halved."""
    current = start
    for _ in range(len(graph.names) + 1):  # every round merges at least one pair or stops
        pairs = _batch(current, _candidates(graph, current, rules))
        improved = None
        size = len(pairs)
        while size >= 1 and improved is None:
            trial = evaluate(graph, _merge(current.labels, pairs[:size]))
            if trial is not None and better(trial, current, rules.objective):
                improved = trial
            size //= 2
        if improved is None:
            return current
        current = improved
    return current
