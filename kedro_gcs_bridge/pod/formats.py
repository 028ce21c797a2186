"""Handoff formats: which kedro-datasets dataset writes a value that crosses between pods.

A value comes back with the type it went in. Frames (pandas, and polars where installed) go to
Arrow IPC (Feather v2, uncompressed, one record batch: safe, columnar, typed, and decoded
without copying numeric columns where the loader owns the bytes) when Arrow returns them
identically (dtypes, labels, index; checked on labels, object columns and a one-row sample,
never by a full re-read); values made only of the exact builtin types JSON has (dict with str
keys, list, str, int, finite float, bool, None; not subclasses such as np.float64 or IntEnum) go
to JSON; anything else goes to cloudpickle, the fallback a setting can forbid. The choice is
recorded with the object, so a reader never guesses from the extension.
A catalog dataset on local disk that crosses pods keeps its own catalog type instead
(`catalog_format`): the entry's type and options, recorded with the object as format `catalog`.
Serialising is done by kedro-datasets (`pandas.FeatherDataset`, `polars.EagerPolarsDataset`,
`json.JSONDataset`, `pickle.PickleDataset`), not by code of ours.

Why Arrow IPC and not Parquet: a frame's bytes cross once each way, so encode + decode time
matters more than size. For a 256 MiB frame (benchmarks/formats.py, 2 cores) uncompressed
Arrow IPC encodes + decodes in 1.0x the time of pickle protocol 5 and ~90x faster than
cloudpickle + bz2; Parquet with snappy takes 3.6-4.8x pickle-5 for files 22% smaller, which a
~200 MB/s transfer does not win back.
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
import sys
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec

from kedro_gcs_bridge.errors import ForbiddenFormatError

logger = logging.getLogger(__name__)

FEATHER = "feather"
POLARS_IPC = "polars-ipc"
JSON = "json"
PICKLE = "pickle"
#: A catalog entry's own type and options (the record's `extra` holds them).
CATALOG = "catalog"


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
    # One record batch (pyarrow's default cuts one every 64 Ki rows): a column then reads back
    # as one chunk, which the loader hands to pandas without copying (pod/transfer.py).
    FEATHER: Format(
        FEATHER,
        "feather",
        "pandas.FeatherDataset",
        {"save_args": {"compression": "uncompressed", "chunksize": 2**31 - 1}},
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

#: Entry keys that say where and how the catalog stores a dataset, not how it encodes it:
#: the run prefix replaces them (fs_args come from the store).
_PLACEMENT_KEYS = frozenset({"type", "filepath", "versioned", "version", "credentials", "fs_args"})
_EXTENSION = re.compile(r"\.([a-z][a-z0-9]{1,7})$")
#: Catalog types that unpickle what they load (`allow_pickle` governs them like our pickle).
_PICKLING_TYPES = frozenset({"PickleDataset"})


def catalog_format(entry: Mapping[str, Any]) -> Format | None:
    """The format that writes a dataset as its catalog entry does, anywhere `filepath` says.

    Args:
        entry: The dataset's catalog entry (`type`, `filepath` and options, as
            `DataCatalog.to_config()` or `AbstractDataset._init_config()` give it).

    Returns:
        A `catalog` format with the entry's type and options (without its filepath,
        versioning, credentials and fs_args; unset options left out), or None when the entry
        has no `filepath` or options JSON cannot record.
    """
    filepath = entry.get("filepath")
    if not isinstance(filepath, str) or not isinstance(entry.get("type"), str):
        return None
    options = {
        key: value
        for key, value in entry.items()
        if key not in _PLACEMENT_KEYS and value is not None
    }
    try:
        json.dumps(options, allow_nan=False)
    except (TypeError, ValueError):
        return None
    found = _EXTENSION.search(filepath.lower())
    extension = found[1] if found else "bin"
    return Format(CATALOG, extension, _short_type(str(entry["type"])), options)


def _short_type(dataset_type: str) -> str:
    """`kedro_datasets.pandas.parquet_dataset.ParquetDataset` as `pandas.ParquetDataset`."""
    parts = dataset_type.split(".")
    if parts[0] == "kedro_datasets" and len(parts) == 4:
        return f"{parts[1]}.{parts[3]}"
    return dataset_type


def recorded_format(name: str, extension: str, extra: Mapping[str, Any]) -> Format | None:
    """The format a record names: a fixed one, or a catalog entry's from the record's `extra`.

    Raises:
        TypeError: The record's `extra` does not describe a catalog entry.
    """
    if name != CATALOG:
        return FORMATS.get(name)
    entry = extra.get("catalog")
    if not isinstance(entry, Mapping) or not isinstance(entry.get("options"), Mapping):
        raise TypeError("its extra has no catalog type and options")
    if not isinstance(entry.get("type"), str):
        raise TypeError("its catalog type is not a string")
    return Format(CATALOG, extension, entry["type"], dict(entry["options"]))


def catalog_extra(fmt: Format) -> dict[str, Any]:
    """What a record keeps of a catalog format, for `recorded_format`."""
    return {"catalog": {"type": fmt.dataset_type, "options": dict(fmt.options)}}


def unpickles(fmt: Format) -> bool:
    """True if loading this format unpickles bytes (so `allow_pickle` governs it)."""
    kind = fmt.dataset_type.rsplit(".", 1)[-1]
    return fmt.name == PICKLE or kind in _PICKLING_TYPES or fmt.options.get("file_format") == PICKLE


#: Column name a pandas Series gets while it is stored as a one-column frame.
SERIES_COLUMN = "__series__"
#: Deeper JSON nesting is taken for a cycle or a pathological value: pickle (or an error).
_MAX_DEPTH = 100
_JSON_LEAVES = frozenset({type(None), bool, str, int})


def _type_name(value: Any) -> str:
    kind = type(value)
    module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
    return f"{module}{kind.__qualname__}"


def _json_float_problem(value: float, where: str, depth: int) -> str | None:
    return None if math.isfinite(value) else f"{where} is {value!r} (JSON has no NaN or infinity)"


def _json_list_problem(value: list[Any], where: str, depth: int) -> str | None:
    for index, item in enumerate(value):
        if type(item) in _JSON_LEAVES:  # the common case, without building a path
            continue
        problem = _json_problem(item, f"{where}[{index}]", depth + 1)
        if problem is not None:
            return problem
    return None


def _json_dict_problem(value: dict[Any, Any], where: str, depth: int) -> str | None:
    for key, item in value.items():
        if type(key) is not str:
            return f"{where} has the key {key!r}, a {_type_name(key)} (JSON keys are str)"
        if type(item) in _JSON_LEAVES:
            continue
        problem = _json_problem(item, f"{where}[{key!r}]", depth + 1)
        if problem is not None:
            return problem
    return None


#: Exact type -> what JSON would change in such a value. Exact, not isinstance: np.float64 is
#: a float, an IntEnum member an int and a defaultdict a dict, and JSON gives back none of them.
_JSON_CHECKS: Mapping[type, Callable[[Any, str, int], str | None]] = {
    float: _json_float_problem,
    list: _json_list_problem,
    dict: _json_dict_problem,
}


def _json_problem(value: Any, where: str = "the value", depth: int = 0) -> str | None:
    """Where and why JSON would not give the value back identically; None if it would."""
    kind = type(value)
    if kind in _JSON_LEAVES:
        return None
    if depth >= _MAX_DEPTH:
        return f"{where} is nested more than {_MAX_DEPTH} levels deep"
    check = _JSON_CHECKS.get(kind)
    if check is None:
        return f"{where} is a {_type_name(value)}"
    return check(value, where, depth)


def _is_polars_frame(value: Any) -> bool:
    polars = sys.modules.get("polars")  # a polars frame means polars is imported already
    return polars is not None and type(value) is polars.DataFrame


def _labels_problem(pd: Any, frame: Any) -> str | None:
    """What Arrow cannot carry in a frame's labels, attrs and flags (without looking at data)."""
    columns = frame.columns
    if type(columns) is not pd.Index or columns.dtype != pd.Index(["a"]).dtype:
        return f"its column labels are a {type(columns).__name__} of {columns.dtype}, not strings"
    if not all(type(label) is str for label in columns) or columns.has_duplicates:
        return "its column labels are not unique strings"
    names = [columns.name, *frame.index.names]
    if any(name is not None and type(name) is not str for name in names):
        return f"an axis name is not a string: {names}"
    if not frame.flags.allows_duplicate_labels:
        return "it has flags.allows_duplicate_labels=False, which Arrow does not keep"
    problem = _json_problem(frame.attrs, "attrs")
    return None if problem is None else f"its {problem}"


