"""Variants never collide: the GKE, local-backend and grouping-off DAGs of one pipeline,
generated into one folder by the real `kedro airflow create`, load as three DAGs."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import KEDRO, TEMPLATE, Job, kedro_env, make_project

from kedro_gcs_bridge.dag.variants import kedro_airflow_file_name, variant_file_name

VARIANTS = {
    # params -> (file name, dag_id)
    "": ("spaceflights_dag.py", "spaceflights__default__local"),
    "pod_backend=local": ("spaceflights_local_dag.py", "spaceflights__default__local_local"),
    "grouping=false": ("spaceflights_ungrouped_dag.py", "spaceflights__default__local_ungrouped"),
}


def _create(project: Path, params: str) -> subprocess.CompletedProcess[str]:
    args = [str(KEDRO), "airflow", "create", "-j", str(TEMPLATE), "-t", "dags"]
    # The example keeps its data on local disk, which the GKE DAG refuses by default.
    params = ",".join(filter(None, (params, "local_disk=warn")))
    return subprocess.run(
        [*args, "--params", params],
        cwd=project,
        env=kedro_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def variants_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """The GKE DAG written first, then the two variants into the same folder; the GKE file's
    bytes right after it was written."""
    project = make_project(tmp_path_factory.mktemp("variants"), "spaceflights", Job(()))
    written: dict[str, bytes] = {}
    for params, (name, _) in VARIANTS.items():
        result = _create(project, params)
        assert result.returncode == 0, result.stderr[-3000:]
        written[name] = (project / "dags" / name).read_bytes()
    return project / "dags", written


class TestVariants:
    def test_three_variants_load_as_three_dags(
        self,
        variants_folder: tuple[Path, dict[str, bytes]],
        load_dagbag: Callable[[Path], Any],
    ) -> None:
        folder, written = variants_folder
        assert sorted(path.name for path in folder.iterdir() if path.suffix == ".py") == sorted(
            name for name, _ in VARIANTS.values()
        )
        bag = load_dagbag(folder)
        assert not bag.import_errors, bag.import_errors
        assert sorted(bag.dags) == sorted(dag_id for _, dag_id in VARIANTS.values())
        for name, dag_id in VARIANTS.values():
            assert Path(bag.dags[dag_id].fileloc).name == name
        # Writing the variants never touched the GKE DAG file of the base name.
        assert (folder / "spaceflights_dag.py").read_bytes() == written["spaceflights_dag.py"]
        assert not [path.name for path in folder.iterdir() if "aside" in path.name]

    def test_each_docstring_says_what_the_variant_is(
        self, variants_folder: tuple[Path, dict[str, bytes]]
    ) -> None:
        folder, _ = variants_folder
        docs = {
            name: (folder / name).read_text("utf-8").split('"""')[1]
            for name, _ in VARIANTS.values()
        }
        assert "in a GKE Autopilot pod" in docs["spaceflights_dag.py"]
        local = docs["spaceflights_local_dag.py"]
        assert "Local variant (`pod_backend: local`)" in local
        assert "no GKE pod is started" in local and "in a GKE Autopilot pod" not in local
        ungrouped = docs["spaceflights_ungrouped_dag.py"]
        assert "Ungrouped variant (`grouping: false`): one task per Kedro node" in ungrouped
        assert "in a GKE Autopilot pod" in ungrouped

    def test_a_failed_variant_create_keeps_the_gke_file(
        self, variants_folder: tuple[Path, dict[str, bytes]]
    ) -> None:
        folder, written = variants_folder
        result = _create(folder.parent, "pod_backend=local,retries=-1")
        assert result.returncode != 0
        assert (folder / "spaceflights_dag.py").read_bytes() == written["spaceflights_dag.py"]
        assert not [path.name for path in folder.iterdir() if "aside" in path.name]


@pytest.mark.parametrize(
    ("package", "env", "pipeline", "suffix", "expected"),
    [
        ("spaceflights", "local", "__default__", "_local", "spaceflights_local_dag.py"),
        ("spaceflights", "prod", "__default__", "_ungrouped", "spaceflights_prod_ungrouped_dag.py"),
        ("pkg", "local", "ds", "_local_ungrouped", "pkg_ds_local_ungrouped_dag.py"),
    ],
)
def test_variant_file_names(
    package: str, env: str, pipeline: str, suffix: str, expected: str
) -> None:
    assert variant_file_name(kedro_airflow_file_name(package, env, pipeline), suffix) == expected
