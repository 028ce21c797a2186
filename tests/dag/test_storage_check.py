"""The storage plan from a real Kedro pipeline, catalog and project folder (in-process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline, node

from kedro_gcs_bridge.dag.dagfile import build_dag_file
from kedro_gcs_bridge.dag.storage_check import read_image_filter, storage_plan_for
from kedro_gcs_bridge.planning.storage import StorageClass

DEPLOY = {
    "gcp_project_id": "p",
    "gcp_region": "europe-west1",
    "gcp_gke_cluster_name": "c",
    "docker_image": "img",
    "gcs_bridge_root": "gs://b/runs",
}


def _identity(x: Any) -> Any:
    return x


PREP = Pipeline([node(_identity, "raw", "table", name="prep")])
TRAIN = Pipeline([node(_identity, "table", "model", name="train")])
PIPELINES = {"prep": PREP, "train": TRAIN, "__default__": PREP + TRAIN}


def _storage(project: Path, name: str, catalog: dict[str, Any], **config: Any) -> Any:
    pipeline = PIPELINES[name]
    variables = {
        **DEPLOY,
        **config,
        "pipeline": pipeline,
        "pipeline_name": name,
        "env": "local",
        "package_name": "proj",
    }
    dag = build_dag_file(variables, str(project))
    assert dag.error is None, dag.error
    return storage_plan_for(dag, pipeline, PIPELINES, DataCatalog.from_config(catalog), project)


def _csv(path: str) -> dict[str, str]:
    return {"type": "pandas.CSVDataset", "filepath": path}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "data/01_raw").mkdir(parents=True)
    (tmp_path / "data/01_raw/raw.csv").write_text("a\n1\n")
    return tmp_path


class TestImage:
    def test_without_ignore_file_a_project_file_is_in_the_image(self, project: Path) -> None:
        plan = _storage(project, "prep", {"raw": _csv(str(project / "data/01_raw/raw.csv"))})
        assert {e.dataset: e.storage_class for e in plan.entries} == {
            "raw": StorageClass.RAW_IN_IMAGE
        }
        assert plan.entries[0].location.path == "data/01_raw/raw.csv"  # relative to project

    def test_the_dockerfile_ignore_file_wins_over_the_root_one(self, project: Path) -> None:
        (project / ".dockerignore").write_text("nothing\n")
        (project / "docker").mkdir()
        (project / "docker/Dockerfile.dockerignore").write_text("data/**\n")
        assert read_image_filter(project).source == "docker/Dockerfile.dockerignore"
        plan = _storage(project, "prep", {"raw": _csv("data/01_raw/raw.csv")})
        assert plan.errors[0].startswith(
            "raw input 'raw' is read from local disk (data/01_raw/raw.csv) by task(s) prep, "
            "but the image does not hold it (docker/Dockerfile.dockerignore leaves "
            "data/01_raw/raw.csv out of the build context)."
        )

    def test_a_file_that_is_not_there_is_not_in_the_image(self, project: Path) -> None:
        plan = _storage(project, "prep", {"raw": _csv("data/01_raw/other.csv")})
        assert "(data/01_raw/other.csv does not exist in the project folder)" in plan.errors[0]


class TestOtherPipelines:
    def test_input_made_by_another_pipelines_dag(self, project: Path) -> None:
        plan = _storage(project, "train", {"table": _csv("data/03_primary/table.csv")})
        # __default__ holds train's nodes too: only the pipeline that is another DAG is named.
        assert plan.errors[0].startswith(
            "input 'table' is saved on local disk (data/03_primary/table.csv) by the DAG of "
            "pipeline(s) prep: that pod's disk is gone when task(s) train of this DAG read it."
        )

    def test_the_same_dataset_inside_the_whole_pipeline_crosses_pods(self, project: Path) -> None:
        catalog = {"raw": _csv("data/01_raw/raw.csv"), "table": _csv("data/03/table.csv")}
        plan = _storage(project, "__default__", catalog)
        classes = {e.dataset: e.storage_class for e in plan.entries}
        assert classes["table"] is StorageClass.LOCAL_HANDOFF
        assert plan.errors == ()

    def test_local_backend_has_no_storage_plan(self, project: Path) -> None:
        catalog = {"table": _csv("data/03/table.csv")}
        assert _storage(project, "train", catalog, pod_backend="local") is None

    def test_a_versioned_entry_is_known_as_versioned(self, project: Path) -> None:
        catalog = {
            "raw": _csv("data/01_raw/raw.csv"),
            "table": {**_csv("data/03/table.csv"), "versioned": True},
        }
        plan = _storage(project, "__default__", catalog)
        (entry,) = [e for e in plan.entries if e.dataset == "table"]
        assert entry.location.versioned
        assert plan.errors == () and "versioned dataset 'table'" in plan.warnings[0]
