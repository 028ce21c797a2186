"""The storage plan of a DAG: where each dataset a pod reads or writes lives, and what breaks.

On GKE every pod has its own disk, gone when the pod ends. `classify` puts every dataset of
a planned pipeline into one `StorageClass` from plain facts gathered at the edges (where the
catalog keeps it, which other pipelines make it, whether the image holds its file); `grade`
turns the classes into errors and warnings by the two policies of the airflow config:

- `local_handoff` (default true): a local-disk catalog dataset that crosses pods travels
  through the run prefix; false makes it an error.
- `local_disk` (`error` by default, or `warn`): raw inputs the image lacks, inputs another
  pipeline's DAG makes (left on its pods' disk or in their memory), and outputs left on a
  pod's disk.

Pure: no Kedro, no file system.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from kedro_gcs_bridge.planning.grouping import NodeSpec, base_name, is_parameter

if TYPE_CHECKING:
    from kedro_gcs_bridge.planning.plan import Plan

#: What a user runs to move every local-disk catalog entry to GCS.
CATALOG_REMEDY = (
    "move it to GCS: `kedro gcs-bridge catalog --root gs://<bucket>/<path>` writes a catalog "
    "env (conf/gcs) with every local-disk entry on GCS; then `kedro airflow create -j "
    "templates/gcs_bridge.j2 -e gcs`"
)


class Where(Enum):
    """Where the catalog keeps a dataset."""

    MEMORY = "memory"
    LOCAL = "local disk"
    REMOTE = "remote"


@dataclass(frozen=True)
class DatasetLocation:
    """Where one dataset lives: in memory, on local disk at `path`, or remote (gs://, ...);
    `versioned` when the catalog keeps its versions (`versioned: true`)."""

    where: Where
    path: str | None = None
    versioned: bool = False


MEMORY = DatasetLocation(Where.MEMORY)


def location_key(location: DatasetLocation) -> tuple[Where, str] | None:
    """What makes two catalog entries one dataset: the same place on disk or on a remote
    store (a trailing `/` aside); None for one in memory or without a path."""
    if location.where is Where.MEMORY or not location.path:
        return None
    return location.where, location.path.rstrip("/") or "/"


def aliases_of(locations: Mapping[str, DatasetLocation], written: Iterable[str]) -> dict[str, str]:
    """Names no node writes -> the written name whose entry resolves to the same location
    (a folder one node saves as `parts_out` and another loads as `parts_in`).

    Args:
        locations: Dataset name -> where the catalog keeps it.
        written: The names nodes write.
    """
    writers = set(written)
    by_key = {
        key: name
        for name in sorted(writers)
        if (key := location_key(locations.get(name, MEMORY))) is not None
    }
    return {
        name: by_key[key]
        for name, location in locations.items()
        if name not in writers and (key := location_key(location)) in by_key
    }


class StorageClass(Enum):
    """What a dataset is to the pods of one DAG; the value is the heading `plan` prints."""

    HANDOFF = "handoff: in memory, crosses pods through the run prefix"
    REMOTE = "catalog on GCS (or another remote store)"
    LOCAL_HANDOFF = "local disk, crosses pods through the run prefix (handoff.local_handoff: true)"
    LOCAL_CROSSING = "local disk, crosses pods"
    IN_POD = "local disk, read and written inside one pod"
    RAW_IN_IMAGE = "raw input on local disk, in the image"
    RAW_MISSING = "raw input on local disk, missing from the image"
    OTHER_DAG = "input made by another pipeline's DAG"
    LEFT_ON_DISK = "output left on a pod's disk"


@dataclass(frozen=True)
class StorageEntry:
    """One dataset of the DAG and its class.

    Attributes:
        dataset: Base name (no transcoding suffix).
        storage_class: Its class.
        location: Where the catalog keeps it.
        producer: Task id that writes it, when this DAG does.
        readers: Task ids that read it.
        detail: Why the image lacks it (RAW_MISSING), or the pipelines that make it (OTHER_DAG).
    """

    dataset: str
    storage_class: StorageClass
    location: DatasetLocation
    producer: str | None
    readers: tuple[str, ...]
    detail: str = ""


@dataclass(frozen=True)
class StoragePlan:
    """Every dataset's class, and the errors and warnings the policies make of them."""

    entries: tuple[StorageEntry, ...]
    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    def local_disk_edges(self) -> dict[str, str]:
        """Datasets on local disk that cross pods -> a note for the plan's views."""
        notes = {
            StorageClass.LOCAL_HANDOFF: "carried through the run prefix",
            StorageClass.LOCAL_CROSSING: "lost between pods",
        }
        return {
            entry.dataset: f"{entry.location.path}: {notes[entry.storage_class]}"
            for entry in self.entries
            if entry.storage_class in notes
        }


def _classify_input(
    location: DatasetLocation, made_elsewhere: bool, missing_from_image: bool
) -> StorageClass | None:
    if location.where is Where.REMOTE:
        return StorageClass.REMOTE
    if made_elsewhere:
        return StorageClass.OTHER_DAG
    if location.where is Where.MEMORY:
        return None  # not in the catalog and made by no pipeline: Kedro itself reports it
    return StorageClass.RAW_MISSING if missing_from_image else StorageClass.RAW_IN_IMAGE


def _classify_made(
    location: DatasetLocation, crosses: bool, read_here: bool, local_handoff: bool
) -> StorageClass | None:
    if location.where is Where.REMOTE:
        return StorageClass.REMOTE
    if location.where is Where.MEMORY:
        # Not crossing, it stays in one process, as with `kedro run`.
        return StorageClass.HANDOFF if crosses else None
    if crosses:
        return StorageClass.LOCAL_HANDOFF if local_handoff else StorageClass.LOCAL_CROSSING
    return StorageClass.IN_POD if read_here else StorageClass.LEFT_ON_DISK


def _who(nodes: Sequence[NodeSpec], plan: Plan) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Dataset -> the task that writes it; dataset -> the tasks that read it (in order)."""
    task_of = {node: task.task_id for task in plan.tasks for node in task.nodes}
    writers: dict[str, str] = {}
    readers: dict[str, list[str]] = {}
    for node in nodes:
        for name in node.outputs:
            writers[base_name(name)] = task_of[node.name]
        for name in node.inputs:
            if not is_parameter(name):
                found = readers.setdefault(base_name(name), [])
                if task_of[node.name] not in found:
                    found.append(task_of[node.name])
    return writers, readers


def _read_by(names: Sequence[str], readers: Mapping[str, Sequence[str]]) -> list[str]:
    return [task for name in names for task in readers.get(name, ())]


def classify(
    plan: Plan,
    nodes: Sequence[NodeSpec],
    locations: Mapping[str, DatasetLocation],
    made_elsewhere: Mapping[str, Sequence[str]],
    missing_from_image: Mapping[str, str],
    local_handoff: bool = True,
) -> tuple[StorageEntry, ...]:
    """Puts every dataset of a planned pipeline into its storage class.

    Args:
        plan: The pipeline's plan (which node runs in which task).
        nodes: The pipeline's nodes (`node_specs`).
        locations: Base dataset name -> where the catalog keeps it (absent: in memory).
        made_elsewhere: Base name -> the other registered pipelines that output it.
        missing_from_image: Local-disk dataset -> why the image does not hold its file.
        local_handoff: The `local_handoff` policy.

    Returns:
        One entry per dataset, in the order the pipeline first mentions them; datasets that
        stay in one process's memory are left out. Entries no node writes that resolve to
        the location of one a node writes (`aliases_of`) are that dataset: their readers
        are its readers, and its `detail` names them.
    """
    writers, readers = _who(nodes, plan)
    names = dict.fromkeys(
        base_name(name)
        for node in nodes
        for name in (*node.inputs, *node.outputs)
        if not is_parameter(name)
    )
    aliases = aliases_of({name: locations.get(name, MEMORY) for name in names}, writers)
    aliases_by_written: dict[str, list[str]] = {}
    for alias, written in aliases.items():
        aliases_by_written.setdefault(written, []).append(alias)
    entries = []
    for name in names:
        if name in aliases:
            continue  # one dataset with the name that writes it
        location = locations.get(name, MEMORY)
        producer = writers.get(name)
        read_as = aliases_by_written.get(name)
        if read_as:
            reading = tuple(dict.fromkeys([*readers.get(name, ()), *_read_by(read_as, readers)]))
            detail = f"read as {', '.join(repr(alias) for alias in read_as)}"
        else:  # the common case: `_who` lists each reader once
            reading = tuple(readers.get(name, ()))
            detail = ""
        if producer is None:
            others = made_elsewhere.get(name, ())
            kind = _classify_input(location, bool(others), name in missing_from_image)
            detail = ", ".join(others) if others else missing_from_image.get(name, "")
        else:
            crosses = any(task != producer for task in reading)
            # The run prefix carries a dataset by its name: not to a reader of another name.
            handoff = local_handoff and not any(
                task != producer for task in _read_by(read_as or (), readers)
            )
            kind = _classify_made(location, crosses, bool(reading), handoff)
        if kind is not None:
            entries.append(StorageEntry(name, kind, location, producer, reading, detail))
    return tuple(entries)


def _tasks(task_ids: Sequence[str]) -> str:
    return ", ".join(task_ids) or "-"


def _problem(entry: StorageEntry) -> str:
    """What goes wrong on GKE with this dataset (for the classes that break something)."""
    path, readers = entry.location.path, _tasks(entry.readers)
    cls = StorageClass
    if entry.storage_class is cls.LOCAL_CROSSING:
        read_as = f" ({entry.detail})" if entry.detail else ""
        return (
            f"dataset '{entry.dataset}' is saved on local disk ({path}) by task "
            f"{entry.producer} and read{read_as} by task(s) {readers} in other pods, which "
            "will not find it"
        )
    if entry.storage_class is cls.RAW_MISSING:
        return (
            f"raw input '{entry.dataset}' is read from local disk ({path}) by task(s) "
            f"{readers}, but the image does not hold it ({entry.detail})"
        )
    if entry.storage_class is cls.OTHER_DAG and entry.location.where is Where.MEMORY:
        return (
            f"input '{entry.dataset}' is made by pipeline(s) {entry.detail} but not in the "
            f"catalog (kept in memory there): no pod of this DAG can load it for task(s) "
            f"{readers}"
        )
    if entry.storage_class is cls.OTHER_DAG:
        return (
            f"input '{entry.dataset}' is saved on local disk ({path}) by the DAG of "
            f"pipeline(s) {entry.detail}: that pod's disk is gone when task(s) {readers} of "
            "this DAG read it"
        )
    return (
        f"output '{entry.dataset}' is saved on local disk ({path}) by task {entry.producer} "
        "and lost when its pod ends"
    )


_LOCAL_DISK_REMEDY = f"{CATALOG_REMEDY}; or set `handoff.local_disk: warn` to write the DAG anyway"

#: Class -> (the policy that grades it, the remedy named in the error).
_RULES: dict[StorageClass, tuple[str, str]] = {
    StorageClass.LOCAL_CROSSING: (
        "error",
        "set `handoff.local_handoff: true` so the run prefix carries it, or " + CATALOG_REMEDY,
    ),
    StorageClass.RAW_MISSING: ("local_disk", _LOCAL_DISK_REMEDY),
    StorageClass.OTHER_DAG: ("local_disk", _LOCAL_DISK_REMEDY),
    StorageClass.LEFT_ON_DISK: ("local_disk", _LOCAL_DISK_REMEDY),
}

_IN_MEMORY_ELSEWHERE_REMEDY = (
    "declare it in the catalog with a gs:// filepath, so the other DAG saves it where this "
    "one loads it"
)


def _versions_lost(entry: StorageEntry) -> str:
    """A warning for a versioned local-disk dataset only the run prefix carries, or ''."""
    if entry.storage_class is not StorageClass.LOCAL_HANDOFF or not entry.location.versioned:
        return ""
    return (
        f"versioned dataset '{entry.dataset}' is saved on local disk ({entry.location.path}) "
        f"by task {entry.producer} and reaches task(s) {_tasks(entry.readers)} through the "
        "run prefix: no version is kept after the run (the pod's disk goes with the pod, the "
        f"run prefix with `runs gc`). To keep its versions, {CATALOG_REMEDY}."
    )


def grade(entries: Sequence[StorageEntry], local_disk: str = "error") -> StoragePlan:
    """Errors and warnings of a classified DAG under the `local_disk` policy.

    Args:
        entries: From `classify`.
        local_disk: `error` or `warn` (the config's `handoff.local_disk`).

    Returns:
        The storage plan: errors name the dataset and the remedy; warnings (local_disk:
        warn, and versioned datasets only the run prefix carries) say what will be missing
        or lost.
    """
    errors: list[str] = []
    warnings: list[str] = []
    for entry in entries:
        if lost := _versions_lost(entry):
            warnings.append(lost)
        if entry.storage_class not in _RULES:
            continue
        policy, remedy = _RULES[entry.storage_class]
        if entry.storage_class is StorageClass.LOCAL_CROSSING and entry.detail:
            remedy = CATALOG_REMEDY  # read under another name: the run prefix cannot carry it
        if entry.storage_class is StorageClass.OTHER_DAG and entry.location.where is Where.MEMORY:
            remedy = f"{_IN_MEMORY_ELSEWHERE_REMEDY}; or set `handoff.local_disk: warn`"
        severity = local_disk if policy == "local_disk" else policy
        if severity == "warn":
            warnings.append(f"{_problem(entry)} (handoff.local_disk: warn).")
        else:
            errors.append(f"{_problem(entry)}. Remedy: {remedy}.")
    return StoragePlan(tuple(entries), tuple(errors), tuple(warnings))


def storage_text(storage: StoragePlan) -> str:
    """The storage plan as `plan` prints it: the datasets of each class, then the problems."""
    lines = ["Storage (each GKE pod has its own disk):"]
    for kind in StorageClass:
        members = [entry for entry in storage.entries if entry.storage_class is kind]
        if not members:
            continue
        lines.append(f"  {kind.value}:")
        for entry in members:
            where = f" ({entry.location.path})" if entry.location.path else ""
            read_as = f", {entry.detail}" if entry.detail and entry.producer else ""
            lines.append(f"    {entry.dataset}{where}{read_as}")
    lines += [f"error: {error}" for error in storage.errors]
    lines += [f"warning: {warning}" for warning in storage.warnings]
    return "\n".join(lines) + "\n"


def remedies_once(errors: Sequence[str]) -> list[str]:
    """The lines that print errors, each shared remedy said once after the errors it fixes.

    Errors keep their order within a remedy; the groups follow the first error of each.
    """
    groups: dict[str | None, list[str]] = {}
    for error in errors:
        problem, found, remedy = error.partition(". Remedy: ")
        if found and sum(other.endswith(f". Remedy: {remedy}") for other in errors) > 1:
            groups.setdefault(remedy, []).append(f"{problem}.")
        else:
            groups.setdefault(None, []).append(error)
    lines: list[str] = []
    for remedy, problems in groups.items():
        lines += [f"error: {problem}" for problem in problems]
        if remedy is not None:
            lines.append(f"remedy for the {len(problems)} errors above: {remedy}")
    return lines
