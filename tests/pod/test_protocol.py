"""The run-prefix protocol: versions on every object, what a reader does with a newer one, and
the task context a DAG hands a pod (on file:// and the local GCS emulator where storage counts).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _gcs_emulator import BUCKET

from kedro_gcs_bridge.errors import ConfigError, MetadataError, ProtocolVersionError
from kedro_gcs_bridge.ops.runs import scan_runs
from kedro_gcs_bridge.pod import context as context_module
from kedro_gcs_bridge.pod import schema
from kedro_gcs_bridge.pod.context import (
    ALLOW_PICKLE_ENV,
    MLFLOW_BUDGET_ENV,
    REPLAY_PARALLEL_ENV,
    TASK_START_ENV,
    TRY_ENV,
    TaskContext,
)
from kedro_gcs_bridge.pod.protocol import PROTOCOL_VERSION, Manifest, Record, RunMarker
from kedro_gcs_bridge.pod.store import HandoffStore

PROTOCOL_LOGGER = "kedro_gcs_bridge.pod.schema"


@pytest.fixture(autouse=True)
def _fresh_notice(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test is a fresh process as far as the once-per-process notice goes."""
    monkeypatch.setattr(schema._Notice, "given", False)
    yield


@pytest.fixture(params=["file", "gs"])
def prefix(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    run = uuid.uuid4().hex[:8]
    if request.param == "file":
        return (tmp_path / "root" / "dag" / run).as_uri()
    request.getfixturevalue("gcs_emulator")
    return f"gs://{BUCKET}/protocol-{run}/dag/{run}"  # a root of its own: runs list sees one


def produce(prefix: str, task: str = "t", attempt: int = 1) -> HandoffStore:
    store = HandoffStore(prefix, task=task, attempt=attempt)
    store.mark("dag", "run")
    store.start_attempt()
    store.save("d", {"k": [1, 2]})
    store.write_manifest([f"{task}_node"], started_at="t0")
    return store


def rewrite(store: HandoffStore, change: Callable[[dict[str, Any]], Any], task: str = "t") -> None:
    """Changes a committed manifest object as another version (or a hand) would write it."""
    path = store.manifest_path(task)
    manifest = json.loads(store.fs.cat_file(path))
    change(manifest)
    store.fs.pipe_file(path, json.dumps(manifest).encode())


def notices(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == PROTOCOL_LOGGER]


class TestVersionsWritten:
    def test_marker_manifest_and_record_carry_the_protocol_version(self, prefix: str) -> None:
        store = produce(prefix)
        marker = json.loads(store.fs.cat_file(store.layout.marker))
        manifest = json.loads(store.fs.cat_file(store.manifest_path("t")))
        assert marker["protocol"] == PROTOCOL_VERSION == "1.1"
        assert manifest["protocol"] == PROTOCOL_VERSION
        assert manifest["datasets"]["d"]["protocol"] == PROTOCOL_VERSION

    def test_objects_written_before_versions_load_as_1_0(
        self, prefix: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        store = produce(prefix)

        def unversioned(manifest: dict[str, Any]) -> None:
            del manifest["protocol"], manifest["datasets"]["d"]["protocol"]

        rewrite(store, unversioned)
        consumer = HandoffStore(prefix, task="c")
        assert consumer.load("d", producer_task="t") == {"k": [1, 2]}
        (manifest,) = consumer.manifests()
        assert (manifest.protocol, manifest.datasets["d"].protocol) == ("1.0", "1.0")
        assert notices(caplog) == []


class TestUnknownFields:
    def test_a_record_with_an_unknown_key_loads_and_says_so(
        self, prefix: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        store = produce(prefix)
        rewrite(store, lambda m: m["datasets"]["d"].update(compression="zstd"))
        with caplog.at_level(logging.WARNING, logger=PROTOCOL_LOGGER):
            value = HandoffStore(prefix, task="c").load("d", producer_task="t")
        assert value == {"k": [1, 2]}
        (notice,) = notices(caplog)
        assert "compression" in notice and "record of dataset 'd'" in notice

    def test_a_newer_minor_version_loads_and_says_so_once_per_process(
        self, prefix: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        produce(prefix, "t")
        other = produce(prefix, "u")

        def newer(manifest: dict[str, Any]) -> None:
            manifest |= {"protocol": "1.7", "retention": "7d"}
            manifest["datasets"]["d"] |= {"protocol": "1.7", "codec": "lz4"}

        rewrite(other, newer, "t")
        rewrite(other, newer, "u")
        with caplog.at_level(logging.WARNING, logger=PROTOCOL_LOGGER):
            consumer = HandoffStore(prefix, task="c")
            assert consumer.load("d", producer_task="t") == {"k": [1, 2]}
            assert consumer.load("d", producer_task="u") == {"k": [1, 2]}
            assert {m.protocol for m in consumer.manifests()} == {"1.7"}
        (notice,) = notices(caplog)  # two manifests, four objects with unknown fields: once
        assert "1.7" in notice and PROTOCOL_VERSION in notice and "retention" in notice


class TestNewerMajorVersion:
    def test_a_major_2_manifest_is_refused_naming_both_versions_and_the_remedy(
        self, prefix: str
    ) -> None:
        store = produce(prefix)
        rewrite(store, lambda m: m.update(protocol="2.0", datasets={"d": {"moved": True}}))
        with pytest.raises(ProtocolVersionError) as raised:
            HandoffStore(prefix, task="c").load("d", producer_task="t")
        message = str(raised.value)
        assert "protocol 2.0" in message and f"reads protocol {PROTOCOL_VERSION}" in message
        assert "finish the run on one image" in message and "re-run it" in message
        assert "manifests/t.json" in message

    def test_a_major_2_record_is_refused(self, prefix: str) -> None:
        store = produce(prefix)
        rewrite(store, lambda m: m["datasets"]["d"].update(protocol="2.1"))
        with pytest.raises(ProtocolVersionError, match=r"record of dataset 'd'.*protocol 2\.1"):
            HandoffStore(prefix, task="c").load("d", producer_task="t")

    def test_an_older_attempt_never_replaces_nor_withdraws_a_major_2_commit(
        self, prefix: str
    ) -> None:
        """A retry that pulled an older image meets a newer image's commit: it stops."""
        store = produce(prefix, attempt=2)
        rewrite(store, lambda m: m.update(protocol="2.0"))
        before = store.fs.cat_file(store.manifest_path("t"))
        late = HandoffStore(prefix, task="t", attempt=3)
        with pytest.raises(ProtocolVersionError):
            late.start_attempt()
        late.save("d", {"k": [3]})
        with pytest.raises(ProtocolVersionError):
            late.write_manifest(["t_node"], started_at="t1")
        store.fs.invalidate_cache()
        assert store.fs.cat_file(store.manifest_path("t")) == before

    def test_a_bad_version_is_damaged_metadata(self, prefix: str) -> None:
        store = produce(prefix)
        rewrite(store, lambda m: m.update(protocol="one"))
        with pytest.raises(MetadataError, match=r"protocol 'one' is not a version like 1\.0"):
            HandoffStore(prefix, task="c").load("d", producer_task="t")

    def test_runs_list_skips_a_major_2_marker_and_says_why(self, prefix: str) -> None:
        store = produce(prefix)
        marker = json.loads(store.fs.cat_file(store.layout.marker)) | {"protocol": "2.0"}
        store.fs.pipe_file(store.layout.marker, json.dumps(marker).encode())
        root = prefix.rsplit("/", 2)[0]
        scan = scan_runs(root)
        assert scan.runs == []
        assert any("protocol 2.0" in problem for problem in scan.problems), scan.problems


class TestModels:
    def test_a_manifest_round_trips_through_its_bytes(self) -> None:
        record = Record("d", "json", "a1-0123456789ab.json", "p", 3, "c==", None, "t", 1, "s", {})
        manifest = Manifest("t", ("n",), 1, {"d": record}, node_seconds={"n": 0.5})
        assert Manifest.from_bytes(manifest.to_bytes(), "x") == manifest
        assert manifest.bytes_out == 3

    def test_a_marker_of_another_kind_is_not_a_marker(self) -> None:
        with pytest.raises(MetadataError, match="not a kedro-gcs-bridge run marker"):
            RunMarker.from_bytes(b'{"kind": "something else"}', "m")

    def test_measured_fields_of_the_wrong_type_are_damage(self) -> None:
        raw = json.dumps(
            {"task": "t", "nodes": [], "attempt": 1, "datasets": {}, "node_seconds": {"n": "x"}}
        )
        with pytest.raises(MetadataError, match="not a mapping of numbers"):
            Manifest.from_bytes(raw.encode(), "x")


class TestTaskContext:
    FULL = TaskContext(
        run_prefix="gs://b/r/dag/run",
        dag_id="dag",
        run_id="manual__1",
        pipeline="__default__",
        kedro_env="prod",
        try_number=3,
        task_start=dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC),
        local_handoff=False,
        parallel_threshold=1024,
        parallel_concurrency=4,
        allow_pickle=False,
        tracking_uri="http://mlflow:5000",
        experiment="exp",
        logical_date="2026-12-01",
        mlflow_required=True,
        mlflow_metrics=("metrics",),
        mlflow_budget=12.5,
        structured_logs=True,
        tasks=("a", "b"),
        tags=("x",),
        task="a",
        upstream={"d": "b"},
        task_states='{"run": {"a": "success"}}',
        replay_parallel=2,
        replay_warm=True,
    )

    def test_every_field_has_a_variable(self) -> None:
        names = [item.name for item in dataclasses.fields(TaskContext)]
        assert names == list(context_module._CONTRACT)

    def test_to_env_and_from_env_round_trip(self) -> None:
        env = self.FULL.to_env()
        assert len(env) == len(dataclasses.fields(TaskContext))
        assert env[MLFLOW_BUDGET_ENV] == "12.5" and env[ALLOW_PICKLE_ENV] == "false"
        assert TaskContext.from_env(env) == self.FULL

    def test_unset_fields_write_nothing_and_empty_variables_are_unset(self) -> None:
        assert TaskContext().to_env() == {}
        assert TaskContext.from_env({TRY_ENV: "", ALLOW_PICKLE_ENV: ""}) == TaskContext()
        assert TaskContext().attempt == 1

    def test_rendered_fields_are_written_as_templates(self) -> None:
        env = TaskContext(task="a").to_env({"try_number": "{{ ti.try_number }}"})
        assert env == {TRY_ENV: "{{ ti.try_number }}", "KEDRO_GCS_BRIDGE_TASK": "a"}
        with pytest.raises(ValueError, match="no field tries"):
            TaskContext().to_env({"tries": "x"})

    @pytest.mark.parametrize("text", ["0", "-3", "soon", "inf"])
    def test_a_bad_budget_names_the_variable(self, text: str) -> None:
        with pytest.raises(ConfigError, match=MLFLOW_BUDGET_ENV):
            TaskContext.from_env({MLFLOW_BUDGET_ENV: text})

    def test_a_bad_boolean_names_the_setting_and_the_variable(self) -> None:
        with pytest.raises(ConfigError, match=f"'allow_pickle' must be.*{ALLOW_PICKLE_ENV}"):
            TaskContext.from_env({ALLOW_PICKLE_ENV: "maybe"})

    def test_an_unreadable_replay_parallel_costs_only_the_measurement(self) -> None:
        assert TaskContext.from_env({REPLAY_PARALLEL_ENV: "many"}).replay_parallel is None

    def test_an_unreadable_task_start_costs_only_the_measurement(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING):
            context = TaskContext.from_env({TASK_START_ENV: "yesterday", TRY_ENV: "2"})
        assert (context.task_start, context.attempt) == (None, 2)
        assert "No pod start measurement" in caplog.text
