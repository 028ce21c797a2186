"""Strict reading of booleans and counts: a quoted 'false' is false, junk is a ConfigError, and
every route a boolean setting takes reads the same words the same way (issue 27, item 2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from omegaconf import OmegaConf

from kedro_gcs_bridge.config import merge_airflow_config, parse_config
from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.pod.context import LOCAL_HANDOFF_ENV, MLFLOW_REQUIRED_ENV, TaskContext
from kedro_gcs_bridge.values import as_bool, as_count, as_root_url

WORDS = {"true": True, "yes": True, "on": True, "1": True}
WORDS |= {"false": False, "no": False, "off": False, "0": False}
#: Each word as a user may type it.
SPELLINGS = [
    (spelled, value)
    for word, value in WORDS.items()
    for spelled in dict.fromkeys((word, word.upper(), word.title()))
]
BAD = ["maybe", "2", "nope", "tru"]


def _yaml(word: str) -> bool:
    """airflow.yml, loaded as Kedro's OmegaConfigLoader loads YAML."""
    raw = OmegaConf.to_container(
        OmegaConf.create(f"default:\n  handoff:\n    allow_pickle: {word}\n")
    )
    return parse_config(merge_airflow_config(raw, "__default__")).handoff.allow_pickle


def _params(word: str) -> bool:
    """`kedro airflow create --params handoff.allow_pickle=<word>` (Kedro's _split_params)."""
    params = OmegaConf.to_container(OmegaConf.from_dotlist([f"handoff.allow_pickle={word}"]))
    return parse_config(merge_airflow_config({}, "__default__", params)).handoff.allow_pickle


def _old_params(word: str) -> bool:
    """The old flat spelling through `--params allow_pickle=<word>`."""
    params = OmegaConf.to_container(OmegaConf.from_dotlist([f"allow_pickle={word}"]))
    with pytest.warns(FutureWarning):
        return parse_config(merge_airflow_config({}, "__default__", params)).handoff.allow_pickle


def _runner(**kwargs: Any) -> Any:
    from kedro_gcs_bridge.pod.runner import GCSRunner

    return GCSRunner(**kwargs)


def _runner_params(word: str) -> bool:
    """`kedro run --runner-params handoff_local_datasets=<word>`, OmegaConf-typed."""
    params = OmegaConf.to_container(OmegaConf.from_dotlist([f"handoff_local_datasets={word}"]))
    return _runner(**params)._handoff_local


def _pod_env(word: str, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setenv(LOCAL_HANDOFF_ENV, word)
    return _runner()._handoff_local


def _pod_env_required(word: str, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setenv(MLFLOW_REQUIRED_ENV, word)
    return bool(TaskContext.from_env().mlflow_required)


ROUTES: dict[str, Callable[..., bool]] = {
    "python": lambda word, _: as_bool("spot", word),
    "python-runner": lambda word, _: _runner(handoff_local_datasets=word)._handoff_local,
    "airflow.yml": lambda word, _: _yaml(word),
    "--params": lambda word, _: _params(word),
    "--params-old-key": lambda word, _: _old_params(word),
    "--runner-params": lambda word, _: _runner_params(word),
    "pod-env-local-handoff": _pod_env,
    "pod-env-mlflow-required": _pod_env_required,
}


class TestOneBooleanForEveryRoute:
    @pytest.mark.parametrize("route", ROUTES)
    @pytest.mark.parametrize(("word", "expected"), SPELLINGS)
    def test_every_word_means_the_same(
        self, route: str, word: str, expected: bool, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert ROUTES[route](word, monkeypatch) is expected

    @pytest.mark.parametrize("route", ROUTES)
    @pytest.mark.parametrize("word", BAD)
    def test_anything_else_names_the_key_and_the_words(
        self, route: str, word: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with pytest.raises(ConfigError) as caught:
            ROUTES[route](word, monkeypatch)
        message = str(caught.value)
        assert "true/false/yes/no/on/off/1/0" in message
        assert any(
            key in message
            for key in (
                "allow_pickle",
                "handoff_local_datasets",
                "local_handoff",
                "spot",
                "mlflow_required",
            )
        )

    @pytest.mark.parametrize(
        ("value", "expected"), [(True, True), (False, False), (1, True), (0, False)]
    )
    def test_real_booleans_and_numbers(self, value: object, expected: bool) -> None:
        assert as_bool("spot", value) is expected


@pytest.mark.parametrize("value", ["", 2, -1, 0.0, None, [True]])
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
