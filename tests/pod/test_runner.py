"""GCSRunner: in-process on small pipelines (Kedro's corners), and on the example project with
each group as its own `kedro run` process, through file:// and a real local GCS emulator."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from _gcs_emulator import BUCKET
from kedro.io import DataCatalog, DatasetError
from kedro.pipeline import Pipeline, node, pipeline

from kedro_gcs_bridge.errors import ForbiddenFormatError, HandoffError
from kedro_gcs_bridge.pod.protocol import MARKER_OBJECT
from kedro_gcs_bridge.pod.runner import GCSRunner
from kedro_gcs_bridge.pod.store import HandoffStore

REPO = Path(__file__).resolve().parents[2]
KEDRO = Path(sys.executable).parent / "kedro"
GROUPS = {  # the example's groups, in topological order
    "companies": ["preprocess_companies_node"],
    "shuttles": ["preprocess_shuttles_node"],
    "split": ["create_model_input_table_node", "split_data_node"],
    "train_model_node": ["train_model_node"],
    "evaluate_model_node": ["evaluate_model_node"],
}


# --- in-process: Kedro's corners -----------------------------------------------------------
def make(n: int) -> list[int]:
    return list(range(n))


def double(values: list[int]) -> list[int]:
    return [2 * v for v in values]


def total(values: list[int], factor: int) -> int:
    return sum(values) * factor


def count(values: list[int]) -> int:
    return len(values)


def objects(prefix: str) -> list[str]:
    """The prefix's data objects and manifests, each attempt id shown as `<attempt>`."""
    store = HandoffStore(prefix, task="inspect")
    store.fs.invalidate_cache()
    if not store.fs.exists(store.root):
        return []
    found = (p[len(store.root) + 1 :] for p in store.fs.find(store.root))
    return sorted(
        re.sub(r"/a\d+-[0-9a-f]{12}\.", "/<attempt>.", p) for p in found if p != MARKER_OBJECT
    )


def run_group(
    full: Pipeline,
    nodes: list[str],
    prefix: str,
    catalog_config: dict[str, Any] | None = None,
    **runner_args: Any,
) -> dict[str, Any]:
    """Runs some nodes of `full` as one pod would: a fresh catalog, GCSRunner."""
    catalog = DataCatalog.from_config(catalog_config or {})
    catalog["params:factor"] = 3
    catalog["params:n"] = 4
    runner = GCSRunner(prefix=prefix, full_pipeline=full, task="-".join(nodes), **runner_args)
    runner.run(full.only_nodes(*nodes), catalog)
    made = full.only_nodes(*nodes).all_outputs()
    return {name: catalog.load(name) for name in made if catalog.exists(name)}


FULL = pipeline(
    [
        node(make, "params:n", "raw", name="make"),
        node(double, "raw", "features.doubled", name="double"),
        node(total, ["features.doubled", "params:factor"], "total", name="total"),
        node(count, "features.doubled", "n_doubled", name="count"),
    ]
)


@pytest.fixture
def memory_prefix() -> str:
    return f"memory://runs/{uuid.uuid4().hex}"


