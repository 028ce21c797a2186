"""Large frames crossing as parallel parts on gs:// (gcp-storage-emulator: media uploads,
ranged reads of pinned generations), with a fault proxy on 127.0.0.1 dropping part uploads.

The threshold and part sizes are lowered so that a ~1 MB frame takes the parallel path.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from _fake_gcs import FAKE_BUCKET, fake_gcs_server
from _fault_proxy import failing_uploads, fault_proxy
from _gcs_emulator import BUCKET
from pyarrow import ipc

from kedro_gcs_bridge.errors import (
    ChecksumError,
    ConfigError,
    HandoffError,
    MetadataError,
    NotCommittedError,
)
from kedro_gcs_bridge.ops.runs import delete_runs, scan_runs
from kedro_gcs_bridge.pod.context import PARALLEL_THRESHOLD_ENV as THRESHOLD_ENV
from kedro_gcs_bridge.pod.formats import FEATHER, FORMATS, POLARS_IPC
from kedro_gcs_bridge.pod.protocol import Part
from kedro_gcs_bridge.pod.store import HandoffStore
from kedro_gcs_bridge.pod.transfer import (
    FRAME_READERS,
    MIB,
    STREAM_WRITERS,
    PartWriter,
    TransferSettings,
    _ranges,
)

KIB = 2**10
SMALL = TransferSettings(
    threshold=256 * KIB, part_size=128 * KIB, range_size=96 * KIB, concurrency=3
)
ROWS = 20_000


def big_frame(rows: int = ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "price": rng.standard_normal(rows),
            "count": rng.integers(0, 10**6, rows),
            "label": [f"label-{i % 977:05d}-{i}" for i in range(rows)],
            "at": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 10**8, rows), "s"),
            "kind": pd.Categorical(rng.choice(["a", "b", "c"], rows)),
            "maybe": pd.array([None if i % 7 == 0 else i for i in range(rows)], dtype="Int64"),
        }
    )


@pytest.fixture(scope="module")
def fake_gcs() -> Iterator[str]:
    with fake_gcs_server() as url:
        yield url


@pytest.fixture
def prefix(gcs_emulator: str) -> str:
    return f"gs://{BUCKET}/transfer-{uuid.uuid4().hex[:8]}/dag/run"


def stored(store: HandoffStore) -> list[str]:
    store.fs.invalidate_cache()
    return sorted(p[len(store.root) + 1 :] for p in store.fs.find(store.root))


def save_and_commit(prefix: str, frame: pd.DataFrame, attempt: int = 1) -> HandoffStore:
    producer = HandoffStore(prefix, task="producer", attempt=attempt, transfer=SMALL)
    producer.start_attempt()
    producer.save("frame", frame)
    producer.write_manifest(["producer_node"], "t0")
    return producer


def load(prefix: str) -> pd.DataFrame:
    consumer = HandoffStore(prefix, task="consumer", transfer=SMALL)
    return consumer.load("frame", producer_task="producer")


class TestSettings:
    def test_threshold_and_concurrency_come_from_the_environment(self) -> None:
        found = TransferSettings.from_env({THRESHOLD_ENV: "1048576"})
        assert (found.threshold, found.concurrency) == (2**20, TransferSettings().concurrency)

    @pytest.mark.parametrize("text", ["", "-1", "0", "1.5", "lots"])
    def test_a_bad_value_is_refused(self, text: str) -> None:
        with pytest.raises(ConfigError, match=THRESHOLD_ENV):
            TransferSettings.from_env({THRESHOLD_ENV: text})

    @pytest.mark.parametrize(
        ("frame_mib", "concurrency", "part_mib"),
        [
            (128, 8, 4),  # at the default threshold: 8 x 4 MiB in flight, not 8 x 16 MiB
            (256, 8, 8),
            (512, 8, 16),
            (4096, 8, 16),  # never above the configured part size
            (128, 1, 16),
            (16, 8, 4),  # never below 4 MiB (a lower threshold)
        ],
    )
    def test_parts_in_flight_stay_a_quarter_of_the_frame(
        self, frame_mib: int, concurrency: int, part_mib: int
    ) -> None:
        settings = TransferSettings(concurrency=concurrency).sized_for(frame_mib * MIB)
        assert settings.part_size == part_mib * MIB
        assert settings.concurrency == concurrency

    def test_a_smaller_configured_part_size_is_kept(self) -> None:
        assert TransferSettings(part_size=256 * 1024).sized_for(2**30).part_size == 256 * 1024

    @pytest.mark.parametrize(
        ("sizes", "range_size", "expected"),
        [
            ([10], 4, [(0, 0, 4, 0), (0, 4, 8, 4), (0, 8, 10, 8)]),
            ([4, 3], 4, [(0, 0, 4, 0), (1, 0, 3, 4)]),
        ],
    )
    def test_ranges_cover_every_part_once(
        self, sizes: list[int], range_size: int, expected: list[tuple[int, ...]]
    ) -> None:
        assert _ranges(sizes, range_size) == expected


@pytest.fixture
def event_loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop in a thread of its own, as gcsfs runs one."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


def joined(pieces: list[memoryview]) -> bytes:
    return b"".join(bytes(piece) for piece in pieces)


class TestPartWriter:
    """The writer behind the parallel save, with uploads faked on an event loop thread."""

    SETTINGS = TransferSettings(part_size=64, concurrency=3)

    def test_parts_hold_the_stream_in_order_though_uploads_end_out_of_order(
        self, event_loop_thread: asyncio.AbstractEventLoop
    ) -> None:
        received: dict[str, bytes] = {}

        async def upload(path: str, pieces: list[memoryview]) -> Part:
            await asyncio.sleep(0.001 * (5 - int(path) % 5))  # later parts end first
            received[path] = joined(pieces)  # read at the end: reused memory would show
            return Part(len(received[path]), int(path), "c")

        stream = bytes(range(256)) * 5 + b"tail"
        writer = PartWriter(event_loop_thread, upload, str, self.SETTINGS)
        for start in range(0, len(stream), 100):
            writer.write(stream[start : start + 100])
        parts = writer.finish()
        assert [part.generation for part in parts] == list(range(len(received)))
        assert b"".join(received[str(index)] for index in range(len(parts))) == stream
        assert {len(received[str(index)]) for index in range(len(parts) - 1)} == {64}
        assert writer.size == len(stream)
        assert writer.started == [str(index) for index in range(len(parts))]

    def test_a_slow_part_does_not_hold_the_next_ones_back(
        self, event_loop_thread: asyncio.AbstractEventLoop
    ) -> None:
        """With `concurrency` slots, a part waits for a free slot, not for the oldest part."""
        concurrency = self.SETTINGS.concurrency
        later_started, waited = threading.Event(), []

        async def upload(path: str, pieces: list[memoryview]) -> Part:
            if path == "0":
                # Ends once a part beyond the first `concurrency` has started (or gives up).
                waited.append(await asyncio.to_thread(later_started.wait, 10))
            elif int(path) > concurrency:
                later_started.set()
            return Part(sum(map(len, pieces)), int(path), "c")

        writer = PartWriter(event_loop_thread, upload, str, self.SETTINGS)
        writer.write(bytes(self.SETTINGS.part_size * (concurrency + 3)))
        writer.finish()
        assert waited == [True]

    def test_arrow_buffers_go_into_parts_uncopied_and_reusable_memory_is_copied(
        self, event_loop_thread: asyncio.AbstractEventLoop
    ) -> None:
        """Arrow's body buffers are immutable and kept alive by reference: parts hold slices
        of them. Other memory (a bytearray, a memoryview) may be reused by the writer once
        `write` returns, so it is copied."""
        received: dict[str, list[memoryview]] = {}

        async def upload(path: str, pieces: list[memoryview]) -> Part:
            received[path] = list(pieces)
            return Part(sum(map(len, pieces)), int(path), "c")

        arrow = pa.py_buffer(np.arange(40, dtype=np.int64).tobytes())  # 320 bytes: 5 parts
        scratch = bytearray(b"x" * 30)
        writer = PartWriter(event_loop_thread, upload, str, self.SETTINGS)
        writer.write(scratch)
        scratch[:] = b"y" * 30  # the writer's memory reused after `write`
        writer.write(arrow)
        parts = writer.finish()
        stream = b"".join(joined(received[str(index)]) for index in range(len(parts)))
        assert stream == b"x" * 30 + arrow.to_pybytes()
        whole = np.frombuffer(arrow, dtype=np.uint8)
        shared = [
            piece
            for pieces in received.values()
            for piece in pieces
            if np.shares_memory(np.frombuffer(piece, dtype=np.uint8), whole)
        ]
        assert sum(map(len, shared)) == arrow.size

    @pytest.mark.parametrize("fmt_name", [FEATHER, POLARS_IPC])
    def test_parts_hold_what_the_format_writes(
        self, fmt_name: str, event_loop_thread: asyncio.AbstractEventLoop
    ) -> None:
        received: dict[str, bytes] = {}

        async def upload(path: str, pieces: list[memoryview]) -> Part:
            received[path] = joined(pieces)
            return Part(len(received[path]), int(path), "c")

        frame = big_frame(2_000)[["price", "count", "label", "at"]]
        value = pl.from_pandas(frame) if fmt_name == POLARS_IPC else frame
        expected = io.BytesIO()
        STREAM_WRITERS[fmt_name](value, expected)
        settings = TransferSettings(part_size=4 * KIB, concurrency=2)
        writer = PartWriter(event_loop_thread, upload, str, settings)
        STREAM_WRITERS[fmt_name](value, writer)
        parts = writer.finish()
        assert b"".join(received[str(index)] for index in range(len(parts))) == expected.getvalue()


class TestParallelRoundTrip:
    def test_large_frame_crosses_as_parts_identically(self, prefix: str) -> None:
        frame = big_frame()
        producer = save_and_commit(prefix, frame)
        record = producer.saved["frame"]
        assert len(record.parts) >= 4  # the parallel path, several parts
        pd.testing.assert_frame_equal(load(prefix), frame, check_exact=True)
        names = [f"data/frame/{record.object}.{i:04d}" for i in range(len(record.parts))]
        assert stored(producer) == sorted([*names, "manifests/producer.json"])

    def test_large_frame_crosses_identically_on_fake_gcs_server(
        self, fake_gcs: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The emulator benchmarks/large.py measures the parallel path on.
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs)
        prefix = f"gs://{FAKE_BUCKET}/transfer-{uuid.uuid4().hex[:8]}/dag/run"
        frame = big_frame()
        producer = save_and_commit(prefix, frame)
        record = producer.saved["frame"]
        assert len(record.parts) >= 4 and all(part.generation for part in record.parts)
        pd.testing.assert_frame_equal(load(prefix), frame, check_exact=True)
        names = [f"data/frame/{record.object}.{i:04d}" for i in range(len(record.parts))]
        assert stored(producer) == sorted([*names, "manifests/producer.json"])

    def test_parts_hold_the_bytes_the_plain_path_writes(self, prefix: str) -> None:
        frame = big_frame()
        record = save_and_commit(prefix, frame).saved["frame"]
        plain = HandoffStore(f"{prefix}-plain", task="producer")  # default threshold: plain
        plain_record = plain.save("frame", frame)
        assert not plain_record.parts
        assert (record.size, record.crc32c) == (plain_record.size, plain_record.crc32c)

    def test_small_frame_takes_the_plain_path(self, prefix: str) -> None:
        record = save_and_commit(prefix, big_frame(100)).saved["frame"]
        assert record.parts == ()

    def test_a_changed_part_is_a_checksum_error(self, prefix: str) -> None:
        producer = save_and_commit(prefix, big_frame())
        record = producer.saved["frame"]
        part = producer.layout.part_object("frame", record.object, 1)
        data = bytearray(producer.fs.cat_file(part))
        data[100] ^= 0xFF
        producer.fs.pipe_file(part, bytes(data))
        # Read what is there now, not the pinned generations.
        _rewrite_record(
            producer, lambda record: [p.update(generation=None) for p in record["parts"]]
        )
        consumer = HandoffStore(prefix, task="consumer", transfer=SMALL)
        with pytest.raises(ChecksumError, match="does not match its record"):
            consumer.load("frame", producer_task="producer")

    def test_parts_that_do_not_add_up_are_damaged_metadata(self, prefix: str) -> None:
        producer = save_and_commit(prefix, big_frame())
        _rewrite_record(producer, lambda record: record["parts"][0].update(size=1))
        consumer = HandoffStore(prefix, task="consumer", transfer=SMALL)
        with pytest.raises(MetadataError, match="do not add up"):
            consumer.load("frame", producer_task="producer")


def _rewrite_record(producer: HandoffStore, change: Callable[[dict[str, Any]], Any]) -> None:
    """Changes the committed record of `frame` in the producer's manifest object."""
    path = producer.manifest_path("producer")
    manifest = json.loads(producer.fs.cat_file(path))
    change(manifest["datasets"]["frame"])
    producer.fs.pipe_file(path, json.dumps(manifest).encode())