def _index_levels(pd: Any, frame: Any) -> list[tuple[str, Any]]:
    index = frame.index
    levels = list(index.levels) if isinstance(index, pd.MultiIndex) else [index]
    return [(f"index level {level.name!r}", level) for level in levels]


def _object_problem(pd: Any, frame: Any) -> str | None:
    """Arrow types an object column by its values and pandas reads it back typed: only str
    values (with None) come back as they were, and only where pandas reads Arrow strings as
    object (before pandas 3)."""
    strings_as_object = pd.Series(["a"]).dtype == object
    columns = [
        (f"column {label!r}", frame[label])
        for label, dtype in frame.dtypes.items()
        if pd.api.types.is_object_dtype(dtype)
    ]
    for where, values in [*columns, *_index_levels(pd, frame)]:
        if values.dtype != object:
            continue
        kinds = set(map(type, values))
        if not strings_as_object or not kinds <= {str, type(None)}:
            held = ", ".join(sorted(kind.__qualname__ for kind in kinds)) or "nothing"
            return f"{where} has dtype object holding {held}, which Arrow returns typed"
    return None


def _index_problem(pd: Any, frame: Any) -> str | None:
    """Masked index levels (Int64, boolean, ...) come back as other dtypes when they hold NA."""
    for where, level in _index_levels(pd, frame):
        if level.dtype.name in _MASKED_DTYPES:
            return f"{where} has dtype {level.dtype}, which Arrow does not return identically"
    return None


