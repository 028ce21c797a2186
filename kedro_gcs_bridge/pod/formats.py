"""Handoff formats: which kedro-datasets dataset writes a value that crosses between pods.

Frames (pandas, and polars where installed) go to Arrow IPC (Feather v2, uncompressed: safe,
columnar, typed), JSON-safe builtins to JSON, and anything else to cloudpickle only as the
fallback, which a setting can forbid. The choice is recorded with the object, so a reader never
guesses from the extension.
Serialising is done by kedro-datasets (`pandas.FeatherDataset`, `polars.EagerPolarsDataset`,
`json.JSONDataset`, `pickle.PickleDataset`), not by code of ours.

Why Arrow IPC and not Parquet: a frame's bytes cross once each way, so encode + decode time
matters more than size. For a 256 MiB frame (benchmarks/formats.py, 2 cores) uncompressed
Arrow IPC encodes + decodes in 1.0x the time of pickle protocol 5 and ~90x faster than
cloudpickle + bz2; Parquet with snappy takes 3.6-4.8x pickle-5 for files 22% smaller, which a
~200 MB/s transfer does not win back.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kedro_gcs_bridge.errors import ForbiddenFormatError

FEATHER = "feather"
POLARS_IPC = "polars-ipc"
JSON = "json"
PICKLE = "pickle"


@dataclass(frozen=True)
class Format:
    """One way to store a value: the kedro-datasets type and its arguments."""

    name: str
    extension: str
    dataset_type: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def dataset_config(self, filepath: str, fs_args: Mapping[str, Any] | None) -> dict[str, Any]:
        """The catalog entry that reads and writes this format at `filepath`."""
        config: dict[str, Any] = {"type": self.dataset_type, "filepath": filepath, **self.options}
        if fs_args:
            config["fs_args"] = dict(fs_args)
        return config


FORMATS: Mapping[str, Format] = {
    FEATHER: Format(
        FEATHER, "feather", "pandas.FeatherDataset", {"save_args": {"compression": "uncompressed"}}
    ),
    # polars frames (when polars is installed): Arrow IPC too, through polars' own reader.
    POLARS_IPC: Format(
        POLARS_IPC,
        "arrow",
        "polars.EagerPolarsDataset",
        {"file_format": "ipc", "save_args": {"compression": "uncompressed"}},
    ),
    JSON: Format(JSON, "json", "json.JSONDataset", {"save_args": {"allow_nan": False}}),
    PICKLE: Format(PICKLE, "pkl", "pickle.PickleDataset", {"backend": "cloudpickle"}),
}

#: Column name a pandas Series gets while it is stored as a one-column frame.
SERIES_COLUMN = "__series__"


def _json_safe(value: Any, depth: int = 0) -> bool:
    """True if JSON gives the value back unchanged (same types, same keys)."""
    if depth > 100:
        return False
    if value is None or isinstance(value, bool | str | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_json_safe(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(
            isinstance(key, str) and _json_safe(item, depth + 1) for key, item in value.items()
        )
    return False


def _is_polars_frame(value: Any) -> bool:
    polars = sys.modules.get("polars")  # a polars frame means polars is imported already
    return polars is not None and isinstance(value, polars.DataFrame)


def _columnar_frame(value: Any) -> tuple[Any, dict[str, Any]] | None:
    """The frame Arrow would store for a pandas value, with what rebuilds it; else None."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency of kedro-datasets[pandas]
        return None
    if isinstance(value, pd.Series):
        if value.name is not None and not isinstance(value.name, str | int | float):
            return None
        frame = value.to_frame(name=SERIES_COLUMN)
        return frame, {"pandas": "series", "name": value.name}
    if isinstance(value, pd.DataFrame):
        columns = value.columns
        if isinstance(columns, pd.MultiIndex) or not all(isinstance(c, str) for c in columns):
            return None
        if columns.has_duplicates:
            return None
        return value, {"pandas": "frame"}
    return None


@dataclass(frozen=True)
class Encoding:
    """What will be stored for one value: the format, the value to save and how to rebuild."""

    format: Format
    value: Any
    extra: dict[str, Any]


def choose_encoding(dataset: str, value: Any, allow_pickle: bool) -> list[Encoding]:
    """The encodings to try for a value, best first (an Arrow attempt may still fail, e.g. on
    a column of mixed Python objects; pickle, where allowed, comes next).

    Raises:
        ForbiddenFormatError: Only pickle fits and `allow_pickle` is False.
    """
    candidates: list[Encoding] = []
    columnar = _columnar_frame(value)
    if _is_polars_frame(value):
        candidates.append(Encoding(FORMATS[POLARS_IPC], value, {}))
    elif columnar is not None:
        candidates.append(Encoding(FORMATS[FEATHER], columnar[0], columnar[1]))
    elif _json_safe(value):
        candidates.append(Encoding(FORMATS[JSON], value, {}))
    if allow_pickle:
        candidates.append(Encoding(FORMATS[PICKLE], value, {}))
    if not candidates:
        raise ForbiddenFormatError(
            f"dataset '{dataset}' holds a {type(value).__module__}.{type(value).__qualname__}, "
            "which can only cross between pods as pickle, and pickle is forbidden "
            "(allow_pickle: false). Return a pandas DataFrame/Series or JSON-safe builtins "
            "from the node, declare the dataset in the catalog, or allow pickle."
        )
    return candidates


def rebuild(value: Any, extra: Mapping[str, Any]) -> Any:
    """Turns what a format loaded back into the value that was saved."""
    if extra.get("pandas") == "series":
        series = value[SERIES_COLUMN]
        series.name = extra.get("name")
        return series
    return value
