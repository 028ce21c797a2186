"""What a measured run says: node seconds, dataset bytes and pod starts from its manifests,
and which run `suggest --from` names (a run prefix URL or an MLflow run id)."""

from __future__ import annotations

import datetime as dt
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kedro_gcs_bridge.planning.grouping import NodeSpec, base_name, is_parameter
from kedro_gcs_bridge.planning.suggest.model import Measurements


class _Sized(Protocol):
    @property
    def size(self) -> int: ...


class MeasuredManifest(Protocol):
    """What suggest reads of a group's manifest (`pod/protocol.py`'s `Manifest` is one; planning
    does not import the pod side, so the shape is stated here)."""

    @property
    def task(self) -> str: ...
    @property
    def dag_tasks(self) -> Sequence[str] | None: ...
    @property
    def nodes(self) -> Sequence[str]: ...
    @property
    def datasets(self) -> Mapping[str, _Sized]: ...
    @property
    def node_seconds(self) -> Mapping[str, float] | None: ...
    @property
    def started_at(self) -> str | None: ...
    @property
    def finished_at(self) -> str | None: ...
    @property
    def pod_start_seconds(self) -> float | None: ...


def mlflow_run_id(source: str) -> str | None:
    """The MLflow run id `--from` names: `mlflow:<run id>`, or a bare 32-hex run id (never a
    run prefix, which always holds `<dag_id>/<run_id>`); None for a run prefix URL."""
    if source.startswith("mlflow:"):
        return source.removeprefix("mlflow:").strip()
    return source if re.fullmatch(r"[0-9a-f]{32}", source) else None


def _contention(manifest: MeasuredManifest) -> tuple[int, int] | None:
    """(tasks at once, CPUs) of a replay that ran more tasks at once than the machine has
    cores: its pod start holds the wait for a CPU. None for a pod, or a replay within them
    (older manifests record neither)."""
    parallel = getattr(manifest, "replay_parallel", None)
    cpus = getattr(manifest, "cpus", None)
    if parallel is None or cpus is None or parallel <= cpus:
        return None
    return int(parallel), int(cpus)


def measured_pod_start(manifests: Sequence[MeasuredManifest]) -> tuple[float, int] | None:
    """The median `pod_start_seconds` the run's groups measured (task start to first node),
    and how many measured it; None when none did (no `KEDRO_GCS_BRIDGE_TASK_START`). A
    measurement under CPU contention (`_contention`) is left out."""
    measured = [
        float(manifest.pod_start_seconds)
        for manifest in manifests
        if manifest.pod_start_seconds is not None and manifest.pod_start_seconds >= 0
        if _contention(manifest) is None
    ]
    return (statistics.median(measured), len(measured)) if measured else None


def _contended_text(manifests: Sequence[MeasuredManifest]) -> str:
    """How many pod starts a contended replay measured, and how it ran ("" when none)."""
    found = [
        contention
        for manifest in manifests
        if manifest.pod_start_seconds is not None
        if (contention := _contention(manifest)) is not None
    ]
    if not found:
        return ""
    parallel, cpus = max(found)
    return f"{len(found)} measured by replay --parallel {parallel} on {cpus} CPU(s)"


def pod_start_choice(
    given: float | None, kedro_start: float | None, manifests: Sequence[MeasuredManifest]
) -> tuple[float | None, float | None, str]:
    """(pod start, kedro start, where the pod start is from): `--pod-start`, else the run's
    measured median, else the model's default.

    A measured pod start runs to the first node, so it holds `kedro run`'s start already: the
    model's kedro start is then 0 unless `--kedro-start` is given, or None (the model's cold
    start) when replay started the tasks warm (`warm_start`: forked with Kedro imported).
    Pod starts a replay measured with more tasks at once than cores are left out, and said
    to be.
    """
    if given is not None:
        return given, kedro_start, "--pod-start"
    measured = measured_pod_start(manifests)
    contended = _contended_text(manifests)
    if measured is None:
        if contended:
            return (
                None,
                kedro_start,
                (
                    f"the model's default: the run's pod starts were {contended}, slowed by "
                    "waiting for a CPU; replay with --parallel at most the CPUs, or pass "
                    "--pod-start"
                ),
            )
        return None, kedro_start, "the model's default: the run measured no pod start"
    median, count = measured
    source = f"measured: median task start -> first node of {count} task(s)"
    if contended:
        source += f"; {contended} left out (waiting for a CPU)"
    if kedro_start is not None:
        return median, kedro_start, source
    if _warm(manifests):
        # A warm replay forked each task with Kedro imported: a pod's `kedro run` starts cold.
        source += ", started warm by replay: plus the model's cold `kedro run` start"
        return median, None, source
    return median, 0.0, source + ", `kedro run` start included (--kedro-start 0)"