class TestBoundaries:
    def test_only_boundary_datasets_cross(self, memory_prefix: str) -> None:
        run_group(FULL, ["make", "double"], memory_prefix)
        # raw stays inside the first group; params never cross.
        assert objects(memory_prefix) == [
            "data/features.doubled/<attempt>.json",
            "manifests/make-double.json",
        ]
        outputs = run_group(FULL, ["total", "count"], memory_prefix)
        assert outputs["total"] == sum(2 * v for v in range(4)) * 3
        assert outputs["n_doubled"] == 4

    def test_a_dataset_read_by_two_groups_is_saved_once(self, memory_prefix: str) -> None:
        run_group(FULL, ["make", "double"], memory_prefix)
        run_group(FULL, ["total"], memory_prefix)
        run_group(FULL, ["count"], memory_prefix)
        data = [p for p in objects(memory_prefix) if p.startswith("data/")]
        assert data == ["data/features.doubled/<attempt>.json"]

    def test_transcoded_names_cross_once_by_base_name(self, memory_prefix: str) -> None:
        full = pipeline(
            [
                node(make, "params:n", "numbers@list", name="make"),
                node(count, "numbers@list", "how_many", name="count"),
                node(double, "numbers@other", "doubled", name="double"),
            ]
        )
        run_group(full, ["make"], memory_prefix)
        outputs = run_group(full, ["count", "double"], memory_prefix)
        assert outputs["how_many"] == 4 and outputs["doubled"] == [0, 2, 4, 6]
        data = [p for p in objects(memory_prefix) if p.startswith("data/")]
        assert data == ["data/numbers/<attempt>.json"]

    def test_catalog_datasets_in_gcs_are_left_alone(self, memory_prefix: str) -> None:
        remote = {"raw": {"type": "json.JSONDataset", "filepath": f"{memory_prefix}-cat/raw.json"}}
        run_group(FULL, ["make"], memory_prefix, remote)
        assert [p for p in objects(memory_prefix) if p.startswith("data/")] == []
        outputs = run_group(FULL, ["double"], memory_prefix, remote)
        assert outputs["features.doubled"] == [0, 2, 4, 6]

    def test_local_disk_catalog_dataset_is_reported_with_local_handoff_off(
        self, memory_prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        local = {"raw": {"type": "json.JSONDataset", "filepath": str(tmp_path / "raw.json")}}
        with caplog.at_level(logging.WARNING, logger="kedro_gcs_bridge.pod.runner"):
            run_group(FULL, ["make"], memory_prefix, local, handoff_local_datasets=False)
        assert "'raw' crosses between groups but is saved on local disk" in caplog.text

    def test_local_disk_catalog_dataset_can_go_through_the_prefix(
        self, memory_prefix: str, tmp_path: Path
    ) -> None:
        local = {"raw": {"type": "json.JSONDataset", "filepath": str(tmp_path / "raw.json")}}
        run_group(FULL, ["make"], memory_prefix, local)  # local_handoff is on by default
        assert "data/raw/<attempt>.json" in objects(memory_prefix)
        # Saved where the catalog says too (as `kedro run` saves it), but carried by the
        # prefix: the next group, on another disk, does not need the file.
        (tmp_path / "raw.json").unlink()
        outputs = run_group(FULL, ["double"], memory_prefix, local, handoff_local_datasets="true")
        assert outputs["features.doubled"] == [0, 2, 4, 6]

    @pytest.mark.parametrize(
        ("pattern", "crosses"),
        [
            ({"type": "MemoryDataset"}, True),
            ({"type": "json.JSONDataset", "filepath": "gs-like/{default}.json"}, False),
        ],
    )
    def test_catch_all_pattern(
        self, memory_prefix: str, tmp_path: Path, pattern: dict[str, str], crosses: bool
    ) -> None:
        """A `{default}` pattern that makes MemoryDatasets still crosses; one of files on local
        disk does not when `local_handoff` is off."""
        config = {"{default}": {k: v.replace("gs-like", str(tmp_path)) for k, v in pattern.items()}}
        run_group(FULL, ["make"], memory_prefix, config, handoff_local_datasets=False)
        assert ("data/raw/<attempt>.json" in objects(memory_prefix)) is crosses


def make_table(n: int) -> Any:
    import pandas as pd

    return pd.DataFrame({"x": list(range(n)), "label": [f"r{i}" for i in range(n)]})


def fit(table: Any) -> Any:
    from sklearn.linear_model import LinearRegression

    return LinearRegression().fit(table[["x"]], 2 * table["x"] + 1)


def predict(model: Any, table: Any) -> list[float]:
    return [float(v) for v in model.predict(table[["x"]])]


def copy_table(table: Any) -> Any:
    return table.copy()


MODELS = pipeline(
    [
        node(make_table, "params:n", "table", name="make_table"),
        node(copy_table, "table", "table_copy", name="copy_table"),
        node(fit, "table", "model", name="fit"),
        node(predict, ["model", "table"], "predictions", name="predict"),
    ]
)


class TestLocalHandoffKeepsTheCatalogType:
    """With `local_handoff` on, a local-disk catalog dataset crosses in its own catalog type."""

    @pytest.fixture
    def local(self, tmp_path: Path) -> dict[str, Any]:
        return {
            "table": {
                "type": "pandas.ParquetDataset",
                "filepath": str(tmp_path / "table.parquet"),
                "save_args": {"compression": "gzip"},
            },
            "model": {
                "type": "pickle.PickleDataset",
                "filepath": str(tmp_path / "model.pickle"),
                "versioned": True,
            },
        }

    def test_parquet_entry_stays_parquet_through_the_prefix(
        self, memory_prefix: str, tmp_path: Path, local: dict[str, Any]
    ) -> None:
        import pandas as pd
        import pyarrow.parquet as pq

        run_group(MODELS, ["make_table"], memory_prefix, local)
        assert "data/table/<attempt>.parquet" in objects(memory_prefix)
        # The catalog's own save happens too, as with `kedro run` (lost with the pod on GKE,
        # there for `--shared-dir` replays and runs on one machine).
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "table.parquet"), make_table(4))
        store = HandoffStore(memory_prefix, task="inspect")
        (path,) = store.fs.find(store.layout.data_dir("table"))
        with store.fs.open(path, "rb") as file:
            parquet = pq.ParquetFile(file)
            assert parquet.metadata.row_group(0).column(0).compression == "GZIP"
            written = parquet.read().to_pandas()
        outputs = run_group(MODELS, ["copy_table"], memory_prefix, local)
        pd.testing.assert_frame_equal(outputs["table_copy"], make_table(4))
        pd.testing.assert_frame_equal(written, make_table(4))

    def test_versioned_pickle_entry_obeys_allow_pickle(
        self, memory_prefix: str, local: dict[str, Any]
    ) -> None:
        run_group(MODELS, ["make_table"], memory_prefix, local)
        with pytest.raises(ForbiddenFormatError, match=r"'model'.*pickle\.PickleDataset"):
            run_group(MODELS, ["fit"], memory_prefix, local, allow_pickle=False)
        assert [p for p in objects(memory_prefix) if "model" in p or "fit" in p] == []

    def test_versioned_pickle_entry_stays_pickle_and_predicts_the_same(
        self, memory_prefix: str, tmp_path: Path, local: dict[str, Any]
    ) -> None:
        run_group(MODELS, ["make_table"], memory_prefix, local)
        run_group(MODELS, ["fit"], memory_prefix, local)
        assert "data/model/<attempt>.pickle" in objects(memory_prefix)
        assert len(list((tmp_path / "model.pickle").iterdir())) == 1  # one version, saved
        outputs = run_group(MODELS, ["predict"], memory_prefix, local)
        assert outputs["predictions"] == pytest.approx(predict(fit(make_table(4)), make_table(4)))

    @pytest.mark.usefixtures("gcs_emulator")
    def test_on_gcs_the_parquet_entry_is_pinned_and_committed(self, local: dict[str, Any]) -> None:
        import pandas as pd

        prefix = f"gs://{BUCKET}/local-handoff/{uuid.uuid4().hex[:8]}"
        run_group(MODELS, ["make_table"], prefix, local)
        record = HandoffStore(prefix, task="c").read_record("table", producer_task="make_table")
        assert record.format == "catalog" and record.object.endswith(".parquet")
        assert isinstance(record.generation, int)
        outputs = run_group(MODELS, ["copy_table"], prefix, local)
        pd.testing.assert_frame_equal(outputs["table_copy"], make_table(4))


