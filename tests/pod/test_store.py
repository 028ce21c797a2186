"""The run prefix store against memory://, file:// and a real local GCS emulator (gs://)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pandas as pd
import pytest
from _gcs_emulator import BUCKET
from sklearn.linear_model import LinearRegression

from kedro_gcs_bridge.errors import (
    ChecksumError,
    ForbiddenFormatError,
    HandoffError,
    MissingHandoffError,
)
from kedro_gcs_bridge.pod.store import HandoffStore, object_key

FRAME = pd.DataFrame(
    {
        "f": [0.5, 1.5, 2.5],
        "i": [1, 2, 3],
        "s": ["a", "b", None],
        "t": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
    },
    index=[7, 8, 9],
)


@pytest.fixture(params=["memory", "file", "gs"])
def prefix(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh run prefix on each kind of storage."""
    run = uuid.uuid4().hex[:8]
    if request.param == "memory":
        return f"memory://bridge/{run}"
    if request.param == "file":
        return (tmp_path / "runs" / run).as_uri()
    request.getfixturevalue("gcs_emulator")
    return f"gs://{BUCKET}/root/dag/{run}"


def objects(store: HandoffStore) -> list[str]:
    store.fs.invalidate_cache()
    return sorted(p[len(store.root) + 1 :] for p in store.fs.find(store.root))


class TestObjectKey:
    @pytest.mark.parametrize(
        ("name", "key"),
        [
            ("X_train", "X_train"),
            ("features.x", "features.x"),
            ("a/b", "a%2Fb"),
            ("..", "%2E."),
            (".hidden", "%2Ehidden"),
            ("50%", "50%25"),
            ("café", "caf%C3%A9"),
        ],
    )
    def test_names_become_one_safe_segment(self, name: str, key: str) -> None:
        assert object_key(name) == key

    def test_distinct_names_give_distinct_keys(self) -> None:
        names = ["a/b", "a%2Fb", "a.b", "a_b", "a-b", "a b"]
        assert len({object_key(n) for n in names}) == len(names)


class TestRoundTrip:
    @pytest.mark.parametrize(
        ("value", "fmt"),
        [
            (FRAME, "feather"),
            (FRAME["f"].rename("price"), "feather"),
            ({"r2": 0.9, "rows": 3}, "json"),
            (LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0]), "pickle"),
        ],
    )
    def test_value_comes_back_equal_in_its_format(
        self, prefix: str, value: object, fmt: str
    ) -> None:
        producer = HandoffStore(prefix, task="producer")
        record = producer.save("data", value)
        assert record.format == fmt
        loaded = HandoffStore(prefix, task="consumer").load("data", "node")
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(loaded, value)
        elif isinstance(value, pd.Series):
            pd.testing.assert_series_equal(loaded, value)
        elif isinstance(value, LinearRegression):
            assert loaded.predict([[3.0]])[0] == pytest.approx(6.0)
        else:
            assert loaded == value

    def test_polars_frame_crosses_as_arrow_ipc(self, prefix: str) -> None:
        import polars as pl

        frame = pl.DataFrame({"id": [1, 2, 3], "name": ["a", None, "c"], "price": [1.5, 2.0, 0.1]})
        record = HandoffStore(prefix, task="producer").save("data", frame)
        assert (record.format, record.path.rsplit("/", 1)[-1]) == ("polars-ipc", "data.arrow")
        loaded = HandoffStore(prefix, task="consumer").load("data", "node")
        assert isinstance(loaded, pl.DataFrame)
        assert loaded.equals(frame)

    def test_layout_holds_data_record_and_manifest_only(self, prefix: str) -> None:
        store = HandoffStore(prefix, task="split", attempt=2)
        store.save("X_train", FRAME)
        store.save("features.x", {"k": 1})
        manifest = store.write_manifest(["split_node"], started_at="t0")
        assert objects(store) == [
            "data/X_train/data.feather",
            "data/X_train/record.json",
            "data/features.x/data.json",
            "data/features.x/record.json",
            "manifests/split.json",
        ]
        assert manifest["attempt"] == 2
        assert manifest["nodes"] == ["split_node"]
        assert set(manifest["datasets"]) == {"X_train", "features.x"}
        assert manifest["datasets"]["X_train"]["size"] > 0
        assert HandoffStore(prefix, task="other").manifests()[0]["task"] == "split"


