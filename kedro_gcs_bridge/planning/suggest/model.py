"""The cost model of a DAG on GKE Autopilot, and the figures it gives for one grouping.

A task (one group in one pod) takes

    pod start + kedro start + fixed GCS round trips + its nodes' seconds
    + per boundary dataset saved: round trips + bytes / bandwidth + bytes / encode rate
    + per boundary dataset loaded: round trips + bytes / bandwidth + bytes / decode rate

and the DAG's makespan is its longest path (Autopilot adds nodes, so parallel branches run at
once); pod-seconds are the sum over tasks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

OBJECTIVES = ("time", "cost")
EPS = 1e-9


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
        bandwidth_bytes_s: One pod's GCS throughput: 200 MB/s (the "~200 MB/s" of
            docs/benchmarks.md; a single stream from one pod).
        encode_bytes_s, decode_bytes_s: Arrow IPC, uncompressed: 1 GB/s each (about pickle-5's
            speed, docs/benchmarks.md "frame format" row).
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
