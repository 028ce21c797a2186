"""Auto-grouping on synthetic pipelines: estimated makespan of the suggested grouping against
ungrouped and kedro-airflow's `--group-by memory` / `--group-by namespace`, and search time.

Shapes (seeded, node seconds uniform in [1, 120], dataset sizes log-uniform in [1 kB, 1 GB]):
- chain: n0 -> n1 -> ... (one long line);
- fanout: repeated fan-out/fan-in blocks (a source, 10 branches of 1-3 nodes, a join), each
  block in its own namespace;
- wide: one source feeding n-2 independent nodes, each in one of 20 namespaces, one join.
Every figure is the model's estimate (`kedro_gcs_bridge.planning.suggest.CostModel` defaults:
60 s pod start, 5 s kedro start, 40 ms a GCS round trip, 200 MB/s, 1 GB/s encode/decode);
nothing runs on a cluster. Search time is wall time of `suggest_groups` on this machine.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import _common as common

from kedro_gcs_bridge.planning.grouping import NodeSpec
from kedro_gcs_bridge.planning.suggest import Measurements, suggest_groups

NAME = "suggest"
SIZES = (100, 1000, 2000)
SEARCH_LIMIT_S = 10.0


def chain(n: int, rng: random.Random) -> list[NodeSpec]:
    """n0 -> n1 -> ... -> n(n-1)."""
    return [NodeSpec(f"n{i}", (f"d{i - 1}" if i else "raw",), (f"d{i}",)) for i in range(n)]


def fanout(n: int, rng: random.Random) -> list[NodeSpec]:
    """Blocks of source -> 10 short branches -> join, block k in namespace `b<k>`."""
    nodes: list[NodeSpec] = []
    previous, block = "raw", 0
    while len(nodes) < n:
        ns = f"b{block}"
        nodes.append(NodeSpec(f"{ns}.src", (previous,), (f"{ns}.s",), namespace=ns))
        ends = []
        for branch in range(10):
            last = f"{ns}.s"
            for step in range(rng.randint(1, 3)):
                name = f"{ns}.br{branch}_{step}"
                nodes.append(NodeSpec(name, (last,), (f"{name}.o",), namespace=ns))
                last = f"{name}.o"
            ends.append(last)
        nodes.append(NodeSpec(f"{ns}.join", tuple(ends), (f"{ns}.j",), namespace=ns))
        previous, block = f"{ns}.j", block + 1
    return nodes[:n] if _closed(nodes[:n]) else nodes


def _closed(nodes: list[NodeSpec]) -> bool:
    made = {out for node in nodes for out in node.outputs} | {"raw"}
    return all(name in made for node in nodes for name in node.inputs)


def wide(n: int, rng: random.Random) -> list[NodeSpec]:
    """One source, n-2 independent nodes in 20 namespaces, one join."""
    middle = [
        NodeSpec(f"ns{i % 20}.w{i}", ("s",), (f"ns{i % 20}.w{i}.o",), namespace=f"ns{i % 20}")
        for i in range(n - 2)
    ]
    join = NodeSpec("join", tuple(node.outputs[0] for node in middle), ("out",))
    return [NodeSpec("src", ("raw",), ("s",)), *middle, join]


SHAPES: dict[str, Callable[[int, random.Random], list[NodeSpec]]] = {
    "chain": chain,
    "fanout": fanout,
    "wide": wide,
}


def measure(nodes: list[NodeSpec], rng: random.Random) -> Measurements:
    """Seeded node seconds and dataset sizes."""
    seconds = {node.name: rng.uniform(1, 120) for node in nodes}
    sizes = {out: int(10 ** rng.uniform(3, 9)) for node in nodes for out in node.outputs}
    return Measurements(seconds, sizes)


def row(shape: str, n: int) -> dict[str, Any]:
    """One pipeline: the estimates of every grouping and the search time."""
    rng = random.Random(f"{shape}-{n}")
    nodes = SHAPES[shape](n, rng)
    measured = measure(nodes, rng)
    alone = {node.name: node.name for node in nodes}
    start = time.perf_counter()
    result = suggest_groups(nodes, measured, {}, alone)
    seconds = time.perf_counter() - start
    return {
        "shape": shape,
        "nodes": len(nodes),
        "search_s": seconds,
        **{f"{key}_tasks": e.tasks for key, e in _rows(result)},
        **{f"{key}_makespan_s": e.makespan_s for key, e in _rows(result)},
        **{f"{key}_pod_s": e.pod_seconds for key, e in _rows(result)},
    }


def _rows(result: Any) -> list[tuple[str, Any]]:
    return [
        ("ungrouped", result.ungrouped),
        ("suggested", result.suggested),
        ("memory", result.by_memory),
        ("namespace", result.by_namespace),
    ]


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    sizes = (100,) if args.quick else SIZES
    rows = [row(shape, n) for shape in SHAPES for n in sizes]
    print(
        common.table(
            "Estimated makespan (s) and tasks per grouping; search time of `suggest_groups`",
            [
                "shape",
                "nodes",
                "ungrouped",
                "memory",
                "namespace",
                "suggested",
                "tasks u/m/ns/s",
                "search s",
            ],
            [
                [
                    r["shape"],
                    r["nodes"],
                    r["ungrouped_makespan_s"],
                    r["memory_makespan_s"],
                    r["namespace_makespan_s"],
                    r["suggested_makespan_s"],
                    f"{r['ungrouped_tasks']}/{r['memory_tasks']}/{r['namespace_tasks']}/"
                    f"{r['suggested_tasks']}",
                    r["search_s"],
                ]
                for r in rows
            ],
        )
    )
    slowest = max(r["search_s"] for r in rows)
    others = ("ungrouped", "memory", "namespace")
    worse = [
        r
        for r in rows
        if any(r["suggested_makespan_s"] > r[f"{key}_makespan_s"] + 1e-6 for key in others)
    ]
    targets = [
        common.Target(
            "search time, largest pipeline",
            f"< {SEARCH_LIMIT_S:g} s at {max(sizes)} nodes",
            f"{slowest:.2f} s",
            slowest < SEARCH_LIMIT_S,
        ),
        common.Target(
            "suggested vs ungrouped, --group-by memory and namespace makespan",
            "never worse",
            f"{len(worse)} worse of {len(rows)}",
            not worse,
        ),
    ]
    print()
    print(common.targets_table(targets))
    common.write_result(NAME, {"sizes": list(sizes)}, {"rows": rows}, targets)


if __name__ == "__main__":
    main()
