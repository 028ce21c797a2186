"""The road of a project shaped unlike the starters (issue 29), through the real `kedro` CLI:
nested namespaces (`a`, `a.base`, `a.candidate1`) grouped by `namespace=` / `namespace:`,
parameters per namespace, a `{namespace}.scored` factory, its catalog and parameters in
conf/local, its own docker/Dockerfile setting KEDRO_ENV, which its pipeline registry reads.

init keeps and checks the Dockerfile; validate refuses the env the image leaves out; `catalog`
writes an env the image holds; validate then names each parameter that env lacks; with the
parameters copied it passes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import EXAMPLE, KEDRO, kedro_env

pytestmark = pytest.mark.slow

_DEPLOYMENT = (EXAMPLE / "conf/base/airflow.yml").read_text(encoding="utf-8")

FILES = {
    "pyproject.toml": """[project]
name = "nested"
version = "0.1.0"
dependencies = ["kedro", "kedro-datasets[pandas-csvdataset]", "pandas"]

[tool.kedro]
package_name = "nested"
project_name = "nested"
kedro_init_version = "1.7.0"
source_dir = "src"
""",
    "src/nested/__init__.py": '"""A project with nested namespaces."""\n',
    "src/nested/settings.py": (
        'CONFIG_LOADER_ARGS = {"base_env": "base", "default_run_env": "local"}\n'
    ),
    "src/nested/pipeline_registry.py": '''"""Variants per namespace (fewer under KEDRO_ENV=prod)."""

import os

from kedro.pipeline import Pipeline, node, pipeline


def prep(raw):
    return raw


def fit(table, options):
    return table.assign(k=options["k"])


def score(fitted, options):
    return fitted.assign(score=fitted["x"] * options["k"])


def _variant(namespace):
    nodes = [
        node(fit, ["table", "params:model_options"], "fitted", name="fit"),
        node(score, ["fitted", "params:model_options"], "scored", name="score"),
    ]
    return pipeline(nodes, namespace=namespace, inputs={"table"})


def register_pipelines():
    names = ["a.base"] if os.environ.get("KEDRO_ENV") == "prod" else ["a.base", "a.candidate1"]
    first = pipeline(
        [node(prep, "raw_table", "table", name="prep")],
        namespace="a",
        inputs={"raw_table"},
        outputs={"table"},
    )
    whole = sum((_variant(name) for name in names), first)
    return {"__default__": whole}
''',
    "conf/base/airflow.yml": _DEPLOYMENT
    + """  groups:
    a: ["namespace=a"]
    a_base: ["namespace:a.base"]
    a_candidate1: ["namespace:a.candidate1"]
""",
    "conf/local/catalog.yml": """raw_table:
  type: pandas.CSVDataset
  filepath: data/01_raw/raw.csv
"{namespace}.scored":
  type: pandas.CSVDataset
  filepath: data/07_model_output/{namespace}.scored.csv
""",
    "conf/local/parameters.yml": """a:
  base:
    model_options: {k: 1}
  candidate1:
    model_options: {k: 2}
""",
    "data/01_raw/raw.csv": "x\n1\n2\n",
    "docker/Dockerfile": """FROM python:3.11-slim
ENV KEDRO_ENV=prod
WORKDIR /app
COPY pyproject.toml .
RUN pip install kedro kedro-datasets pandas
COPY . .
CMD ["kedro", "run"]
""",
}


def _kedro(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = kedro_env() | {
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",  # nothing reads gs:// here
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }
    env.pop("KEDRO_ENV", None)
    return subprocess.run(
        [str(KEDRO), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _said(done: subprocess.CompletedProcess[str]) -> str:
    return " ".join(f"{done.stdout}\n{done.stderr}".split())


def test_init_validate_catalog_validate(tmp_path: Path) -> None:
    project = tmp_path / "nested"
    for relative, text in FILES.items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(text, encoding="utf-8")

    init = _kedro(project, "gcs-bridge", "init")
    assert init.returncode == 0, _said(init)
    assert "skipped docker/Dockerfile (exists; --force overwrites it)" in init.stdout
    assert "warning: docker/Dockerfile does not install kedro-gcs-bridge" in init.stdout
    said = _said(init)
    assert "docker/Dockerfile sets ENV KEDRO_ENV=prod" in said
    assert "src/nested/pipeline_registry.py" not in said  # KEDRO_ENV has its own reason

    refused = _kedro(project, "gcs-bridge", "validate")
    assert refused.returncode == 1, _said(refused)
    said = _said(refused)
    assert "Error: The DAG runs every pod with `--env local`" in said
    assert "conf/local/catalog.yml, conf/local/parameters.yml" in said
    assert "'conf/local/**'" in said

    moved = _kedro(project, "gcs-bridge", "catalog", "--root", "gs://bucket/nested")
    assert moved.returncode == 0, _said(moved)
    catalog = (project / "conf/gcs/catalog.yml").read_text(encoding="utf-8")
    assert "gs://bucket/nested/data/07_model_output/{namespace}.scored.csv" in catalog

    lacking = _kedro(project, "gcs-bridge", "validate", "-e", "gcs")
    assert lacking.returncode == 1, _said(lacking)
    errors = [line for line in lacking.stdout.splitlines() if "does not define" in line]
    assert len(errors) == 2, _said(lacking)
    assert errors[0].startswith(
        "__default__: task 'a_base' reads params:a.base.model_options, which env 'gcs' does "
        "not define (conf/local/parameters.yml does"
    ), errors[0]
    assert "in 2 groups" not in lacking.stdout and "both take" not in lacking.stdout

    shutil.copy(project / "conf/local/parameters.yml", project / "conf/gcs/parameters.yml")
    valid = _kedro(project, "gcs-bridge", "validate", "-e", "gcs")
    assert valid.returncode == 0, _said(valid)
    assert "__default__: ok, 3 task(s)" in valid.stdout
    assert "warning: docker/Dockerfile sets ENV KEDRO_ENV=prod" in valid.stdout
