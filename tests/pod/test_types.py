"""Type fidelity: a value comes out of the run prefix with the type it went in, and inside a
group every consumer gets its own copy, as Kedro's MemoryDataset hands out."""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import enum
import math
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _gcs_emulator import BUCKET
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kedro.io import DataCatalog
from kedro.pipeline import node, pipeline

from kedro_gcs_bridge.errors import ForbiddenFormatError
from kedro_gcs_bridge.pod.formats import JSON, PICKLE
from kedro_gcs_bridge.pod.runner import GCSRunner
from kedro_gcs_bridge.pod.store import HandoffStore


class Colour(enum.IntEnum):
    RED = 1
    BLUE = 2


def same(left: Any, right: Any) -> bool:
    """Identical types all the way down, and equal values (NaN equals NaN, -0.0 is not 0.0)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, np.ndarray):
        return left.dtype == right.dtype and left.tobytes() == right.tobytes()
    if isinstance(left, np.generic):
        return left.dtype == right.dtype and left.tobytes() == right.tobytes()
    if isinstance(left, float):
        return (math.isnan(left) and math.isnan(right)) or (
            left == right and math.copysign(1, left) == math.copysign(1, right)
        )
    if isinstance(left, dict):
        if getattr(left, "default_factory", None) != getattr(right, "default_factory", None):
            return False
        return list(left) == list(right) and all(same(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, set | frozenset):
        return left == right and sorted(map(repr, left)) == sorted(map(repr, right))
    return bool(left == right)


def json_exact(value: Any) -> bool:
    """The test's own oracle: only exact builtin JSON types, str keys, finite floats."""
    if type(value) in {type(None), bool, str, int}:
        return True
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is list:
        return all(map(json_exact, value))
    if type(value) is dict:
        return all(type(k) is str and json_exact(v) for k, v in value.items())
    return False


def through_store(prefix: str, value: Any, allow_pickle: bool = True) -> tuple[str, Any]:
    """(format, value loaded by another pod) for one value saved under `prefix`."""
    producer = HandoffStore(prefix, task="producer", allow_pickle=allow_pickle)
    record = producer.save("value", value)
    producer.write_manifest(["make"], started_at="t0")
    return record.format, HandoffStore(prefix, task="consumer").load("value", "make")


NUMPY_SCALARS = st.one_of(
    st.floats(width=64).map(np.float64),
    st.floats(width=32).map(np.float32),
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.integers(-128, 127).map(np.int8),
    st.integers(0, 2**64 - 1).map(np.uint64),
    st.booleans().map(np.bool_),
    st.text(max_size=5).map(np.str_),
)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=10),
    NUMPY_SCALARS,
    st.sampled_from(Colour),
    st.decimals(allow_nan=False).map(decimal.Decimal),
    st.datetimes(),
    st.lists(st.floats(), max_size=4).map(np.array),
)
KEYS = st.one_of(st.text(max_size=8), st.integers(), NUMPY_SCALARS.filter(lambda k: k == k))
VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
        st.dictionaries(KEYS, children, max_size=3),
        st.dictionaries(st.text(max_size=8), children, max_size=3).map(
            lambda d: collections.defaultdict(list, d)
        ),
        st.dictionaries(st.text(max_size=8), children, max_size=3).map(collections.OrderedDict),
        st.frozensets(st.integers() | st.text(max_size=4), max_size=3),
    ),
    max_leaves=12,
).filter(lambda value: value is not None)  # Kedro refuses to save None, in any dataset


class TestChosenFormatKeepsTypes:
    @pytest.mark.parametrize(
        ("value", "fmt"),
        [
            (np.float64(0.5), PICKLE),  # a float subclass: JSON would give a float
            ([np.float64(0.5), 1.0], PICKLE),
            ({"n": np.int64(3)}, PICKLE),
            (Colour.RED, PICKLE),  # an int subclass
            (collections.defaultdict(list, {"a": [1]}), PICKLE),  # a dict subclass
            (collections.OrderedDict(a=1), PICKLE),
            ({"when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}, PICKLE),
            (decimal.Decimal("1.10"), PICKLE),
            ({1, 2}, PICKLE),
            ([True, 1, 1.0, None, "x", {"k": [False]}], JSON),  # bool stays bool, 1.0 a float
        ],
    )
    def test_value_comes_back_with_its_type(self, value: Any, fmt: str) -> None:
        stored, loaded = through_store(f"memory://types/{uuid.uuid4().hex}", value)
        assert stored == fmt
        assert same(loaded, value), (loaded, value)

    @pytest.mark.parametrize(
        ("value", "where"),
        [
            (np.float64(0.5), "the value is a numpy.float64"),
            ({"scores": [1.0, np.float64(0.5)]}, r"the value\['scores'\]\[1\] is a numpy\.float64"),
            ({"c": Colour.RED}, r"the value\['c'\] is a .*Colour"),
            (collections.defaultdict(int), "the value is a collections.defaultdict"),
            ({"t": (1, 2)}, r"the value\['t'\] is a tuple"),
            ({"x": [math.inf]}, r"the value\['x'\]\[0\] is inf"),
            ({1: "a"}, "the value has the key 1, a int"),
        ],
    )
    def test_forbidden_pickle_names_dataset_and_offending_part(
        self, value: Any, where: str
    ) -> None:
        store = HandoffStore(f"memory://types/{uuid.uuid4().hex}", task="t", allow_pickle=False)
        with pytest.raises(ForbiddenFormatError, match=rf"dataset 'value' .*{where}"):
            store.save("value", value)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=VALUES)
def test_nested_values_round_trip_with_identical_types_memory(value: Any) -> None:
    _, loaded = through_store(f"memory://types/{uuid.uuid4().hex}", value)
    assert same(loaded, value), (loaded, value)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=VALUES)
