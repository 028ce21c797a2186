"""The road of a project shaped unlike the starters (issue 29), through the real `kedro` CLI:
nested namespaces (`a`, `a.base`, `a.candidate1`) grouped by `namespace=` / `namespace:`,
parameters per namespace, a `{namespace}.scored` factory, its catalog and parameters in
conf/local, its own docker/Dockerfile setting KEDRO_ENV, which its pipeline registry reads.

init keeps and checks the Dockerfile; validate refuses the env the image leaves out; `catalog`
writes an env the image holds; validate then names each parameter that env lacks; with the
parameters copied it passes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from _gcs_emulator import BUCKET
from conftest import EXAMPLE, KEDRO, RUN_ID, kedro_env

from kedro_gcs_bridge.dag.seed import gcs_filesystem
from kedro_gcs_bridge.pod.store import HandoffStore

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("gcs_emulator")]
#: What `kedro run` writes that the road must reproduce byte for byte (raw inputs aside).
OUTPUTS = (
    "data/02_intermediate/parts/p1.csv",
    "data/02_intermediate/parts/p2.csv",
    "data/07_model_output/a.base.scored.csv",
    "data/07_model_output/a.candidate1.scored.csv",
    "data/08_reporting/a/base.csv",
    "data/08_reporting/a/candidate1.csv",
)
ROOT = f"gs://{BUCKET}/nested"

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


def gather(partitions):
    parts = {name: load().assign(y=lambda df: df["x"] * 10) for name, load in partitions.items()}
    return parts, len(parts)


def fit(table, parts, count, options):
    total = sum(int(load()["y"].sum()) for load in parts.values())
    return table.assign(k=options["k"], total=total, count=count)


def score(fitted, options):
    return fitted.assign(score=fitted["x"] * options["k"])


def report(fitted):
    return fitted[["x", "total"]]


def _variant(namespace):
    nodes = [
        node(fit, ["table", "parts_read", "part_count", "params:model_options"], "fitted"),
        node(score, ["fitted", "params:model_options"], "scored", name="score"),
        node(report, "fitted", "report", name="report"),
    ]
    shared = {"table": "table", "parts_read": "a.parts_read", "part_count": "a.part_count"}
    return pipeline(nodes, namespace=namespace, inputs=shared)


def register_pipelines():
    names = ["a.base"] if os.environ.get("KEDRO_ENV") == "prod" else ["a.base", "a.candidate1"]
    first = pipeline(
        [
            node(prep, "raw_table", "table", name="prep"),
            node(gather, "raw_parts", ["parts_written", "part_count"], name="gather"),
        ],
        namespace="a",
        inputs={"raw_table", "raw_parts"},
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
raw_parts:
  type: partitions.PartitionedDataset
  path: data/01_raw/parts
  dataset: pandas.CSVDataset
  filename_suffix: .csv
a.parts_written:
  type: partitions.PartitionedDataset
  path: data/02_intermediate/parts
  dataset: pandas.CSVDataset
  filename_suffix: .csv
a.parts_read:
  type: partitions.PartitionedDataset
  path: data/02_intermediate/parts
  dataset: pandas.CSVDataset
  filename_suffix: .csv
"{namespace}.scored":
  type: pandas.CSVDataset
  filepath: data/07_model_output/{namespace}.scored.csv
"{namespace}.{variant}.report":
  type: pandas.CSVDataset
  filepath: data/08_reporting/{namespace}/{variant}.csv
""",
    "conf/local/parameters.yml": """a:
  base:
    model_options: {k: 1}
  candidate1:
    model_options: {k: 2}
""",
    "data/01_raw/raw.csv": "x\n1\n2\n",
    "data/01_raw/parts/p1.csv": "x\n1\n2\n",
    "data/01_raw/parts/p2.csv": "x\n3\n",
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
        # The module's GCS emulator (the replay hands data through it, "yours").
        "STORAGE_EMULATOR_HOST": os.environ["STORAGE_EMULATOR_HOST"],
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