def encoded(frame: pd.DataFrame) -> bytes:
    sink = pa.BufferOutputStream()
    frame.to_feather(sink, **FORMATS[FEATHER].options["save_args"])
    return sink.getvalue().to_pybytes()


def read_buffer(data: bytes) -> pa.Buffer:
    """The bytes in a private, mutable buffer, as `read_parts` hands them to the decoder."""
    buffer = pa.allocate_buffer(len(data))
    memoryview(buffer).cast("B")[:] = data  # type: ignore[arg-type]
    return buffer


def typed_frames() -> list[pd.DataFrame]:
    rows = 50
    rng = np.random.default_rng(5)
    at = pd.date_range("2021-03-27", periods=rows, freq="h", tz="Europe/Paris")
    return [
        big_frame(rows),
        pd.DataFrame(
            {
                "float_nan": np.where(np.arange(rows) % 5 == 0, np.nan, rng.standard_normal(rows)),
                "flag": rng.integers(0, 2, rows).astype(bool),
                "small": rng.integers(-100, 100, rows).astype(np.int8),
                "single": rng.standard_normal(rows).astype(np.float32),
                "wait": pd.to_timedelta(rng.integers(0, 10**6, rows), unit="s"),
                "zoned": at,
                "maybe_flag": pd.array([None, True, False] * 16 + [True, None], dtype="boolean"),
            },
            index=pd.Index(np.arange(rows) * 3, name="id"),
        ),
        pd.DataFrame(
            {("a", "x"): np.arange(4.0), ("a", "y"): np.arange(4)},
            index=pd.MultiIndex.from_product([["p", "q"], [1, 2]], names=["k", "n"]),
        ),
        pd.DataFrame({"empty": np.array([], dtype=np.float64)}),
    ]


