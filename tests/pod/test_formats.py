"""Which format a boundary dataset gets: Arrow IPC for frames Arrow returns identically, JSON
for exact builtins, pickle last; and pickle can be forbidden by every route a setting takes."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import Job, KedroRun, run_jobs
from kedro.io import DataCatalog, DatasetError
from kedro.pipeline import node, pipeline

from kedro_gcs_bridge.dag.dagfile import build_dag_file
from kedro_gcs_bridge.errors import ConfigError, ForbiddenFormatError, GCSBridgeError
from kedro_gcs_bridge.pod.context import ALLOW_PICKLE_ENV
from kedro_gcs_bridge.pod.formats import (
    FEATHER,
    JSON,
    PICKLE,
    SERIES_COLUMN,
    choose_encoding,
    rebuild,
)
from kedro_gcs_bridge.pod.runner import GCSRunner
from kedro_gcs_bridge.pod.store import HandoffStore

NOT_A_BOOLEAN = (
    "'allow_pickle' must be true or false (accepted: true/false/yes/no/on/off/1/0, any case), "
    "got 'maybe'"
)


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


# --- pandas: Arrow only for what it returns identically ---------------------------------------
def _with_attrs(frame: pd.DataFrame, **attrs: Any) -> pd.DataFrame:
    frame.attrs.update(attrs)
    return frame


def _categorical(values: list[Any], **kwargs: Any) -> pd.Categorical:
    return pd.Categorical(values, **kwargs)


#: Frames and Series, and whether Arrow gives them back identically.
PANDAS_VALUES: dict[str, tuple[Any, str]] = {
    "numbers": (pd.DataFrame({"i": np.arange(3, dtype="int8"), "f": [0.5, -0.0, np.nan]}), FEATHER),
    "category": (pd.DataFrame({"c": _categorical(["x", "y", "x"])}), FEATHER),
    "ordered category": (
        pd.DataFrame({"c": _categorical(["x", "y", None], categories=["y", "x"], ordered=True)}),
        FEATHER,
    ),
    "datetime tz": (
        pd.DataFrame({"t": pd.date_range("2026", periods=3, tz="Europe/Paris")}),
        FEATHER,
    ),
    "nullable Int64": (pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64")}), FEATHER),
    "nullable boolean": (
        pd.DataFrame({"b": pd.array([True, None, False], dtype="boolean")}),
        FEATHER,
    ),
    "strings with missing": (pd.DataFrame({"s": ["a", None, "c"]}), FEATHER),
    "period": (pd.DataFrame({"p": pd.period_range("2026-01", periods=3, freq="M")}), FEATHER),
    "non-default index": (pd.DataFrame({"a": [1, 2, 3]}, index=[7, 7, 9]), FEATHER),
    "named string index": (
        pd.DataFrame({"a": [1, 2, 3]}, index=pd.Index(["x", "y", "z"], name="k")),
        FEATHER,
    ),
    "multi index": (
        pd.DataFrame(
            {"a": [1, 2, 3]},
            index=pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["s", "n"]),
        ),
        FEATHER,
    ),
    "daily index keeps its freq": (
        pd.DataFrame({"a": [1, 2, 3]}, index=pd.date_range("2026", periods=3, freq="D")),
        FEATHER,
    ),
    "a column named __series__": (pd.DataFrame({SERIES_COLUMN: [1, 2], "b": [3, 4]}), FEATHER),
    "json attrs": (_with_attrs(pd.DataFrame({"a": [1]}), source="crm", rows=1), FEATHER),
    "series named __series__": (pd.Series([1.5, 2.5], name=SERIES_COLUMN), FEATHER),
    "category series with index": (
        pd.Series(_categorical(["u", "v"]), index=pd.Index([5, 6], name="id"), name="kind"),
        FEATHER,
    ),
    # Arrow would hand these back changed: pickle (or an error when it is forbidden).
    "object ints": (pd.DataFrame({"o": pd.Series([1, 2, 3], dtype=object)}), PICKLE),
    "object mixed": (pd.DataFrame({"o": pd.Series([1, "a", 2.5], dtype=object)}), PICKLE),
    "object decimals": (
        pd.DataFrame({"o": pd.Series([decimal.Decimal("1.10"), None], dtype=object)}),
        PICKLE,
    ),
    "object dicts": (pd.DataFrame({"o": pd.Series([{"k": 1}, {"j": 2}], dtype=object)}), PICKLE),
    "object dates": (pd.DataFrame({"o": pd.Series([dt.date(2026, 1, 1)], dtype=object)}), PICKLE),
    "python strings": (pd.DataFrame({"s": pd.array(["a", None], dtype="string[python]")}), PICKLE),
    "category of objects": (
        pd.DataFrame({"c": _categorical(pd.Index(["x", "y"], dtype=object))}),
        PICKLE,
    ),
    "complex": (pd.DataFrame({"z": [1 + 2j]}), PICKLE),
    "int column labels": (pd.DataFrame({0: [1], 1: [2]}), PICKLE),
    "int index name": (pd.DataFrame({"a": [1]}, index=pd.Index([3], name=0)), PICKLE),
    "tuple attrs": (_with_attrs(pd.DataFrame({"a": [1]}), shape=(1, 1)), PICKLE),
    "numpy series name": (pd.Series([1.0], name=np.float64(2.0)), PICKLE),
    "frame subclass": (type("Sub", (pd.DataFrame,), {})({"a": [1]}), PICKLE),
}


def assert_identical(loaded: Any, value: Any) -> None:
    assert type(loaded) is type(value)
    check = pd.testing.assert_series_equal
    if isinstance(value, pd.DataFrame):
        check = pd.testing.assert_frame_equal  # type: ignore[assignment]
    check(loaded, value, check_exact=True, check_freq=True, check_flags=True)
    assert loaded.attrs == value.attrs
    if isinstance(value, pd.DataFrame):
        for column, dtype in value.dtypes.items():
            if pd.api.types.is_object_dtype(dtype):
                assert list(map(type, loaded[column])) == list(map(type, value[column])), column


class TestPandasFidelity:
    @pytest.mark.parametrize(("value", "fmt"), PANDAS_VALUES.values(), ids=PANDAS_VALUES.keys())
    def test_comes_back_identically(self, value: Any, fmt: str) -> None:
        prefix = f"memory://formats/{uuid.uuid4().hex}"
        producer = HandoffStore(prefix, task="producer")
        assert producer.save("frame", value).format == fmt
        producer.write_manifest(["make"], started_at="t0")
        assert_identical(HandoffStore(prefix, task="consumer").load("frame", "make"), value)

    @pytest.mark.parametrize(
        ("value", "named"),
        [
            (
                PANDAS_VALUES["object mixed"][0],
                r"column 'o' has dtype object holding float, int, str",
            ),
            (PANDAS_VALUES["python strings"][0], "Arrow would not return it identically"),
            (PANDAS_VALUES["int column labels"][0], "column labels"),
            (PANDAS_VALUES["tuple attrs"][0], r"attrs\['shape'\] is a tuple"),
        ],
    )
    def test_forbidden_pickle_says_what_arrow_would_change(self, value: Any, named: str) -> None:
        with pytest.raises(ForbiddenFormatError, match=rf"dataset 'table' .*{named}"):
            choose_encoding("table", value, allow_pickle=False)


# --- pickle can be forbidden by every route ----------------------------------------------------
class Model:
    """Stands for a trained model: something only pickle can carry."""


def train() -> Model:
    return Model()


MODEL_PIPELINE = pipeline(
    [node(train, None, "model", name="train"), node(repr, "model", "shown", name="show")]
)


def run_train(prefix: str, **runner_args: Any) -> None:
    """Runs the group that makes the model, as its pod would."""
    runner = GCSRunner(prefix=prefix, full_pipeline=MODEL_PIPELINE, task="train", **runner_args)
    runner.run(MODEL_PIPELINE.only_nodes("train"), DataCatalog())


def raised(error: type[BaseException], prefix: str, **runner_args: Any) -> BaseException:
    """The `error` behind the failure of `run_train` (Kedro wraps what a dataset raises in a
    DatasetError; the runner's own settings fail as themselves)."""
    with pytest.raises((DatasetError, GCSBridgeError)) as caught:
        run_train(prefix, **runner_args)
    current: BaseException | None = caught.value
    while current is not None and not isinstance(current, error):
        current = current.__cause__ or current.__context__
    assert current is not None, f"no {error.__name__} behind {caught.value!r}"
    return current


FORBIDDEN = r"dataset 'model' holds a .*test_formats\.Model.*Pickle is forbidden"
DAG_VARIABLES: dict[str, Any] = {
    "pipeline_name": "__default__",
    "env": "local",
    "package_name": "pkg",
    "gcp_project_id": "p",
    "gcp_region": "r",
    "gcp_gke_cluster_name": "c",
    "docker_image": "i",
    "gcs_bridge_root": "gs://b/r",
    "pipeline": MODEL_PIPELINE,
}


class TestPickleCanBeForbidden:
    @pytest.fixture
    def prefix(self, monkeypatch: pytest.MonkeyPatch) -> str:
        monkeypatch.delenv(ALLOW_PICKLE_ENV, raising=False)
        return f"memory://formats/{uuid.uuid4().hex}"

    @pytest.mark.parametrize("setting", [False, "false", "no"])
    def test_airflow_yml_sets_the_pod_environment(
        self, prefix: str, setting: object, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        dag = build_dag_file({**DAG_VARIABLES, "allow_pickle": setting})
        assert dag.error is None, dag.error
        for name, value in dag.run_env().items():
            if "{{" not in value:
                monkeypatch.setenv(name, value)
        assert dag.run_env()[ALLOW_PICKLE_ENV] == "false"
        assert re.search(FORBIDDEN, str(raised(ForbiddenFormatError, prefix)))

    def test_airflow_yml_default_allows_pickle(self) -> None:
        assert ALLOW_PICKLE_ENV not in build_dag_file(DAG_VARIABLES).run_env()

    @pytest.mark.parametrize("setting", ["false", "False", " no "])
    def test_environment_variable(
        self, prefix: str, setting: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(ALLOW_PICKLE_ENV, setting)
        assert re.search(FORBIDDEN, str(raised(ForbiddenFormatError, prefix)))

    @pytest.mark.parametrize("setting", [False, "false"])
    def test_python_argument(self, prefix: str, setting: object) -> None:
        error = raised(ForbiddenFormatError, prefix, allow_pickle=setting)
        assert re.search(FORBIDDEN, str(error))
        assert not HandoffStore(prefix, task="t").fs.exists(f"{prefix}/data")

    def test_allowed_pickle_carries_the_model(self, prefix: str) -> None:
        run_train(prefix, allow_pickle=True)
        loaded = HandoffStore(prefix, task="show").load("model", producer_task="train")
        assert isinstance(loaded, Model)

    @pytest.mark.parametrize("route", ["argument", "environment"])
    def test_unreadable_value_names_the_setting(
        self, prefix: str, route: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        if route == "environment":
            monkeypatch.setenv(ALLOW_PICKLE_ENV, "maybe")
        arguments = {"allow_pickle": "maybe"} if route == "argument" else {}
        error = raised(ConfigError, prefix, **arguments)
        assert NOT_A_BOOLEAN in str(error)

    def test_unreadable_airflow_yml_value_names_the_setting(self) -> None:
        dag = build_dag_file({**DAG_VARIABLES, "allow_pickle": "maybe"})
        assert dag.plan is None
        assert "'allow_pickle' must be true or false" in (dag.error or "")


#: Every node but evaluate_model_node in one `kedro run`: nothing is loaded from the run prefix,
#: and the model (read by evaluate_model_node) must cross.
_UP_TO_MODEL = (
    "preprocess_companies_node,preprocess_shuttles_node,create_model_input_table_node,"
    "split_data_node,train_model_node"
)


@pytest.fixture(scope="module")
def runner_param_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KedroRun]:
    """`kedro run --runner-params allow_pickle=...` on the example project, real processes."""
    root = tmp_path_factory.mktemp("runner_params")
    jobs = {
        setting: Job(
            (
                "run",
                "--runner",
                "kedro_gcs_bridge.GCSRunner",
                "--nodes",
                _UP_TO_MODEL,
                "--runner-params",
                f"allow_pickle={setting},prefix={(root / 'runs' / setting).as_uri()}",
            )
        )
        for setting in ("false", "maybe")
    }
    return run_jobs(root, jobs)


@pytest.mark.slow
class TestRunnerParams:
    def test_allow_pickle_false_stores_no_pickle(
        self, runner_param_runs: dict[str, KedroRun]
    ) -> None:
        run = runner_param_runs["false"]
        assert run.returncode != 0, run.describe()
        # The example keeps the model in a versioned pickle.PickleDataset on local disk: it
        # crosses in that catalog type, refused before the node trains it.
        assert "dataset 'regressor' is a pickle.PickleDataset" in run.output, run.describe()
        assert "pickle is forbidden (handoff.allow_pickle: false)" in run.output
        assert "Running node: train_model_node" not in run.output
        prefix = run.project.parent / "runs" / "false"
        assert [p for p in prefix.rglob("*") if "regressor" in str(p)] == [], run.describe()
        assert [p for p in prefix.rglob("*.pkl*")] == []

    def test_unreadable_value_names_the_setting(
        self, runner_param_runs: dict[str, KedroRun]
    ) -> None:
        run = runner_param_runs["maybe"]
        assert run.returncode != 0
        assert NOT_A_BOOLEAN in run.output, run.describe()