def test_nested_values_round_trip_with_identical_types_file(value: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _, loaded = through_store(Path(folder).as_uri(), value)
    assert same(loaded, value), (loaded, value)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=VALUES)
def test_without_pickle_a_value_round_trips_or_is_refused(value: Any) -> None:
    prefix = f"memory://types/{uuid.uuid4().hex}"
    if json_exact(value):
        assert through_store(prefix, value, allow_pickle=False) == (JSON, value)
        assert same(through_store(prefix, value, allow_pickle=False)[1], value)
    else:
        with pytest.raises(ForbiddenFormatError, match="dataset 'value'"):
            through_store(prefix, value, allow_pickle=False)


#: Column makers: values drawn by hypothesis -> a column of one dtype family.
COLUMNS: dict[str, tuple[st.SearchStrategy[Any], Any]] = {
    "int64": (st.integers(-(2**63), 2**63 - 1), lambda v: np.array(v, dtype="int64")),
    "float": (st.floats(), lambda v: np.array(v, dtype="float64")),
    "str": (st.text(max_size=4) | st.none(), pd.array),
    "object": (st.integers() | st.text(max_size=3) | st.none(), lambda v: np.array(v, object)),
    "category": (st.sampled_from("abc"), pd.Categorical),
    "Int64": (st.integers(-(2**63), 2**63 - 1) | st.none(), lambda v: pd.array(v, dtype="Int64")),
    "tz": (
        st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)),
        lambda v: pd.DatetimeIndex(v).tz_localize("UTC").tz_convert("Asia/Tokyo"),
    ),
}
INDEXES: dict[str, Any] = {
    "range": pd.RangeIndex,
    "ints": lambda n: pd.Index(np.arange(n)[::-1] * 7, name="id"),
    "daily": lambda n: pd.date_range("2026-01-01", periods=n, freq="D"),
    "strings": lambda n: pd.Index([f"k{i}" for i in range(n)]),
}


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """Small frames mixing the dtype families above, on one of the index kinds."""
    rows = draw(st.integers(0, 4))
    index = INDEXES[draw(st.sampled_from(sorted(INDEXES)))](rows)
    kinds = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=1, max_size=4))
    columns = {}
    for position, kind in enumerate(kinds):
        values, make = COLUMNS[kind]
        drawn = draw(st.lists(values, min_size=rows, max_size=rows))
        columns[f"{kind}_{position}"] = pd.Series(make(drawn), index=index)
    return pd.DataFrame(columns, index=index)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames())
def test_random_frames_come_back_identically(frame: pd.DataFrame) -> None:
    _, loaded = through_store(f"memory://types/{uuid.uuid4().hex}", frame)
    pd.testing.assert_frame_equal(loaded, frame, check_exact=True, check_freq=True)
    for column, dtype in frame.dtypes.items():
        if pd.api.types.is_object_dtype(dtype):
            assert list(map(type, loaded[column])) == list(map(type, frame[column]))


@pytest.mark.usefixtures("gcs_emulator")
def test_nested_values_round_trip_through_the_gcs_emulator() -> None:
    value = {
        "f": np.float64(0.1),
        "e": Colour.BLUE,
        "d": collections.defaultdict(list, {"k": [np.int8(3), (1, 2)]}),
        "plain": {"a": [1, 2.5, True, None, "x"]},
    }
    prefix = f"gs://{BUCKET}/types/{uuid.uuid4().hex}"
    assert same(through_store(prefix, value)[1], value)
    assert through_store(prefix, value["plain"])[0] == JSON


# --- within a group: copies, as Kedro's MemoryDataset hands out -------------------------------
def make_rows() -> dict[str, Any]:
    return {"rows": [1, 2, 3], "frame": pd.DataFrame({"a": [1, 2, 3]})}


def mutate_rows(data: dict[str, Any]) -> int:
    data["rows"].append(99)
    data["frame"].loc[0, "a"] = -1
    return len(data["rows"])


def mutate_frame(data: dict[str, Any]) -> int:
    data["frame"]["a"] *= 100
    data["rows"].clear()
    return int(data["frame"]["a"].sum())


def report(data: dict[str, Any], first: int, second: int) -> dict[str, Any]:
    return {"rows": list(data["rows"]), "a": data["frame"]["a"].tolist()}


GROUP_PIPELINE = pipeline(
    [
        node(make_rows, None, "shared", name="make"),
        node(mutate_rows, "shared", "first", name="mutate_rows"),
        node(mutate_frame, "shared", "second", name="mutate_frame"),
        node(report, ["shared", "first", "second"], "seen", name="report"),
    ]
)


@pytest.mark.parametrize(
    "producer_in_group", [False, True], ids=["loaded-boundary-input", "saved-in-group"]
)
def test_consumers_in_a_group_get_their_own_copy(producer_in_group: bool) -> None:
    """Two nodes of one group mutate a boundary input; a third still sees the original."""
    prefix = f"memory://types/{uuid.uuid4().hex}"
    group = ["mutate_rows", "mutate_frame", "report"]
    if producer_in_group:
        group.insert(0, "make")
        # `shared` then crosses because a node of another group reads it too.
        full = GROUP_PIPELINE + pipeline([node(len, "shared", "size", name="elsewhere")])
    else:
        full = GROUP_PIPELINE
        GCSRunner(prefix=prefix, full_pipeline=full, task="make").run(
            full.only_nodes("make"), DataCatalog()
        )
    catalog = DataCatalog()
    GCSRunner(prefix=prefix, full_pipeline=full, task="g").run(full.only_nodes(*group), catalog)
    assert catalog.load("seen") == {"rows": [1, 2, 3], "a": [1, 2, 3]}
