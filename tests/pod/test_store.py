"""The run prefix store against memory://, file:// and a real local GCS emulator (gs://).

The commit protocol, integrity of the bytes decoded, pickle confinement, damaged metadata and
bounded object names; the fault loops (SIGSTOP, SIGKILL) live in test_faults.py.
"""

from __future__ import annotations

import json
import pickle
import random
import threading
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _gcs_emulator import BUCKET
from sklearn.linear_model import LinearRegression

from kedro_gcs_bridge.errors import (
    ChecksumError,
    ForbiddenFormatError,
    HandoffError,
    MetadataError,
    MissingHandoffError,
    NotCommittedError,
    SupersededAttemptError,
    SymlinkError,
)
from kedro_gcs_bridge.pod import backend as backend_module
from kedro_gcs_bridge.pod import reader as reader_module
from kedro_gcs_bridge.pod.backend import crc32c_of, open_backend
from kedro_gcs_bridge.pod.formats import CATALOG, catalog_format
from kedro_gcs_bridge.pod.protocol import RunLayout, object_key
from kedro_gcs_bridge.pod.store import HandoffStore

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


def commit(
    prefix: str, task: str, values: dict[str, Any], attempt: int = 1, **kwargs: Any
) -> HandoffStore:
    """One attempt of a group as the runner does it: withdraw, save, commit."""
    store = HandoffStore(prefix, task=task, attempt=attempt, **kwargs)
    store.start_attempt()
    for name, value in values.items():
        store.save(name, value)
    store.write_manifest([f"{task}_node"], started_at="t0")
    return store


