"""Where the catalog keeps a dataset: gs:// datasets are never reported as local disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kedro.io import DataCatalog, MemoryDataset, Version
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import CSVDataset, ParquetDataset
from kedro_datasets.pickle import PickleDataset

from kedro_gcs_bridge.planning.storage import MEMORY, DatasetLocation, Where
from kedro_gcs_bridge.pod.catalog import catalog_locations, local_path, location_of


@pytest.fixture(autouse=True)
def _offline_gcs(monkeypatch: pytest.MonkeyPatch) -> None:
    """gcsfs takes anonymous credentials against an emulator: creating a dataset stays local."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


class TestCreatedDatasets:
    @pytest.mark.parametrize(
        ("make", "url", "versioned"),
        [
            (lambda u: ParquetDataset(filepath=u), "gs://acme-bucket/models/x.parquet", False),
            (
                lambda u: PickleDataset(filepath=u, version=Version(None, None)),
                "gs://acme-bucket/models/regressor.pickle",
                True,
            ),
            (lambda u: CSVDataset(filepath=u), "gcs://acme-bucket/raw/companies.csv", False),
        ],
        ids=["parquet", "versioned-pickle", "gcs-scheme"],
    )
    def test_gcs_is_never_local(
        self, make: Callable[[str], Any], url: str, versioned: bool
    ) -> None:
        dataset = make(url)
        # `_describe()` says `acme-bucket/...`, which reads like a relative local path.
        assert "://" not in str(dataset._describe()["filepath"])
        assert local_path(dataset) is None
        assert location_of(dataset) == DatasetLocation(Where.REMOTE, url, versioned)

    def test_local_file_is_local(self, tmp_path: Path) -> None:
        dataset = JSONDataset(filepath=str(tmp_path / "m.json"))
        assert location_of(dataset) == DatasetLocation(Where.LOCAL, str(tmp_path / "m.json"))

    def test_memory(self) -> None:
        assert location_of(MemoryDataset()) == MEMORY
        assert location_of(None) == MEMORY


class TestFromConfig:
    CONFIG: dict[str, Any] = {
        "model": {
            "type": "pickle.PickleDataset",
            "filepath": "gs://acme-bucket/models/regressor.pickle",
            "versioned": True,
        },
        "companies": {"type": "pandas.CSVDataset", "filepath": "data/01_raw/companies.csv"},
        "cached": {
            "type": "CachedDataset",
            "dataset": {"type": "pandas.CSVDataset", "filepath": "file://data/c.csv"},
        },
        "{name}_features": {
            "type": "pandas.ParquetDataset",
            "filepath": "gs://acme-bucket/features/{name}.parquet",
        },
        "{name}_local": {"type": "pandas.ParquetDataset", "filepath": "data/{name}.parquet"},
        "scratch": {"type": "MemoryDataset"},
    }

    def test_every_kind_with_patterns_resolved(self) -> None:
        catalog = DataCatalog.from_config(self.CONFIG)
        names = ["model", "companies", "cached", "a_features", "b_local", "scratch", "unknown"]
        assert catalog_locations(catalog, names) == {
            "model": DatasetLocation(
                Where.REMOTE, "gs://acme-bucket/models/regressor.pickle", versioned=True
            ),
            "companies": DatasetLocation(Where.LOCAL, "data/01_raw/companies.csv"),
            "cached": DatasetLocation(Where.LOCAL, "data/c.csv"),
            "a_features": DatasetLocation(Where.REMOTE, "gs://acme-bucket/features/a.parquet"),
            "b_local": DatasetLocation(Where.LOCAL, "data/b.parquet"),
            "scratch": MEMORY,
            "unknown": MEMORY,
        }

    def test_reading_locations_creates_no_dataset(self) -> None:
        catalog = DataCatalog.from_config(self.CONFIG)
        catalog_locations(catalog, ["model", "a_features"])
        assert "model" not in catalog._datasets  # still lazy: no file system, no credentials

    def test_created_datasets_are_read_too(self) -> None:
        catalog = DataCatalog.from_config(self.CONFIG)
        catalog.get("model")
        assert catalog_locations(catalog, ["model"])["model"].where is Where.REMOTE