def _plain_run(project: Path) -> dict[str, bytes]:
    """A plain `kedro run` of a copy of the project (its default env, conf/local): the
    bytes of each of OUTPUTS."""
    plain = project.with_name("plain")
    shutil.copytree(project, plain)
    done = _kedro(plain, "run")
    assert done.returncode == 0, _said(done)
    return {relative: (plain / relative).read_bytes() for relative in OUTPUTS}


def test_the_road_from_init_to_a_replay_that_matches_kedro_run(tmp_path: Path) -> None:
    """init -> validate (refused) -> catalog --root -> validate -e gcs (parameters named) ->
    parameters copied -> validate -e gcs -> create -e gcs -> replay --emulator --seed: every
    output on the emulator is byte for byte what a plain `kedro run` writes."""
    project = tmp_path / "nested"
    for relative, text in FILES.items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(text, encoding="utf-8")
    expected = _plain_run(project)

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

    moved = _kedro(project, "gcs-bridge", "catalog", "--root", ROOT, "-e", "gcs")
    assert moved.returncode == 0, _said(moved)
    catalog = (project / "conf/gcs/catalog.yml").read_text(encoding="utf-8")
    assert f"{ROOT}/data/07_model_output/{{namespace}}.scored.csv" in catalog
    assert f"{ROOT}/data/08_reporting/{{namespace}}/{{variant}}.csv" in catalog
    assert catalog.count(f"{ROOT}/data/02_intermediate/parts") == 2  # written, then read

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

    created = _kedro(project, "airflow", "create", "-j", "templates/gcs_bridge.j2", "-e", "gcs")
    assert created.returncode == 0, _said(created)
    (dag,) = (project / "airflow_dags").glob("*.py")

    assert "docker/Dockerfile sets ENV KEDRO_ENV=prod" in _said(created), _said(created)

    # Replay runs each task with the image's ENV, as a pod would: under KEDRO_ENV=prod the
    # registry builds a.base only, so the a_candidate1 pod finds none of its nodes.
    replay = ["gcs-bridge", "replay", str(dag), "--emulator", "--seed"]
    as_in_pods = _kedro(project, *replay, "--run-id", f"{RUN_ID}-prod")
    assert as_in_pods.returncode == 1, _said(as_in_pods)
    said = _said(as_in_pods)
    assert "image ENV (docker/Dockerfile): KEDRO_ENV=prod" in said
    assert "a_candidate1: failed" in said and "a_base: success" in said
    assert "Pipeline does not contain nodes named" in said

    # The warning's remedy: the ENV out of the image (the env is the DAG's `-e`).
    dockerfile = project / "docker/Dockerfile"
    lines = dockerfile.read_text(encoding="utf-8").splitlines(keepends=True)
    dockerfile.write_text("".join(line for line in lines if "KEDRO_ENV" not in line))
    replayed = _kedro(project, *replay, "--run-id", RUN_ID)
    assert replayed.returncode == 0, _said(replayed)
    out = replayed.stdout
    assert "seeded raw_parts: " in out and "seeded raw_table: " in out
    assert "parts_written" not in out.split("Replaying")[0]  # made by the DAG, never seeded
    assert "[3/3]" in out and "image ENV" not in out
    fs = gcs_filesystem()
    assert {relative: fs.cat(f"{ROOT}/{relative}") for relative in OUTPUTS} == expected

    # The model of this replay: how it ran is in each manifest; the catalog's own reads (on
    # the emulator here) are named as unsized, not counted as 0 B.
    prefix = next(w for w in out.split() if w.startswith("gs://kedro-gcs-bridge-replay/"))
    manifests = HandoffStore(prefix, task="inspect").manifests()
    assert {(m.replay_parallel, m.cpus) for m in manifests} == {(2, len(os.sched_getaffinity(0)))}
    suggested = _kedro(project, "gcs-bridge", "suggest", "--from", prefix, "-e", "gcs")
    assert suggested.returncode == 0, _said(suggested)
    said = _said(suggested)
    assert "are read from the catalog's own storage" in said, said
    assert "a.parts_read, raw_parts, raw_table" in said