class TestRetries:
    def test_a_retry_overwrites_its_outputs(self, prefix: str) -> None:
        HandoffStore(prefix, task="t", attempt=1).save("d", {"v": 1})
        HandoffStore(prefix, task="t", attempt=2).save("d", {"v": 2})
        consumer = HandoffStore(prefix, task="c")
        assert consumer.load("d") == {"v": 2}
        assert consumer.read_record("d").attempt == 2
        assert objects(consumer) == ["data/d/data.json", "data/d/record.json"]

    def test_a_retry_in_another_format_leaves_no_stale_object(self, prefix: str) -> None:
        HandoffStore(prefix, task="t").save("d", (1, 2))  # pickle
        HandoffStore(prefix, task="t").save("d", [1, 2])  # json
        consumer = HandoffStore(prefix, task="c")
        assert objects(consumer) == ["data/d/data.json", "data/d/record.json"]
        assert consumer.load("d") == [1, 2]

    def test_leftovers_of_a_killed_save_are_removed_by_the_retry(self, tmp_path: Path) -> None:
        prefix = (tmp_path / "run").as_uri()
        store = HandoffStore(prefix, task="t")
        folder = tmp_path / "run" / "data" / "d"
        folder.mkdir(parents=True)
        (folder / "data.feather.tmp-dead").write_bytes(b"ARROW1 half an object")
        store.save("d", FRAME)
        assert sorted(p.name for p in folder.iterdir()) == ["data.feather", "record.json"]


class TestErrors:
    def test_missing_dataset_names_dataset_producer_and_path(self, prefix: str) -> None:
        store = HandoffStore(prefix, task="consumer")
        with pytest.raises(MissingHandoffError) as caught:
            store.load("X_train", "split_data_node")
        message = str(caught.value)
        assert "'X_train'" in message
        assert "'split_data_node'" in message
        assert "data/X_train/record.json" in message
        assert "no manifest" in message

    def test_missing_dataset_says_when_the_producer_manifest_exists(self, prefix: str) -> None:
        producer = HandoffStore(prefix, task="split")
        producer.write_manifest(["split_data_node"], started_at="t0")
        with pytest.raises(MissingHandoffError, match=r"manifest of task 'split'.*exists"):
            HandoffStore(prefix, task="c").load("X_train", "split_data_node")

    def test_truncated_object_is_a_checksum_error_naming_it(self, prefix: str) -> None:
        store = HandoffStore(prefix, task="t")
        store.save("X_train", FRAME)
        data = f"{store.data_dir('X_train')}/data.feather"
        store.fs.pipe_file(data, store.fs.cat_file(data)[:-10])
        with pytest.raises(ChecksumError, match=r"data/X_train/data\.feather.*truncated"):
            HandoffStore(prefix, task="c").load("X_train")

    def test_forbidden_pickle_writes_nothing(self, prefix: str) -> None:
        store = HandoffStore(prefix, task="t", allow_pickle=False)
        with pytest.raises(ForbiddenFormatError, match=r"'regressor'.*LinearRegression"):
            store.save("regressor", LinearRegression())
        assert objects(store) == []

    @pytest.mark.usefixtures("gcs_emulator")
    def test_missing_bucket_is_named(self) -> None:
        with pytest.raises(HandoffError, match="bucket 'no-such-bucket' does not exist"):
            HandoffStore("gs://no-such-bucket/root/run", task="t").check_reachable()


def test_parallel_runs_do_not_see_each_other(prefix: str) -> None:
    """Two DAG runs write the same dataset names at once, each under its own prefix."""
    runs = {f"{prefix}-run{i}": pd.DataFrame({"run": [i] * 100}) for i in range(4)}

    def work(run_prefix: str, frame: pd.DataFrame) -> None:
        for attempt in range(3):
            HandoffStore(run_prefix, task="t", attempt=attempt).save("model_input", frame)

    threads = [threading.Thread(target=work, args=item) for item in runs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for run_prefix, frame in runs.items():
        loaded = HandoffStore(run_prefix, task="c").load("model_input")
        pd.testing.assert_frame_equal(loaded, frame)
