"""Kedro's persisted datasets as Airflow 3 assets: which task of a DAG saves which, and which
inputs of the DAG other pipelines' DAGs make (what `dag.schedule_on_inputs` schedules it on).

A dataset is an asset where its data outlives the task that saved it, so another DAG can read
it: a catalog filepath on GCS (`gs://`; `gcs://` is written `gs://`). With `pod_backend: local`
every task shares one machine's disk, so a catalog file on local disk is one too (its absolute
path as a `file://` URI), except one that crosses this DAG's tasks while `local_handoff` is on:
the run prefix carries it and its path is never written. The classes come from the storage
plan (`planning/storage.py`), so both say the same about a dataset.

Pure: no Kedro, no Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from kedro_gcs_bridge.planning.storage import (
    DatasetLocation,
    StorageClass,
    StorageEntry,
    Where,
    classify,
)

if TYPE_CHECKING:
    from kedro_gcs_bridge.planning.grouping import NodeSpec
    from kedro_gcs_bridge.planning.plan import Plan

#: URL schemes of GCS, and the one an asset's URI is written with.
_GCS_SCHEMES = ("gs://", "gcs://")
_GCS_URI = "gs://"

#: Classes of a dataset a task of this DAG saves at its catalog path on local disk.
_SAVED_ON_DISK = frozenset(
    {StorageClass.IN_POD, StorageClass.LEFT_ON_DISK, StorageClass.LOCAL_CROSSING}
)


@dataclass(frozen=True)
class DatasetAsset:
    """One catalog dataset as an Airflow asset.

    Attributes:
        name: The dataset's name (base name, no transcoding suffix): the asset's name.
        uri: Where the catalog keeps it (`gs://...`, or `file:///...` on the local backend).
        versioned: The catalog keeps its versions; the asset event carries the saved one.
    """

    name: str
    uri: str
    versioned: bool = False


@dataclass(frozen=True)
class AssetPlan:
    """The assets of one DAG.

    Attributes:
        outlets: Task id -> the assets its nodes save, in the order the pipeline names them.
        inputs: Assets this DAG reads that other pipelines' DAGs make.
        made_by: Dataset name of each of `inputs` -> the pipelines whose DAGs make it.
    """

    outlets: Mapping[str, tuple[DatasetAsset, ...]]
    inputs: tuple[DatasetAsset, ...]
    made_by: Mapping[str, tuple[str, ...]]

    def all_assets(self) -> tuple[DatasetAsset, ...]:
        """Every asset of the DAG once: the outlets in task order, then the inputs."""
        found = {asset.name: asset for assets in self.outlets.values() for asset in assets}
        return tuple({**found, **{asset.name: asset for asset in self.inputs}}.values())

    def versioned(self, task_id: str) -> tuple[DatasetAsset, ...]:
        """The task's outlets whose asset events carry the saved version."""
        return tuple(asset for asset in self.outlets.get(task_id, ()) if asset.versioned)


def asset_uri(location: DatasetLocation, local_backend: bool, project_path: str) -> str | None:
    """The asset URI of a dataset's catalog location, or None when it is no asset here.

    Args:
        location: Where the catalog keeps the dataset.
        local_backend: `pod_backend: local` (files on local disk are shared by every task).
        project_path: The project folder, which relative catalog paths are under.
    """
    path = location.path
    if path is None or location.where is Where.MEMORY:
        return None
    if location.where is Where.REMOTE:
        for scheme in _GCS_SCHEMES:
            if path.startswith(scheme):
                return _GCS_URI + path.removeprefix(scheme)
        return None
    if not local_backend:
        return None
    target = PurePosixPath(path)
    if not target.is_absolute():
        target = PurePosixPath(project_path) / target
    return target.as_uri() if target.is_absolute() else None


def _is_outlet(entry: StorageEntry) -> bool:
    """A dataset this DAG saves at its catalog location (not one only the run prefix holds)."""
    if entry.producer is None:
        return False
    return entry.storage_class is StorageClass.REMOTE or entry.storage_class in _SAVED_ON_DISK


def plan_assets(
    plan: Plan,
    nodes: Sequence[NodeSpec],
    locations: Mapping[str, DatasetLocation],
    made_elsewhere: Mapping[str, Sequence[str]],
    local_backend: bool,
    local_handoff: bool = True,
    project_path: str = "",
    *,
    entries: Sequence[StorageEntry] | None = None,
) -> AssetPlan:
    """The outlets of each task of a planned pipeline, and its inputs other DAGs make.

    Args:
        plan: The pipeline's plan (which node runs in which task).
        nodes: The pipeline's nodes (`node_specs`).
        locations: Base dataset name -> where the catalog keeps it (absent: in memory).
        made_elsewhere: Base name -> the other registered pipelines that output it.
        local_backend: `pod_backend: local`.
        local_handoff: The `local_handoff` policy (a crossing local file is not written).
        project_path: The project folder (for relative local paths).
        entries: The pipeline's datasets, classified already (`storage.classify` of the same
            plan, nodes and locations; local paths may be relative to `project_path`).

    Returns:
        The DAG's asset plan; datasets that are no assets (in memory, local disk on GKE, other
        remote stores) are left out.
    """
    if entries is None:
        entries = classify(plan, nodes, locations, made_elsewhere, {}, local_handoff)
    outlets: dict[str, list[DatasetAsset]] = {task.task_id: [] for task in plan.tasks}
    inputs: list[DatasetAsset] = []
    made_by: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        uri = asset_uri(entry.location, local_backend, project_path)
        if uri is None:
            continue
        asset = DatasetAsset(entry.dataset, uri, entry.location.versioned)
        if _is_outlet(entry) and entry.producer is not None:
            outlets[entry.producer].append(asset)
        elif entry.producer is None and made_elsewhere.get(entry.dataset):
            inputs.append(asset)
            made_by[entry.dataset] = tuple(made_elsewhere[entry.dataset])
    return AssetPlan(
        {task: tuple(assets) for task, assets in outlets.items() if assets},
        tuple(inputs),
        made_by,
    )