class TestDecode:
    """Frames decode from the verified bytes: numeric columns without a copy, yet writable."""

    def test_a_frame_is_written_as_one_record_batch(self) -> None:
        reader = ipc.open_file(pa.BufferReader(encoded(big_frame())))
        assert reader.num_record_batches == 1

    @pytest.mark.parametrize("index", range(len(typed_frames())))
    def test_every_dtype_comes_back_identically(self, index: int) -> None:
        frame = typed_frames()[index]
        for data in (encoded(frame), read_buffer(encoded(frame))):
            loaded = FRAME_READERS[FEATHER](data)
            pd.testing.assert_frame_equal(loaded, frame, check_exact=True, check_flags=True)
            for position in range(loaded.shape[1] if len(loaded) > 1 else 0):
                loaded.iloc[0, position] = loaded.iloc[1, position]  # every column writable

    def test_numeric_columns_stay_in_the_buffer_and_are_writable(self) -> None:
        frame = big_frame()
        buffer = read_buffer(encoded(frame))
        loaded = FRAME_READERS[FEATHER](buffer)
        whole = np.frombuffer(buffer, dtype=np.uint8)
        for column in ("price", "count", "at"):
            assert np.shares_memory(loaded[column].to_numpy(), whole), column
        loaded.loc[0, "price"] = 1.5
        loaded["count"] += 1
        loaded.iloc[1, loaded.columns.get_loc("at")] = pd.Timestamp("1999-01-01")
        assert loaded.loc[0, "price"] == 1.5
        assert (loaded["count"] == frame["count"] + 1).all()
        assert loaded["at"].iloc[1] == pd.Timestamp("1999-01-01")

    def test_a_large_frame_loaded_from_parts_is_writable(self, prefix: str) -> None:
        frame = big_frame()
        save_and_commit(prefix, frame)
        loaded = load(prefix)
        loaded.loc[0, "price"] = 2.5
        loaded["count"] *= 2
        assert loaded.loc[0, "price"] == 2.5
        assert (loaded["count"] == frame["count"] * 2).all()