class TestRunnerErrors:
    def test_missing_prefix_says_how_to_set_it(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("KEDRO_GCS_BRIDGE_RUN_PREFIX", raising=False)
        runner = GCSRunner(full_pipeline=FULL)
        with pytest.raises(HandoffError, match="KEDRO_GCS_BRIDGE_RUN_PREFIX=file://"):
            runner.run(FULL.only_nodes("make"), DataCatalog.from_config({}))

    def test_consumer_before_producer_names_the_missing_dataset(self, memory_prefix: str) -> None:
        with pytest.raises(DatasetError, match=r"'features\.doubled', made by node 'double'"):
            run_group(FULL, ["total"], memory_prefix)


# --- the example project, one process per group ----------------------------------------------
@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("example") / "spaceflights"
    shutil.copytree(REPO / "examples" / "spaceflights", target)
    return target


def kedro(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "COLUMNS": "400",
        **(env or {}),
    }
    return subprocess.run(
        [str(KEDRO), *args],
        cwd=project,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def run_example_group(
    project: Path, group: str, prefix: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return kedro(
        project,
        "run",
        "--runner",
        "kedro_gcs_bridge.GCSRunner",
        "--nodes",
        ",".join(GROUPS[group]),
        env={"KEDRO_GCS_BRIDGE_RUN_PREFIX": prefix, "KEDRO_GCS_BRIDGE_TASK": group, **env},
    )


def said(result: subprocess.CompletedProcess[str]) -> str:
    """What the process printed, with line wrapping undone."""
    return " ".join((result.stdout + result.stderr).replace("│", " ").split())


def metrics(project: Path) -> dict[str, float]:
    return json.loads((project / "data" / "08_reporting" / "metrics.json").read_text())


@pytest.fixture(scope="module")
def in_process_metrics(project: Path) -> dict[str, float]:
    """What one plain `kedro run` (SequentialRunner, one process) computes."""
    result = kedro(project, "run")
    assert result.returncode == 0, result.stderr
    return metrics(project)


CROSSING = (
    "preprocessed_companies",
    "preprocessed_shuttles",
    "X_train",
    "X_test",
    "y_train",
    "y_test",
    "regressor",
    "training_metrics",
)


def records(prefix: str, names: tuple[str, ...] = CROSSING) -> dict[str, dict[str, Any]]:
    store = HandoffStore(prefix, task="inspect")
    return {name: store.read_record(name).to_json() for name in names}


@pytest.fixture(scope="module")
def upstream(project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run prefixes (file://) made once for the fault tests, each copied before a test writes:
    "raw" holds what the companies and shuttles groups committed, "split" that plus the split
    group's. (Readers find objects by the layout and the recorded object name, not by the
    recorded path, so a copied run prefix reads as the original.)"""
    root = tmp_path_factory.mktemp("upstream")
    for group in ("companies", "shuttles"):
        assert run_example_group(project, group, (root / "raw").as_uri()).returncode == 0
    shutil.copytree(root / "raw", root / "split")
    assert run_example_group(project, "split", (root / "split").as_uri()).returncode == 0
    return {"raw": root / "raw", "split": root / "split"}


def copied(upstream: Path, target: Path) -> str:
    """A run prefix holding a copy of `upstream`'s objects."""
    shutil.copytree(upstream, target)
    return target.as_uri()


@pytest.fixture
def example_prefix(gcs_emulator: str) -> str:
    """A run prefix on the emulator bucket. (Groups in separate processes over a file:// prefix
    are what every replay runs: tests/dag/test_replay.py compares them with one process.)"""
    return f"gs://{BUCKET}/kedro-gcs-bridge/spaceflights/{uuid.uuid4().hex}"


@pytest.mark.slow
class TestExampleProject:
    def test_groups_in_separate_processes_match_one_process(
        self, project: Path, in_process_metrics: dict[str, float], example_prefix: str
    ) -> None:
        (project / "data" / "08_reporting" / "metrics.json").unlink()
        for group in GROUPS:
            result = run_example_group(project, group, example_prefix)
            assert result.returncode == 0, f"{group}:\n{result.stderr[-3000:]}"
        assert metrics(project) == in_process_metrics
        formats = {
            name: record["extra"].get("catalog", {}).get("type", record["format"])
            for name, record in records(example_prefix).items()
        }
        # Local-disk catalog datasets cross in their own catalog type (local_handoff).
        assert formats == {
            "preprocessed_companies": "pandas.ParquetDataset",
            "preprocessed_shuttles": "pandas.ParquetDataset",
            "X_train": "feather",
            "X_test": "feather",
            "y_train": "feather",
            "y_test": "feather",
            "regressor": "pickle.PickleDataset",
            "training_metrics": "json",
        }
        crossed = {p.split("/")[1] for p in objects(example_prefix) if p.startswith("data/")}
        # model_input_table stays inside the split pod; metrics is a catalog dataset.
        assert crossed == set(formats)
        manifests = {p for p in objects(example_prefix) if p.startswith("manifests/")}
        assert manifests == {f"manifests/{group}.json" for group in GROUPS}

    def test_consumer_started_before_its_producer_fails_clearly(
        self, project: Path, tmp_path: Path
    ) -> None:
        prefix = (tmp_path / "early").as_uri()
        result = run_example_group(project, "train_model_node", prefix)
        assert result.returncode != 0
        assert "made by node 'split_data_node', is not under the run prefix" in said(result)
        assert "no manifest" in said(result)

    def test_truncated_handoff_object_fails_the_consumer(
        self, project: Path, tmp_path: Path, upstream: dict[str, Path]
    ) -> None:
        prefix = copied(upstream["split"], tmp_path / "truncated")
        (target,) = (tmp_path / "truncated" / "data" / "X_train").glob("a1-*.feather")
        target.write_bytes(target.read_bytes()[:100])
        result = run_example_group(project, "train_model_node", prefix)
        assert result.returncode != 0
        assert f"X_train/{target.name} of dataset 'X_train' does not match its record" in said(
            result
        )

    def test_pickle_forbidden_fails_naming_the_dataset(
        self, project: Path, tmp_path: Path, upstream: dict[str, Path]
    ) -> None:
        prefix = copied(upstream["split"], tmp_path / "nopickle")
        result = run_example_group(
            project, "train_model_node", prefix, KEDRO_GCS_BRIDGE_ALLOW_PICKLE="false"
        )
        assert result.returncode != 0
        assert "dataset 'regressor' is a pickle.PickleDataset" in said(result)
        assert not (tmp_path / "nopickle" / "data" / "regressor").exists()

    def test_group_killed_mid_save_and_rerun_gives_identical_outputs(
        self, project: Path, tmp_path: Path, upstream: dict[str, Path]
    ) -> None:
        clean = upstream["split"].as_uri()  # read only: the split group's reference outputs
        killed = copied(upstream["raw"], tmp_path / "killed")

        env = {
            **os.environ,
            "KEDRO_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "1",
            "KEDRO_GCS_BRIDGE_RUN_PREFIX": killed,
            "KEDRO_GCS_BRIDGE_TASK": "split",
        }
        process = subprocess.Popen(
            [
                str(KEDRO),
                "run",
                "--runner",
                "kedro_gcs_bridge.GCSRunner",
                "--nodes",
                ",".join(GROUPS["split"]),
            ],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        data = tmp_path / "killed" / "data"
        deadline = time.monotonic() + 120

        def uncommitted() -> list[Path]:
            return [p for p in data.glob("*/a*-*.*") if p.parent.name in split_outputs]

        split_outputs = ("X_train", "X_test", "y_train", "y_test")
        while not uncommitted() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL  # killed while it ran, not after it ended
        killed_objects = uncommitted()
        assert killed_objects, "the kill came before the group wrote an object of its own"
        assert not (tmp_path / "killed" / "manifests" / "split.json").exists()

        assert run_example_group(project, "split", killed).returncode == 0
        after_retry, reference = records(killed, split_outputs), records(clean, split_outputs)
        for name in split_outputs:
            assert after_retry[name]["crc32c"] == reference[name]["crc32c"], name
        # The killed attempt's objects are never what the commit names.
        named = {record["object"] for record in after_retry.values()}
        assert named.isdisjoint(p.name for p in killed_objects)


def test_a_declared_dataset_replaced_for_the_handoff_is_not_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Kedro warns "Replacing dataset" for each catalog entry that crosses pods; the runner
    replaces them on purpose, so that warning is dropped there, and only there."""
    from kedro.io import DataCatalog, MemoryDataset

    from kedro_gcs_bridge.pod.runner import _replacing_quietly

    catalog = DataCatalog({"a": MemoryDataset(1), "b": MemoryDataset(2)})
    with caplog.at_level("WARNING", logger="kedro.io.data_catalog"):
        with _replacing_quietly():
            catalog["a"] = MemoryDataset(3)
        catalog["b"] = MemoryDataset(4)
    said = [record.getMessage() for record in caplog.records]
    assert said == ["Replacing dataset 'b'"]
