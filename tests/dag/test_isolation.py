"""Replay's header says exactly what the image leaves out: the folders wholly left out (an
empty placeholder such as `.gitkeep` does not count as content), else the files."""

from __future__ import annotations

from pathlib import Path

import pytest

from kedro_gcs_bridge.dag.isolation import ImageContents

KEPT = (
    "conf/base/catalog.yml",
    "conf/local/.gitkeep",
    "data/01_raw/.gitkeep",
    "src/p/nodes.py",
)


@pytest.mark.parametrize(
    ("kept", "left_out", "said"),
    [
        pytest.param(
            KEPT,
            ("conf/local/parameters.yml", "conf/local/catalog.yml", "data/01_raw/a.csv"),
            "without conf/local, data (3 files)",
            id="conf-local-not-all-conf",
        ),
        pytest.param(
            (*KEPT, "data/01_raw/b.csv"),
            ("data/01_raw/a.csv",),
            "without data/01_raw/a.csv (1 files)",
            id="one-file-of-a-kept-folder",
        ),
        pytest.param(KEPT, ("info.log",), "without info.log (1 files)", id="a-root-file"),
    ],
)
def test_the_header_names_what_is_left_out(
    kept: tuple[str, ...], left_out: tuple[str, ...], said: str
) -> None:
    contents = ImageContents(Path("p"), kept, left_out, "docker/Dockerfile.dockerignore")
    assert said in contents.describe()


def test_a_failed_tasks_log_naming_a_left_out_file_gets_the_remedy() -> None:
    left_out = ("data/01_raw/a.csv", "conf/local/credentials.yml")
    contents = ImageContents(Path("p"), KEPT, left_out, "docker/Dockerfile.dockerignore")
    log = "DatasetError: Failed while loading data from /tmp/t/project/data/01_raw/a.csv"
    assert contents.lacked_in(log) == ["data/01_raw/a.csv"]
    remedy = contents.remedy(log)
    assert remedy is not None and remedy.startswith(
        "the image leaves out data/01_raw/a.csv (docker/Dockerfile.dockerignore)"
    )
    assert contents.remedy("ZeroDivisionError: division by zero") is None
    # The same relative path inside a gs:// URL is a dataset already on GCS, not the image's.
    on_gcs = "DatasetError: Failed while loading data from gs://b/sf/data/01_raw/a.csv"
    assert contents.lacked_in(on_gcs) == []