class EvilPayload:
    """Unpickling this creates a file: the proof that bytes were unpickled."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.target, "pwned"))


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
        names = ["a/b", "a%2Fb", "a.b", "a_b", "a-b", "a b", "a~b"]
        assert len({object_key(n) for n in names}) == len(names)

    @pytest.mark.parametrize("name", ["数据集" * 40, "x" * 300, "é" * 120, "a%" * 100])
    def test_long_names_become_a_readable_prefix_plus_a_hash(self, name: str) -> None:
        key, head = object_key(name), object_key(name[:8])
        assert len(key.encode()) <= 160
        assert key.startswith(head) and "~" in key  # readable start, then the hash
        assert object_key(name + "!") != key

    def test_long_cjk_name_round_trips_identically_on_each_backend(self, prefix: str) -> None:
        name = "特征" * 90  # 180 characters, 1,620 bytes percent-encoded
        store = commit(prefix, "t", {name: {"v": 1}})
        assert HandoffStore(prefix, task="c").load(name, producer_task="t") == {"v": 1}
        assert objects(store)[0].startswith(f"data/{object_key(name)}/")


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
        producer = commit(prefix, "producer", {"data": value})
        assert producer.saved["data"].format == fmt
        loaded = HandoffStore(prefix, task="consumer").load("data", "producer_node")
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
        record = commit(prefix, "producer", {"data": frame}).saved["data"]
        assert (record.format, record.object.rsplit(".", 1)[-1]) == ("polars-ipc", "arrow")
        loaded = HandoffStore(prefix, task="consumer").load("data", producer_task="producer")
        assert isinstance(loaded, pl.DataFrame)
        assert loaded.equals(frame)

    def test_layout_holds_attempt_objects_and_the_manifest_only(self, prefix: str) -> None:
        store = commit(prefix, "split", {"X_train": FRAME, "features.x": {"k": 1}}, attempt=2)
        manifest = HandoffStore(prefix, task="other").manifests()[0]
        assert objects(store) == [
            f"data/X_train/{store.attempt_id}.feather",
            f"data/features.x/{store.attempt_id}.json",
            "manifests/split.json",
        ]
        assert store.attempt_id.startswith("a2-")
        assert (manifest.task, manifest.attempt, manifest.nodes) == ("split", 2, ("split_node",))
        assert set(manifest.datasets) == {"X_train", "features.x"}
        assert manifest.datasets["X_train"].object == f"{store.attempt_id}.feather"
        assert manifest.datasets["X_train"].size > 0

    def test_layout_is_computed_in_one_place(self) -> None:
        layout = RunLayout("bucket/root/dag/run")
        assert layout.data_object("a/b", "a1-0123456789ab.json") == (
            "bucket/root/dag/run/data/a%2Fb/a1-0123456789ab.json"
        )
        assert layout.manifest("split") == "bucket/root/dag/run/manifests/split.json"


class TestCommitProtocol:
    def test_saved_but_not_committed_is_not_read(self, prefix: str) -> None:
        HandoffStore(prefix, task="split").save("X", {"v": 1})
        with pytest.raises(NotCommittedError, match=r"task 'split' has not committed: no manifest"):
            HandoffStore(prefix, task="c", upstream={"X": "split"}).load("X", "split_node")

    def test_complete_attempt_and_a_killed_retry_never_mix(self, prefix: str) -> None:
        """Attempt 1 committed; attempt 2 died after its first output: no consumer mixes them."""
        commit(prefix, "split", {"big": [1] * 1000, "small": {"attempt": 1}}, attempt=1)
        retry = HandoffStore(prefix, task="split", attempt=2)
        retry.start_attempt()
        retry.save("big", [2] * 1000)  # ... and the pod is killed here
        consumer = HandoffStore(prefix, task="c", upstream={"big": "split", "small": "split"})
        with pytest.raises(NotCommittedError, match="task 'split' has not committed"):
            consumer.load("big")

    def test_a_zombie_older_attempt_cannot_replace_a_newer_commit(self, prefix: str) -> None:
        zombie = HandoffStore(prefix, task="split", attempt=1)
        zombie.start_attempt()
        zombie.save("big", [1] * 1000)  # paused here (worker lost) ...
        newer = commit(prefix, "split", {"big": [2] * 1000, "small": {"attempt": 2}}, attempt=2)
        zombie.save("small", {"attempt": 1})  # ... resumed late
        with pytest.raises(SupersededAttemptError, match="attempt 1 of task 'split' is superseded"):
            zombie.write_manifest(["split_node"], "t0")
        consumer = HandoffStore(prefix, task="c", upstream={"big": "split", "small": "split"})
        assert consumer.load("big") == [2] * 1000
        assert consumer.load("small") == {"attempt": 2}
        assert [p for p in objects(newer) if p.startswith("data/")] == sorted(
            f"data/{name}/{newer.attempt_id}.json" for name in ("big", "small")
        )  # the zombie's own objects were removed

    def test_a_zombie_starting_late_does_not_withdraw_a_newer_commit(self, prefix: str) -> None:
        commit(prefix, "split", {"d": 2}, attempt=2)
        with pytest.raises(SupersededAttemptError):
            HandoffStore(prefix, task="split", attempt=1).start_attempt()
        assert HandoffStore(prefix, task="c").load("d", producer_task="split") == 2

    def test_a_rerun_of_the_same_try_replaces_the_commit(self, prefix: str) -> None:
        commit(prefix, "t", {"d": {"v": 1}})
        commit(prefix, "t", {"d": {"v": 2}})
        consumer = HandoffStore(prefix, task="c")
        assert consumer.load("d", producer_task="t") == {"v": 2}

    def test_deleted_producer_manifest_fails_clearly(self, prefix: str) -> None:
        store = commit(prefix, "split", {"X": [1]})
        store.fs.rm_file(store.manifest_path("split"))
        with pytest.raises(NotCommittedError) as caught:
            HandoffStore(prefix, task="c", upstream={"X": "split"}).load("X", "split_node")
        message = str(caught.value)
        assert "'X', made by node 'split_node'" in message
        assert "task 'split' has not committed: no manifest at" in message
        assert "manifests/split.json" in message

    def test_without_the_plan_the_manifest_listing_the_node_is_found(self, prefix: str) -> None:
        commit(prefix, "split", {"X": [1]})
        assert HandoffStore(prefix, task="c").load("X", "split_node") == [1]
        with pytest.raises(NotCommittedError, match=r"no manifest .* lists node 'other_node'"):
            HandoffStore(prefix, task="c").load("Y", "other_node")

    def test_a_consumer_reads_one_commit_per_producer(self, prefix: str) -> None:
        """Once a consumer read a producer's manifest, a later commit does not mix in."""
        commit(prefix, "split", {"a": 1, "b": 1}, attempt=1)
        consumer = HandoffStore(prefix, task="c", upstream={"a": "split", "b": "split"})
        assert consumer.load("a") == 1
        commit(prefix, "split", {"a": 2, "b": 2}, attempt=2)
        assert consumer.load("b") == 1