_MASKED_DTYPES = frozenset(
    {"boolean", "Float32", "Float64"}
    | {f"{sign}Int{bits}" for sign in ("", "U") for bits in (8, 16, 32, 64)}
)


def _index_extra(pd: Any, frame: Any) -> dict[str, Any]:
    """What Arrow drops from the index and `rebuild` restores: a DatetimeIndex's frequency."""
    freq = getattr(frame.index, "freq", None)
    if freq is None or isinstance(frame.index, pd.MultiIndex | pd.PeriodIndex):
        return {}
    return {"index_freq": freq.freqstr}


def _restore_index(frame: Any, extra: Mapping[str, Any]) -> Any:
    freq = extra.get("index_freq")
    if freq is not None:
        frame.index = type(frame.index)(frame.index, freq=freq)
    return frame


#: numpy dtype kinds Arrow returns identically (ints, floats, bools, datetimes, timedeltas).
_PLAIN_KINDS = frozenset("iufbmM")


def _is_plain(pd: Any, dtype: Any) -> bool:
    return not isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in _PLAIN_KINDS


def _sample_problem(pd: Any, frame: Any, extra: Mapping[str, Any]) -> str | None:
    """Stores the first row of one column per dtype that is not plain numpy, with the index,
    with Arrow in memory and compares what comes back (dtypes, categories, index type and
    frequency); the checks above cover what depends on values. Plain frames skip it."""
    index = frame.index
    plain_index = type(index) in {pd.RangeIndex, pd.Index} and _is_plain(pd, index.dtype)
    firsts: dict[Any, int] = {}  # one column per dtype: the dtype decides what comes back
    for position, dtype in enumerate(frame.dtypes):
        if not _is_plain(pd, dtype):
            firsts.setdefault(dtype, position)
    if plain_index and not firsts:
        return None
    columns = sorted(firsts.values()) or [0]
    sample = frame.iloc[:1, columns] if len(frame.columns) else frame.iloc[:1]
    buffer = io.BytesIO()
    try:
        sample.to_feather(buffer, **FORMATS[FEATHER].options["save_args"])
        buffer.seek(0)
        back = _restore_index(pd.read_feather(buffer), extra)
    except Exception as exc:  # noqa: BLE001 - any failure means: not Arrow
        return f"Arrow cannot store it ({type(exc).__name__}: {exc})"
    try:
        pd.testing.assert_frame_equal(
            back, sample, check_exact=True, check_freq=True, check_flags=True
        )
    except AssertionError as exc:
        detail = " ".join(str(exc).split())
        return f"Arrow would not return it identically ({detail[:300]})"
    return None


def _columnar_frame(value: Any) -> tuple[Any, dict[str, Any]] | str | None:
    """The frame Arrow would store for a pandas value, with what rebuilds it; a string saying
    why Arrow would not return it identically; None for what is not a pandas value."""
    pd = sys.modules.get("pandas")  # a pandas value means pandas is imported already
    if pd is None or type(value) not in {pd.Series, pd.DataFrame}:
        return None
    if type(value) is pd.Series:
        problem = _json_problem(value.name, "the Series name")
        if problem is not None:
            return problem
        frame, extra = value.to_frame(name=SERIES_COLUMN), {"pandas": "series", "name": value.name}
    else:
        frame, extra = value, {"pandas": "frame"}
    extra.update(_index_extra(pd, frame))
    for check in (_labels_problem, _object_problem, _index_problem):
        problem = check(pd, frame)
        if problem is not None:
            return problem
    return _sample_problem(pd, frame, extra) or (frame, extra)


