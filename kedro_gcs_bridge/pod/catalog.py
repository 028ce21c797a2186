"""What the Kedro catalog says of boundary datasets: in memory, or a file, and where."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kedro.io.core import get_protocol_and_path

_MEMORY_TYPES = frozenset({"MemoryDataset", "SharedMemoryDataset"})


def is_memory(dataset: Any) -> bool:
    """True for datasets that live only in the process (lost when a pod ends)."""
    return dataset is None or type(dataset).__name__ in _MEMORY_TYPES


def dataset_path(dataset: Any) -> str | None:
    """The filepath a catalog dataset reads and writes, when it has one."""
    try:
        described = dataset._describe()
    except Exception:  # noqa: BLE001 - third-party datasets may not describe themselves
        return None
    path = described.get("filepath") or described.get("path")
    return None if path is None else str(path)


def local_path(dataset: Any) -> str | None:
    """The path of a file dataset on local disk, or None (in memory, remote, or no path)."""
    if is_memory(dataset):
        return None
    path = dataset_path(dataset)
    if path is None:
        return None
    protocol, _ = get_protocol_and_path(path)
    return path if protocol == "file" else None


def local_disk_paths(catalog: Any, names: Iterable[str]) -> dict[str, str]:
    """Boundary datasets that are catalog entries on local disk -> their path.

    Such a dataset is written inside one pod and read in another, where the file is not.
    """
    found: dict[str, str] = {}
    for name in names:
        if name not in catalog:
            continue
        path = local_path(catalog.get(name))
        if path is not None:
            found[name] = path
    return found
