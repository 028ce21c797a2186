"""Replay's raw inputs on a GCS emulator (dag/seed.py): seeded from the project's local files
mapped to their gs:// catalog paths, and missing ones named before any task starts."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from kedro_gcs_bridge.dag.seed import (
    gcs_filesystem,
    missing,
    missing_error,
    remote_inputs,
    seed,
)
from kedro_gcs_bridge.planning.storage import MEMORY, DatasetLocation, Where

pytestmark = pytest.mark.usefixtures("gcs_emulator")


def local(path: str) -> DatasetLocation:
    return DatasetLocation(Where.LOCAL, path)


def gcs(path: str) -> DatasetLocation:
    return DatasetLocation(Where.REMOTE, path)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "data" / "01_raw" / "parts").mkdir(parents=True)
    (tmp_path / "data" / "01_raw" / "companies.csv").write_text("id\n1\n")
    (tmp_path / "data" / "01_raw" / "parts" / "a.csv").write_text("x\n1\n")
    (tmp_path / "data" / "01_raw" / "parts" / "b.csv").write_text("x\n2\n")
    return tmp_path


def test_inputs_are_seeded_from_the_projects_files(project: Path) -> None:
    """A file and a folder (a PartitionedDataset) go to the gs:// paths the DAG's env names;
    a bucket the emulator lacks is made."""
    bucket = f"seeded-{uuid.uuid4().hex[:8]}"
    remote = {
        "companies": gcs(f"gs://{bucket}/sf/data/01_raw/companies.csv"),
        "parts": gcs(f"gs://{bucket}/sf/data/01_raw/parts/"),
        "in_memory": MEMORY,
        "on_disk": local("data/other.csv"),
    }
    where = {"companies": local("data/01_raw/companies.csv"), "parts": local("data/01_raw/parts")}
    inputs = remote_inputs(remote, where, project)
    assert [item.dataset for item in inputs] == ["companies", "parts"]
    assert [item.dataset for item in missing(inputs)] == ["companies", "parts"]
    lines = seed(inputs)
    assert len(lines) == 2 and lines[0].startswith("seeded companies: ")
    assert missing(inputs) == []

    fs = gcs_filesystem()
    assert fs.cat(f"{bucket}/sf/data/01_raw/companies.csv") == b"id\n1\n"
    assert sorted(p.rsplit("/", 1)[1] for p in fs.find(f"{bucket}/sf/data/01_raw/parts")) == [
        "a.csv",
        "b.csv",
    ]


def test_a_missing_input_is_named_with_its_bucket_and_object(project: Path) -> None:
    remote = {
        "companies": gcs("gs://example-bucket/sf/companies.csv"),
        "reviews": gcs("gs://example-bucket/sf/reviews.csv"),
    }
    where = {"companies": local("data/01_raw/companies.csv"), "reviews": local("nowhere.csv")}
    inputs = remote_inputs(remote, where, project)
    absent = missing(inputs)
    assert [item.dataset for item in absent] == ["companies", "reviews"]
    message = str(missing_error(absent[:1], "http://127.0.0.1:1", seeded=False))
    assert "'companies' (bucket example-bucket, object sf/companies.csv)" in message
    assert "pass --seed" in message and "\n" not in message
    message = str(missing_error(absent, "http://127.0.0.1:1", seeded=True))
    assert "no local file of reviews" in message and "STORAGE_EMULATOR_HOST" in message


def test_an_input_with_no_local_file_points_to_the_dag_that_makes_it() -> None:
    from kedro_gcs_bridge.dag.seed import RemoteInput, missing_error

    absent = [RemoteInput("model_input_table", "gs://b/primary/t.parquet", None)]
    message = str(missing_error(absent, "http://127.0.0.1:9023", seeded=True))
    assert "'model_input_table' (bucket b, object primary/t.parquet)" in message
    assert "replay first the DAG of the pipeline that makes them" in message