@dataclass(frozen=True)
class Encoding:
    """What will be stored for one value: the format, the value to save and how to rebuild."""

    format: Format
    value: Any
    extra: dict[str, Any]


def choose_encoding(dataset: str, value: Any, allow_pickle: bool) -> list[Encoding]:
    """The encodings to try for a value, best first; each gives the value back with the type
    it went in (an attempt may still fail on storage-side limits; pickle, where allowed,
    comes next).

    Raises:
        ForbiddenFormatError: Only pickle gives the value back identically and `allow_pickle`
            is False; the message names the dataset and what in the value needs pickle.
    """
    candidates: list[Encoding] = []
    columnar = _columnar_frame(value)
    if _is_polars_frame(value):
        candidates.append(Encoding(FORMATS[POLARS_IPC], value, {}))
        problem = None
    elif isinstance(columnar, tuple):
        candidates.append(Encoding(FORMATS[FEATHER], columnar[0], columnar[1]))
        problem = None
    else:
        problem = columnar or _json_problem(value)
        if problem is None:
            candidates.append(Encoding(FORMATS[JSON], value, {}))
    if problem is not None:
        logger.info("Dataset '%s' cannot take a safe format: %s", dataset, problem)
    if allow_pickle:
        candidates.append(Encoding(FORMATS[PICKLE], value, {}))
    if not candidates:
        raise ForbiddenFormatError(
            f"dataset '{dataset}' holds a {_type_name(value)} that only pickle gives back "
            f"unchanged: {problem}. Pickle is forbidden (handoff.allow_pickle: false): return a "
            "pandas DataFrame/Series Arrow can carry or plain JSON builtins (dict with str keys, "
            "list, str, int, finite float, bool, None) from the node, declare the dataset in the "
            "catalog, or allow pickle."
        )
    return candidates


def rebuild(value: Any, extra: Mapping[str, Any]) -> Any:
    """Turns what a format loaded back into the value that was saved."""
    if extra.get("pandas") not in {"series", "frame"}:
        return value
    value = _restore_index(value, extra)
    if extra.get("pandas") == "series":
        series = value[SERIES_COLUMN]
        series.name = extra.get("name")
        return series
    return value


#: Where verified bytes are handed to kedro-datasets for decoding (process memory).
_STAGING = "memory:///kedro-gcs-bridge-verified"


def label(fmt: Format | str, extra: Mapping[str, Any] | None = None) -> str:
    """A format as logs and messages name it: `pandas.ParquetDataset` for a catalog type."""
    if isinstance(fmt, str):
        catalog = (extra or {}).get("catalog")
        return str(catalog["type"]) if fmt == CATALOG and catalog else fmt
    return fmt.dataset_type if fmt.name == CATALOG else fmt.name


def decode_staged(dataset: str, fmt: Format, data: bytes) -> Any:
    """Decodes with the format's kedro-datasets dataset, from a file in process memory."""
    from kedro.io import AbstractDataset

    staging = f"{_STAGING}/{uuid.uuid4().hex}.{fmt.extension}"
    memory = fsspec.filesystem("memory")
    memory.pipe_file(staging, data)
    try:
        reader = AbstractDataset.from_config(dataset, fmt.dataset_config(staging, None))
        return reader.load()
    finally:
        memory.rm_file(staging)  # rm(recursive=True) would copy the bytes to size them


def decode_catalog(dataset: str, fmt: Format, data: bytes) -> Any:
    """Decodes verified bytes with a catalog type: from process memory, or, for a type that
    reads local paths only, from a private temporary file holding exactly those bytes."""
    from kedro.io import AbstractDataset

    try:
        return decode_staged(dataset, fmt, data)
    except Exception as exc:  # noqa: BLE001 - retried from a local file; its error is raised
        logger.debug("%s cannot read %s from memory (%s)", fmt.dataset_type, dataset, exc)
    with tempfile.TemporaryDirectory(prefix="kedro-gcs-bridge-") as folder:
        staging = f"{folder}/{uuid.uuid4().hex}.{fmt.extension}"
        Path(staging).write_bytes(data)
        return AbstractDataset.from_config(dataset, fmt.dataset_config(staging, None)).load()