def _dropping(method: str, kind: str) -> tuple[object, list[str]]:
    """Drops or refuses every other `method` request to a part's `kind` path once (gcsfs
    and the load retry them)."""
    fates, seen, lock = itertools.cycle(["drop", "pass", "503", "pass"]), [], threading.Lock()

    def decide(asked: str, path: str) -> str:
        if asked != method or f"/{kind}/" not in path or ".feather.0" not in path:
            return "pass"
        with lock:
            fate = next(fates)
            seen.append(fate)
        return fate

    return decide, seen


def dropping_part_uploads() -> tuple[object, list[str]]:
    """Drops or refuses every other part upload once (gcsfs retries them)."""
    return _dropping("POST", "upload")


def dropping_part_reads() -> tuple[object, list[str]]:
    """Drops or refuses every other ranged read of a part once (the load retries them)."""
    return _dropping("GET", "download")


@pytest.mark.slow
class TestFaults:
    def test_dropped_part_reads_are_retried_and_the_frame_is_identical(
        self, prefix: str, gcs_emulator: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        frame = big_frame()
        save_and_commit(prefix, frame)
        policy, seen = dropping_part_reads()
        with fault_proxy(gcs_emulator, policy, max_requests=500, max_seconds=120) as proxy:
            monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
            loaded = load(prefix)
        assert {"drop", "503"} <= set(seen), seen  # faults hit ranged reads of parts
        pd.testing.assert_frame_equal(loaded, frame, check_exact=True)

    def test_dropped_part_uploads_are_retried_and_leave_nothing_else(
        self, prefix: str, gcs_emulator: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        frame = big_frame()
        policy, seen = dropping_part_uploads()
        with fault_proxy(gcs_emulator, policy, max_requests=500, max_seconds=120) as proxy:
            monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
            producer = save_and_commit(prefix, frame)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
        assert {"drop", "503"} <= set(seen), seen  # faults hit part uploads
        pd.testing.assert_frame_equal(load(prefix), frame, check_exact=True)
        record = producer.saved["frame"]
        names = [f"data/frame/{record.object}.{i:04d}" for i in range(len(record.parts))]
        assert stored(producer) == sorted([*names, "manifests/producer.json"])

    def test_persistent_upload_faults_fail_clearly_and_remove_the_parts(
        self, prefix: str, gcs_emulator: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        producer = HandoffStore(prefix, task="producer", transfer=SMALL)
        with fault_proxy(gcs_emulator, failing_uploads, max_requests=500, max_seconds=180) as proxy:
            monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
            with pytest.raises(HandoffError, match="storage error while saving dataset 'frame'"):
                producer.save("frame", big_frame())
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
        assert proxy.counts["503"] >= 6  # gcsfs retried before giving up
        assert stored(producer) == []
        with pytest.raises(NotCommittedError):
            load(prefix)


_KILLED_SAVE = """
import sys, numpy as np, pandas as pd
sys.path.insert(0, {tests!r})
from pod.test_transfer import SMALL, big_frame
from kedro_gcs_bridge.pod.store import HandoffStore
store = HandoffStore({prefix!r}, task="producer", transfer=SMALL)
store.start_attempt()
store.save("frame", big_frame(200_000))
store.write_manifest(["producer_node"], "t0")
"""


def slow_part_uploads(method: str, path: str) -> str:
    if method == "POST" and ".feather.0" in path:
        time.sleep(0.3)
    return "pass"


@pytest.mark.slow
def test_a_killed_save_commits_nothing_and_its_parts_go_with_runs_gc(
    prefix: str, gcs_emulator: str
) -> None:
    tests = str(Path(__file__).resolve().parents[1])
    script = textwrap.dedent(_KILLED_SAVE).format(tests=tests, prefix=prefix)
    inspect = HandoffStore(prefix, task="inspect")
    with fault_proxy(gcs_emulator, slow_part_uploads, max_requests=500, max_seconds=120) as proxy:
        victim = subprocess.Popen(
            [sys.executable, "-c", script], env={**os.environ, "STORAGE_EMULATOR_HOST": proxy.url}
        )
        deadline = time.monotonic() + 60
        while not any(".feather.0" in name for name in stored(inspect)):
            assert time.monotonic() < deadline and victim.poll() is None, "no part was uploaded"
            time.sleep(0.05)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        proxy.drain()  # a part whose body was sent before the kill still lands
    leftovers = [name for name in stored(inspect) if ".feather.0" in name]
    assert leftovers and "manifests/producer.json" not in stored(inspect)
    with pytest.raises(NotCommittedError):
        load(prefix)

    frame = big_frame()
    retry = save_and_commit(prefix, frame, attempt=2)  # the retry commits its own parts
    pd.testing.assert_frame_equal(load(prefix), frame, check_exact=True)
    retry.mark("dag", "run")
    root = prefix.rsplit("/", 2)[0]
    runs = scan_runs(root).runs
    assert [run.path for run in runs] == [retry.root]
    delete_runs(root, runs)
    assert stored(inspect) == []
