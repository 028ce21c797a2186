"""Where the Kedro catalog keeps a dataset: in memory, on local disk, or remote (gs://, ...).

The protocol comes from the dataset's `_protocol` attribute (kedro-datasets sets it from the
configured filepath) or from the configured filepath itself through Kedro's fsspec parser,
never from `_describe()`, which drops the protocol (`gs://bucket/x` describes as `bucket/x`).
At plan time (`catalog_locations`) only the configuration is read, so no dataset, file system
or credential is created.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from kedro.io.core import get_protocol_and_path

from kedro_gcs_bridge.planning.storage import MEMORY, DatasetLocation, Where

_MEMORY_TYPES = frozenset({"MemoryDataset", "SharedMemoryDataset"})
_LOCAL_PROTOCOLS = frozenset({"file", "local"})
_PATH_KEYS = ("filepath", "path")


def is_memory(dataset: Any) -> bool:
    """True for datasets that live only in the process (lost when a pod ends)."""
    return dataset is None or type(dataset).__name__ in _MEMORY_TYPES


def configured_path(config: Mapping[str, Any]) -> str | None:
    """The filepath a dataset's catalog entry names (a wrapped `dataset:` entry's too)."""
    for key in _PATH_KEYS:
        if isinstance(config.get(key), str):
            return str(config[key])
    inner = config.get("dataset")
    return configured_path(inner) if isinstance(inner, Mapping) else None


def _from_path(path: str, protocol: str | None = None) -> DatasetLocation:
    if protocol is None:
        protocol, _ = get_protocol_and_path(path)
    if protocol in _LOCAL_PROTOCOLS:
        return DatasetLocation(Where.LOCAL, path.removeprefix("file://"))
    return DatasetLocation(Where.REMOTE, path)


def location_of_config(config: Mapping[str, Any] | None) -> DatasetLocation:
    """Where a catalog entry (its configuration) keeps the dataset."""
    if not config:
        return MEMORY
    type_name = str(config.get("type", "")).rsplit(".", 1)[-1]
    if type_name in _MEMORY_TYPES:
        return MEMORY
    path = configured_path(config)
    location = DatasetLocation(Where.REMOTE) if path is None else _from_path(path)
    return replace(location, versioned=bool(config.get("versioned")))


def location_of(dataset: Any) -> DatasetLocation:
    """Where a created dataset keeps its data.

    Reads `_protocol` and `_filepath` when the dataset has them (kedro-datasets file
    datasets), else the filepath of the configuration it was created with.
    """
    if is_memory(dataset):
        return MEMORY
    protocol = getattr(dataset, "_protocol", None)
    filepath = getattr(dataset, "_filepath", None)
    if isinstance(protocol, str) and filepath is not None:
        versioned = getattr(dataset, "_version", None) is not None
        if protocol in _LOCAL_PROTOCOLS:
            return DatasetLocation(Where.LOCAL, str(filepath), versioned)
        return DatasetLocation(Where.REMOTE, f"{protocol}://{filepath}", versioned)
    try:
        config = dataset._init_config()
    except Exception:  # noqa: BLE001 - third-party datasets may not record their config
        return DatasetLocation(Where.REMOTE)
    return location_of_config(config)


def entry_of(dataset: Any) -> dict[str, Any] | None:
    """The catalog entry a created dataset was made from (type, filepath, options), or None."""
    try:
        config = dataset._init_config()
    except Exception:  # noqa: BLE001 - third-party datasets may not record their config
        return None
    return dict(config) if isinstance(config, Mapping) else None


def local_path(dataset: Any) -> str | None:
    """The path of a dataset on local disk, or None (in memory, remote, or no path)."""
    location = location_of(dataset)
    return location.path if location.where is Where.LOCAL else None


def catalog_locations(catalog: Any, names: Iterable[str]) -> dict[str, DatasetLocation]:
    """Where the catalog keeps each dataset, from its configuration (patterns resolved).

    Args:
        catalog: A Kedro `DataCatalog`.
        names: Dataset names; ones the catalog does not know are in memory.

    Returns:
        Name -> location, for every name.
    """
    declared, *_ = catalog.to_config()
    found: dict[str, DatasetLocation] = {}
    for name in names:
        if name in declared:
            found[name] = location_of_config(declared[name])
        elif name in catalog:
            found[name] = location_of_config(catalog.config_resolver.resolve_pattern(name))
        else:
            found[name] = MEMORY
    return found
