"""Strict reading of booleans and counts: a quoted 'false' is false, junk is a ConfigError."""

from __future__ import annotations

import pytest

from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.planning.values import as_bool, as_count


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("false", False), ("No", False), ("TRUE", True), ("yes", True)],
)
def test_booleans_and_their_strings(value: object, expected: bool) -> None:
    assert as_bool("spot", value) is expected


@pytest.mark.parametrize("value", ["off", "", 1, 0, None, [True]])
def test_anything_else_is_not_a_boolean(value: object) -> None:
    with pytest.raises(ConfigError, match=r"'spot' must be true or false"):
        as_bool("spot", value)


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (3, 3), ("12", 12)])
def test_counts(value: object, expected: int) -> None:
    assert as_count("retries", value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("two", "must be a whole number, got 'two'"),
        (1.5, "must be a whole number"),
        (True, "must be a whole number"),
        (-1, "must not be negative, got -1"),
    ],
)
def test_bad_counts_name_the_key(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=f"'retries' {message}"):
        as_count("retries", value)