def _warm(manifests: Sequence[MeasuredManifest]) -> bool:
    """Whether the measured pod starts were taken by tasks a replay started warm."""
    return any(getattr(manifest, "warm_start", None) for manifest in manifests)


def unsized_catalog_reads(nodes: Sequence[NodeSpec], persisted: frozenset[str]) -> tuple[str, ...]:
    """Datasets a node reads from the catalog's own storage (raw inputs, intermediates the
    catalog persists, on gs:// or disk): they never cross the run prefix, so the run
    measured no size for them and the model's bytes leave them out."""
    read = {base_name(name) for node in nodes for name in node.inputs if not is_parameter(name)}
    return tuple(sorted(read & persisted))


@dataclass(frozen=True)
class RunFigures:
    """What the manifests of one run prefix say.

    Attributes:
        measurements: Node seconds and dataset bytes.
        tasks: How many groups committed a manifest.
        estimated_nodes: Nodes whose seconds are their group's wall time split evenly (a
            manifest written before node timings were recorded).
        missing_tasks: Tasks of the run's DAG that committed no manifest (they failed, or
            never ran): the run is incomplete.
        unmeasured_nodes: Nodes of the pipeline no manifest measured (the model takes 0 s).
    """

    measurements: Measurements
    tasks: int
    estimated_nodes: tuple[str, ...]
    missing_tasks: tuple[str, ...] = ()
    unmeasured_nodes: tuple[str, ...] = ()

    def incomplete(self) -> list[str]:
        """What to say of a run some of whose tasks left no measurement (none when whole)."""
        if not self.missing_tasks and not self.unmeasured_nodes:
            return []
        lines = ["warning: the run is incomplete: its figures are partial."]
        if self.missing_tasks:
            lines.append(
                f"warning: {len(self.missing_tasks)} task(s) of the run committed no manifest "
                f"(failed or never ran): {', '.join(self.missing_tasks)}"
            )
        if self.unmeasured_nodes:
            lines.append(
                f"warning: no measurement for {len(self.unmeasured_nodes)} node(s), taken as "
                f"0 s with unknown output sizes: {', '.join(self.unmeasured_nodes)}"
            )
        lines.append("warning: suggest from a run that succeeded for a sound estimate.")
        return lines


def _seconds_between(start: Any, end: Any) -> float:

    try:
        delta = dt.datetime.fromisoformat(str(end)) - dt.datetime.fromisoformat(str(start))
    except ValueError:
        return 0.0
    return max(delta.total_seconds(), 0.0)


def figures_from_manifests(
    manifests: Sequence[MeasuredManifest],
    persisted: frozenset[str] = frozenset(),
    nodes: Sequence[str] = (),
) -> RunFigures:
    """Node seconds and dataset bytes from a run's committed manifests.

    Sizes the run did not measure (datasets internal to a group) are assumed to be the
    median measured size. `nodes` (the pipeline's node names) lets it name the nodes no
    manifest measured; the manifests' `dag_tasks` name the tasks that committed none.
    """
    seconds: dict[str, float] = {}
    sizes: dict[str, int] = {}
    estimated: list[str] = []
    for manifest in manifests:
        ran = list(manifest.nodes)
        if manifest.node_seconds:
            seconds.update(manifest.node_seconds)
        elif ran:
            wall = _seconds_between(manifest.started_at, manifest.finished_at)
            seconds.update(dict.fromkeys(ran, wall / len(ran)))
            estimated += ran
        sizes.update({name: record.size for name, record in manifest.datasets.items()})
    known = sorted(sizes.values())
    default = known[len(known) // 2] if known else 0
    measured = Measurements(seconds, sizes, default, persisted)
    committed = {manifest.task for manifest in manifests}
    expected = {task for manifest in manifests for task in manifest.dag_tasks or ()}
    unmeasured = tuple(name for name in nodes if name not in seconds)
    return RunFigures(
        measured,
        len(manifests),
        tuple(sorted(estimated)),
        tuple(sorted(expected - committed)),
        unmeasured,
    )
