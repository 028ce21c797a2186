"""Which format a boundary dataset gets: Arrow IPC for frames, JSON for values, pickle last."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from kedro_gcs_bridge.errors import ForbiddenFormatError
from kedro_gcs_bridge.pod.formats import FEATHER, JSON, PICKLE, choose_encoding, rebuild


class Model:
    """Stands for a trained model: something only pickle can carry."""


def first_format(value: object, allow_pickle: bool = True) -> str:
    return choose_encoding("ds", value, allow_pickle)[0].format.name


class TestChooseEncoding:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), FEATHER),
            (pd.Series([1.0, 2.0], name="price"), FEATHER),
            ({"r2": 0.9, "rows": 10, "ok": True, "tags": ["a"], "none": None}, JSON),
            ([1, 2, 3], JSON),
            ("text", JSON),
            (3, JSON),
            ((1, 2), PICKLE),  # JSON would turn the tuple into a list
            ({1: "a"}, PICKLE),  # JSON would turn the key into "1"
            ({"x": math.nan}, PICKLE),  # JSON has no NaN
            (np.arange(3), PICKLE),
            (Model(), PICKLE),
            (pd.DataFrame({0: [1], 1: [2]}), PICKLE),  # Arrow needs string column names
        ],
    )
    def test_format_fits_the_value(self, value: object, expected: str) -> None:
        assert first_format(value) == expected

    def test_pickle_is_always_the_fallback_after_arrow(self) -> None:
        names = [e.format.name for e in choose_encoding("ds", pd.DataFrame({"a": [1]}), True)]
        assert names == [FEATHER, PICKLE]

    def test_forbidden_pickle_names_dataset_and_type(self) -> None:
        with pytest.raises(ForbiddenFormatError, match=r"'regressor'.*test_formats\.Model"):
            choose_encoding("regressor", Model(), allow_pickle=False)

    def test_forbidden_pickle_still_allows_safe_formats(self) -> None:
        assert first_format({"a": 1}, allow_pickle=False) == JSON
        assert first_format(pd.DataFrame({"a": [1]}), allow_pickle=False) == FEATHER


class TestRebuild:
    @pytest.mark.parametrize("name", ["price", None, 3])
    def test_series_comes_back_with_its_name(self, name: object) -> None:
        series = pd.Series([1.5, 2.5], index=[10, 20], name=name)
        encoding = choose_encoding("y", series, True)[0]
        rebuilt = rebuild(encoding.value.copy(), encoding.extra)
        pd.testing.assert_series_equal(rebuilt, series)
