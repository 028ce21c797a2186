"""Strict reading of booleans and counts: a quoted 'false' is false, junk is a ConfigError."""

from __future__ import annotations

import pytest

from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.planning.values import as_bool, as_count, as_root_url


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


@pytest.mark.parametrize(("value", "expected"), [(1, 1), ("3", 3)])
def test_counts_with_a_minimum(value: object, expected: int) -> None:
    assert as_count("max_active_runs", value, minimum=1) == expected


def test_a_count_below_its_minimum_names_the_key() -> None:
    with pytest.raises(ConfigError, match="'max_active_runs' must be at least 1, got 0"):
        as_count("max_active_runs", 0, minimum=1)


class TestRootUrl:
    @pytest.mark.parametrize(
        "url",
        [
            "gs://my-bucket",
            "gs://my-bucket/",
            "gs://my-bucket/kedro/runs",
            "gcs://bucket.with.dots/x",
            "file:///tmp/runs",
            "file:///tmp/runs/",
            "memory://runs",
        ],
    )
    def test_absolute_urls(self, url: str) -> None:
        assert as_root_url("root", url) == url

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("/", "absolute URL"),
            ("/tmp/runs", "write file:///tmp/runs"),
            ("runs", "absolute URL"),
            ("./runs", "absolute URL"),
            ("", "absolute URL"),
            (None, "absolute URL"),
            ("file:///", "names no folder"),
            ("file://", "file:///absolute/path"),
            ("file://relative/path", "file:///absolute/path"),
            ("gs://", "names no bucket"),
            ("gs:///path", "names no bucket"),
            ("gs://My_Bucket!/x", "not a bucket name"),
            ("gs://bucket//x", "empty, '.' or '..'"),
            ("gs://bucket/../x", "empty, '.' or '..'"),
            ("memory://", "names no location"),
            ("gs:/bucket/x", "absolute URL"),
        ],
    )
    def test_everything_else_is_refused_naming_the_key(self, url: object, message: str) -> None:
        with pytest.raises(ConfigError, match="'root'") as caught:
            as_root_url("root", url)
        assert message in str(caught.value)

    def test_only_the_schemes_asked_for(self) -> None:
        assert as_root_url("gcs_bridge_root", "gs://b/x", schemes=("gs",)) == "gs://b/x"
        for url in ("s3://x/y", "file:///tmp/x"):
            with pytest.raises(ConfigError, match=r"'gcs_bridge_root' must be gs://bucket"):
                as_root_url("gcs_bridge_root", url, schemes=("gs",))