def test_concurrent_attempts_and_tasks_on_one_prefix_never_mix(tmp_path: Path) -> None:
    """Several tasks, each with three attempts running at once on the SAME prefix and the same
    dataset names: every consumer sees exactly the newest attempt of each task, whole.

    file:// only: the check and rename run under a lock there; on GCS the same is done by
    generation preconditions, which gcp-storage-emulator ignores (docs/runner.md, "Commit").
    """
    prefix = (tmp_path / "run").as_uri()
    tasks = [f"t{i}" for i in range(4)]
    jobs = [(task, attempt) for task in tasks for attempt in (1, 2, 3)]
    random.Random(12).shuffle(jobs)
    outcomes: dict[tuple[str, int], str] = {}

    def work(task: str, attempt: int) -> None:
        value = {"task": task, "attempt": attempt}
        try:
            commit(prefix, task, {"shared": [value] * 200, "own": value}, attempt=attempt)
            outcomes[task, attempt] = "committed"
        except SupersededAttemptError:
            outcomes[task, attempt] = "superseded"

    threads = [threading.Thread(target=work, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == len(jobs)
    for task in tasks:
        assert outcomes[task, 3] == "committed"
        consumer = HandoffStore(prefix, task="c", upstream={"shared": task, "own": task})
        assert consumer.load("own") == {"task": task, "attempt": 3}
        assert consumer.load("shared") == [{"task": task, "attempt": 3}] * 200


class TestIntegrity:
    @pytest.mark.parametrize(
        "value",
        [FRAME, {"k": "value", "n": 12345}, LinearRegression()],
        ids=["arrow-ipc", "json", "pickle"],
    )
    def test_same_size_corruption_of_each_format_is_detected(self, prefix: str, value: Any) -> None:
        store = commit(prefix, "t", {"d": value})
        record = store.saved["d"]
        path = store.layout.data_object("d", record.object)
        data = bytearray(store.fs.cat_file(path))
        data[len(data) // 2] ^= 0x01
        store.fs.pipe_file(path, bytes(data))
        with pytest.raises(ChecksumError, match=rf"{record.object} of dataset 'd'"):
            HandoffStore(prefix, task="c").load("d", producer_task="t")

    def test_truncated_object_is_a_checksum_error_naming_it(self, prefix: str) -> None:
        store = commit(prefix, "t", {"X_train": FRAME})
        path = store.layout.data_object("X_train", store.saved["X_train"].object)
        store.fs.pipe_file(path, store.fs.cat_file(path)[:-10])
        with pytest.raises(ChecksumError, match=r"data/X_train/a1-[0-9a-f]+\.feather.*truncated"):
            HandoffStore(prefix, task="c").load("X_train", producer_task="t")

    @pytest.mark.usefixtures("gcs_emulator")
    def test_gcs_records_the_generation_it_reads(self) -> None:
        prefix = f"gs://{BUCKET}/root/dag/{uuid.uuid4().hex[:8]}"
        record = commit(prefix, "t", {"d": [1]}).saved["d"]
        assert isinstance(record.generation, int) and record.generation > 0


class TestLocalLoadPath:
    """file:// frames: read into one writable buffer, checksummed while read, decoded from it."""

    def test_chunks_are_checksummed_as_they_arrive(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(backend_module, "_CHUNK", 7)
        payload = bytes(range(256)) * 3
        (tmp_path / "o.bin").write_bytes(payload)
        data, crc = open_backend(tmp_path.as_uri()).read_checked(str(tmp_path / "o.bin"), None)
        assert (bytes(data), crc, data.is_mutable) == (payload, crc32c_of(payload), True)

    @pytest.mark.parametrize("seen", [10, 2000], ids=["grew-after-open", "cut-after-open"])
    def test_a_file_that_changed_size_after_open_is_read_to_its_end(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seen: int
    ) -> None:
        payload = bytes(range(256)) * 3
        (tmp_path / "o.bin").write_bytes(payload)
        real_fstat = backend_module.os.fstat

        def fstat(descriptor: int) -> Any:
            stat = real_fstat(descriptor)
            return type("Stat", (), {"st_size": seen, "st_mode": stat.st_mode})()

        monkeypatch.setattr(backend_module.os, "fstat", fstat)
        data, crc = open_backend(tmp_path.as_uri()).read_checked(str(tmp_path / "o.bin"), None)
        assert (bytes(data), crc) == (payload, crc32c_of(payload))

    def test_a_symlink_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "outside.bin").write_bytes(b"x")
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "o.bin").symlink_to(tmp_path / "outside.bin")
        backend = open_backend((tmp_path / "run").as_uri())
        with pytest.raises(SymlinkError, match=r"outside|symlink"):
            backend.read_checked(str(tmp_path / "run" / "o.bin"), None)

    def test_a_frame_is_decoded_from_the_buffer_it_was_read_into(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        prefix = (tmp_path / "run").as_uri()
        commit(prefix, "t", {"d": FRAME})
        consumer = HandoffStore(prefix, task="c")
        buffers: list[Any] = []
        real = consumer.backend.read_checked

        def read_checked(path: str, generation: int | None) -> tuple[Any, str]:
            read = real(path, generation)
            buffers.append(read[0])
            return read

        monkeypatch.setattr(consumer.backend, "read_checked", read_checked)
        monkeypatch.setattr(reader_module, "crc32c_of", _no_second_pass)
        frame = consumer.load("d", producer_task="t")
        pd.testing.assert_frame_equal(frame, FRAME)
        (buffer,) = buffers
        values = frame["f"].to_numpy(copy=False)
        start = values.__array_interface__["data"][0]
        assert buffer.address <= start < buffer.address + buffer.size  # no copy of the column
        frame.loc[7, "f"] = 9.5  # and it is the frame's own: writable
        assert frame.loc[7, "f"] == 9.5


def _no_second_pass(data: Any) -> str:
    raise AssertionError("the bytes of a file:// frame were checksummed after they were read")


class TestPickleConfinement:
    def _plant(self, prefix: str, target: Path, name: str | None = None) -> HandoffStore:
        """A producer that stored an honest JSON value, then a pickle record is forged."""
        store = commit(prefix, "t", {"d": {"ok": 1}})
        payload = pickle.dumps(EvilPayload(target))
        object_name = name or f"{store.attempt_id}.pkl"
        manifest = json.loads(store.fs.cat_file(store.manifest_path("t")))
        manifest["datasets"]["d"] |= {
            "format": "pickle",
            "object": object_name,
            "size": len(payload),
            "crc32c": crc32c_of(payload),
            "generation": None,
        }
        if name is None:
            store.fs.pipe_file(store.layout.data_object("d", object_name), payload)
        store.fs.pipe_file(store.manifest_path("t"), json.dumps(manifest).encode())
        return store

    def test_forbidden_pickle_fails_before_a_byte_is_unpickled(
        self, prefix: str, tmp_path: Path
    ) -> None:
        target = tmp_path / "pwned"
        self._plant(prefix, target)
        with pytest.raises(ForbiddenFormatError, match=r"'d' was stored as pickle.*forbidden"):
            HandoffStore(prefix, task="c", allow_pickle=False).load("d", producer_task="t")
        assert not target.exists()

    def test_a_symlink_out_of_the_prefix_is_never_followed(self, tmp_path: Path) -> None:
        prefix = (tmp_path / "run").as_uri()
        target, outside = tmp_path / "pwned", tmp_path / "outside.pkl"
        outside.write_bytes(pickle.dumps(EvilPayload(target)))
        store = self._plant(prefix, target)
        link = Path(store.layout.data_object("d", f"{store.attempt_id}.pkl"))
        link.unlink()
        link.symlink_to(outside)
        with pytest.raises(SymlinkError, match=r"symlink|outside"):
            HandoffStore(prefix, task="c").load("d", producer_task="t")
        assert not target.exists()

    @pytest.mark.parametrize("name", ["../../../outside.pkl", "data.pkl", "a1-x/../../e.pkl"])
    def test_an_object_name_the_store_never_writes_is_refused(
        self, prefix: str, tmp_path: Path, name: str
    ) -> None:
        target = tmp_path / "pwned"
        self._plant(prefix, target, name=name)
        with pytest.raises(MetadataError, match="not an object name the store writes"):
            HandoffStore(prefix, task="c").load("d", producer_task="t")
        assert not target.exists()

    def test_forbidden_pickle_writes_nothing(self, prefix: str) -> None:
        store = HandoffStore(prefix, task="t", allow_pickle=False)
        with pytest.raises(ForbiddenFormatError, match=r"'regressor'.*LinearRegression"):
            store.save("regressor", LinearRegression())
        assert objects(store) == []


PARQUET_ENTRY = {
    "type": "pandas.ParquetDataset",
    "filepath": "data/03_primary/table.parquet",
    "save_args": {"compression": "gzip"},
    "credentials": "dev_s3",
}
PICKLE_ENTRY = {
    "type": "pickle.PickleDataset",
    "filepath": "data/06_models/regressor.pickle",
    "versioned": True,
}


class TestCatalogFormat:
    """A local-disk catalog dataset crosses in its own catalog type, run-scoped like any."""

    def test_parquet_entry_crosses_as_parquet_with_its_options(self, prefix: str) -> None:
        import pyarrow.parquet as pq

        fmt = catalog_format(PARQUET_ENTRY)
        store = commit(prefix, "t", {}, attempt=2)
        store.save("table", FRAME, catalog_format=fmt)
        store.write_manifest(["t_node"], started_at="t0")
        record = store.saved["table"]
        assert record.format == CATALOG and record.object.endswith(".parquet")
        assert record.extra["catalog"]["type"] == "pandas.ParquetDataset"
        assert "credentials" not in record.extra["catalog"]["options"]
        if prefix.startswith("gs://"):
            assert isinstance(record.generation, int) and record.generation > 0
        path = store.layout.data_object("table", record.object)
        with store.fs.open(path, "rb") as file:
            parquet = pq.ParquetFile(file)
            assert parquet.metadata.row_group(0).column(0).compression == "GZIP"
            assert parquet.read().num_rows == len(FRAME)
        loaded = HandoffStore(prefix, task="c").load("table", producer_task="t")
        pd.testing.assert_frame_equal(loaded, FRAME)

    def test_forbidden_pickle_entry_names_it_and_writes_nothing(self, prefix: str) -> None:
        store = HandoffStore(prefix, task="t", allow_pickle=False)
        store.start_attempt()
        with pytest.raises(ForbiddenFormatError, match=r"'regressor'.*pickle\.PickleDataset"):
            store.save("regressor", LinearRegression(), catalog_format=catalog_format(PICKLE_ENTRY))
        assert store.saved == {}
        store.fs.invalidate_cache()
        assert not store.fs.exists(store.layout.data_dir("regressor"))

    def test_allowed_pickle_entry_crosses_as_pickle_and_predicts_the_same(
        self, prefix: str
    ) -> None:
        model = LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
        store = HandoffStore(prefix, task="t")
        store.start_attempt()
        store.save("regressor", model, catalog_format=catalog_format(PICKLE_ENTRY))
        store.write_manifest(["t_node"], started_at="t0")
        record = store.saved["regressor"]
        assert record.format == CATALOG and record.object.endswith(".pickle")
        path = store.layout.data_object("regressor", record.object)
        assert type(pickle.loads(store.fs.cat_file(path))) is LinearRegression
        loaded = HandoffStore(prefix, task="c").load("regressor", producer_task="t")
        assert loaded.predict([[3.0], [10.0]]).tolist() == model.predict([[3.0], [10.0]]).tolist()
        forbidding = HandoffStore(prefix, task="c2", allow_pickle=False)
        with pytest.raises(ForbiddenFormatError, match="'regressor'"):
            forbidding.load("regressor", producer_task="t")

    def test_same_size_corruption_of_a_parquet_object_is_a_checksum_error(
        self, prefix: str
    ) -> None:
        store = HandoffStore(prefix, task="t")
        store.start_attempt()
        store.save("table", FRAME, catalog_format=catalog_format(PARQUET_ENTRY))
        store.write_manifest(["t_node"], started_at="t0")
        record = store.saved["table"]
        path = store.layout.data_object("table", record.object)
        data = bytearray(store.fs.cat_file(path))
        data[len(data) // 2] ^= 0x01
        store.fs.pipe_file(path, bytes(data))
        with pytest.raises(ChecksumError, match=rf"{record.object} of dataset 'table'"):
            HandoffStore(prefix, task="c").load("table", producer_task="t")

    def test_an_entry_the_catalog_type_cannot_save_falls_back_to_the_value(
        self, prefix: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        entry = {"type": "pandas.ParquetDataset", "filepath": "data/x.parquet"}
        store = HandoffStore(prefix, task="t")
        with caplog.at_level("INFO", logger="kedro_gcs_bridge.pod.store"):
            store.save("d", {"not": "a frame"}, catalog_format=catalog_format(entry))
        assert store.saved["d"].format == "json"
        assert "could not be saved as pandas.ParquetDataset" in caplog.text

    @pytest.mark.parametrize(
        "entry",
        [
            {"type": "pandas.ParquetDataset"},
            {"type": "partitions.PartitionedDataset", "path": "p", "dataset": "pandas.CSVDataset"},
        ],
    )
    def test_an_entry_without_a_filepath_has_no_catalog_format(self, entry: dict[str, Any]) -> None:
        assert catalog_format(entry) is None

    def test_the_consumer_reads_with_its_own_entry(self, prefix: str) -> None:
        """A transcoded consumer (`x@arrow`) reads the object with its own catalog type."""
        store = commit(prefix, "t", {})
        store.save("table", FRAME, catalog_format=catalog_format(PARQUET_ENTRY))
        store.write_manifest(["t_node"], started_at="t0")
        own = catalog_format({**PARQUET_ENTRY, "load_args": {"columns": ["f"]}})
        loaded = HandoffStore(prefix, task="c").load("table", producer_task="t", catalog_format=own)
        assert list(loaded.columns) == ["f"]


def _damage(store: HandoffStore, change: Any) -> None:
    path = store.manifest_path("split")
    raw = store.fs.cat_file(path)
    store.fs.pipe_file(path, change(json.loads(raw), raw))


def _record(manifest: dict[str, Any], **fields: Any) -> bytes:
    manifest["datasets"]["d"] |= fields
    for name in [k for k, v in fields.items() if v is None and k != "generation"]:
        del manifest["datasets"]["d"][name]
    return json.dumps(manifest).encode()


DAMAGE = {
    "manifest not JSON": (lambda m, raw: raw[:-7], r"manifest .*split\.json is not valid JSON"),
    "manifest a list": (lambda m, raw: b"[1, 2]", r"manifest .*split\.json is a JSON list"),
    "manifest lacks datasets": (
        lambda m, raw: json.dumps({k: v for k, v in m.items() if k != "datasets"}).encode(),
        r"manifest .*split\.json is damaged: 'datasets' is missing",
    ),
    "record lacks crc32c": (
        lambda m, raw: _record(m, crc32c=None),
        r"record of dataset 'd' in manifest .*split\.json is damaged: 'crc32c' is missing",
    ),
    "record size is a string": (
        lambda m, raw: _record(m, size="12"),
        r"record of dataset 'd' .* 'size' is not int",
    ),
    "record with unknown keys and a series rebuild": (
        lambda m, raw: _record(m, surprise=1, extra={"pandas": "series"}),
        r"record of dataset 'd' \(task 'split'\) says .*series.* does not fit",
    ),
}


@pytest.mark.parametrize("case", DAMAGE, ids=list(DAMAGE))
def test_damaged_metadata_is_a_clear_error_naming_the_object(prefix: str, case: str) -> None:
    change, message = DAMAGE[case]
    store = commit(prefix, "split", {"d": {"v": 1}})
    _damage(store, change)
    with pytest.raises(MetadataError, match=message):
        HandoffStore(prefix, task="c").load("d", producer_task="split")


class TestErrors:
    def test_missing_dataset_names_dataset_producer_and_manifest(self, prefix: str) -> None:
        store = HandoffStore(prefix, task="consumer", upstream={"X_train": "split"})
        with pytest.raises(MissingHandoffError) as caught:
            store.load("X_train", "split_data_node")
        message = str(caught.value)
        assert "'X_train'" in message
        assert "'split_data_node'" in message
        assert "manifests/split.json" in message
        assert "no manifest" in message

    def test_missing_dataset_says_when_the_producer_manifest_exists(self, prefix: str) -> None:
        commit(prefix, "split", {})
        with pytest.raises(MissingHandoffError, match=r"manifest of task 'split'.*exists"):
            HandoffStore(prefix, task="c").load("X_train", "split_node")

    @pytest.mark.usefixtures("gcs_emulator")
    def test_missing_bucket_is_named(self) -> None:
        with pytest.raises(HandoffError, match="bucket 'no-such-bucket' does not exist"):
            HandoffStore("gs://no-such-bucket/root/run", task="t").check_reachable()


class TestBackend:
    @pytest.mark.parametrize(
        ("url", "name"),
        [
            ("gs://b/x", "gcs"),
            ("file:///tmp/x", "local"),
            ("/tmp/x", "local"),
            ("memory://x", "fsspec"),
        ],
    )
    def test_chosen_once_from_the_url(self, url: str, name: str) -> None:
        assert open_backend(url).name == name
