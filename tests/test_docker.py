"""The image recipe in docker/: hadolint on the Dockerfile, then its build stage's commands run
for real in a fresh virtualenv and a pod's `kedro run` in what they installed.

There is no Docker engine here: the build stage's RUN lines run in `/bin/sh -c` with the base
image's `python` played by this venv's base interpreter and `pip` by `uv pip` (same
requirements, resolved from uv's cache under the repo's constraints).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kedro_gcs_bridge.pod.store import HandoffStore

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / "docker" / "Dockerfile.dockerignore"
EXAMPLE = REPO / "examples" / "spaceflights"
BIN = Path(sys.executable).parent
UV = BIN / "uv"
#: A pod's command for the example's `companies` group, as the generated DAG writes it.
POD_COMMAND = ["kedro", "run", "--runner", "kedro_gcs_bridge.GCSRunner", "--pipelines"]
POD_COMMAND += ["__default__", "--env", "pod", "--nodes", "preprocess_companies_node"]
#: What the build's RUNs take from this machine's environment: uv's cache and network access.
PASSTHROUGH = re.compile(r"^(UV_.*|SSL_CERT_(FILE|DIR)|HTTPS?_PROXY|NO_PROXY)$", re.IGNORECASE)
#: What must stay out of the build context (patterns of the .dockerignore, as written).
LEFT_OUT = (
    "conf/local/**",
    "conf/**/credentials*",
    "**/.env",
    "**/*credentials*.json",
    "data/**",
    ".git",
)
LEFT_OUT += ("airflow_dags", ".gcs-bridge-runs", "mlruns")


def build_stage_runs(text: str) -> list[str]:
    """The RUN commands of the Dockerfile's `build` stage, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    stage = joined.split(" AS build\n", 1)[1].split("\nFROM ", 1)[0]
    return [line[4:] for line in stage.splitlines() if line.startswith("RUN ")]


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_leaves_out_local_files() -> None:
    patterns = set(DOCKERIGNORE.read_text(encoding="utf-8").splitlines())
    assert set(LEFT_OUT) <= patterns
    assert {"!conf/local/.gitkeep", "!data/**/.gitkeep"} <= patterns  # folders Kedro needs


def _pip_as_uv(tools: Path) -> None:
    """`pip --python PYTHON install ...`, as the Dockerfile calls it, done by `uv pip`."""
    pip = tools / "pip"
    pip.write_text(
        f"#!/bin/sh\n"
        f'[ "$1" = "--python" ] || exit 2\n'
        f'python="$2"; shift 2\n'
        f'exec {UV} pip "$@" --python "$python" --constraint {REPO / "constraints.txt"}\n'
    )
    pip.chmod(0o755)


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build stage, run: a fresh venv with the example's dependencies and this repo's
    wheel (as a user puts it under docker/ with KEDRO_GCS_BRIDGE_REQUIREMENT)."""
    tmp = tmp_path_factory.mktemp("image")
    build, tools = tmp / "build", tmp / "tools"
    (build / "docker").mkdir(parents=True)
    tools.mkdir()
    subprocess.run(
        [str(UV), "build", "--wheel", "--quiet", "--out-dir", str(build / "docker"), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (build / "docker").glob("kedro_gcs_bridge-*.whl")
    shutil.copy2(EXAMPLE / "pyproject.toml", build)  # COPY pyproject.toml requirements.tx[t]
    _pip_as_uv(tools)
    (tools / "python").symlink_to(sys._base_executable)  # the base image's python
    env = {
        "PATH": f"{tools}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(tmp)),
        "VIRTUAL_ENV": str(tmp / "venv"),
        "KEDRO_GCS_BRIDGE_REQUIREMENT": f"./docker/{wheel.name}",
        **{k: v for k, v in os.environ.items() if PASSTHROUGH.match(k)},
    }
    for command in build_stage_runs(DOCKERFILE.read_text(encoding="utf-8")):
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=build,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, f"RUN {command}\n{done.stdout}\n{done.stderr}"
    return tmp / "venv"


@pytest.mark.slow
def test_the_pods_command_runs_a_group_in_the_built_venv(image_venv: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("data", "airflow_dags"))
    # A production env reads its inputs from outside the image (gs://); here, from the
    # example's own raw data.
    (project / "conf" / "pod").mkdir()
    (project / "conf" / "pod" / "catalog.yml").write_text(
        f"companies:\n  type: pandas.CSVDataset\n"
        f"  filepath: {EXAMPLE / 'data' / '01_raw' / 'companies.csv'}\n"
    )
    prefix = tmp_path / "runs" / "spaceflights" / "manual__1"
    env = {
        "PATH": f"{image_venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "KEDRO_GCS_BRIDGE_RUN_PREFIX": prefix.as_uri(),
        "KEDRO_GCS_BRIDGE_PIPELINE": "__default__",
        "KEDRO_GCS_BRIDGE_TASK": "companies",
        # As the DAG sets it: the example's Parquet intermediates cross through the prefix.
        "KEDRO_GCS_BRIDGE_LOCAL_HANDOFF": "true",
    }
    probe = "import kedro_gcs_bridge; print(kedro_gcs_bridge.__file__)"
    where = subprocess.run(
        ["python", "-c", probe], cwd=project, env=env, capture_output=True, text=True, check=True
    )
    assert Path(where.stdout.strip()).is_relative_to(image_venv)  # the wheel, not this checkout
    timed = ["python", "-X", "importtime", "-m", *POD_COMMAND]
    done = subprocess.run(
        timed, cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The image holds no kedro-airflow (its CLI plugin loads slugify) and pods plan nothing.
    loaded = {
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    dag_side = {
        name
        for name in loaded
        if name.split(".")[0] in {"slugify", "kedro_airflow", "airflow"}
        or name.startswith(("kedro_gcs_bridge.dag", "kedro_gcs_bridge.planning.naming"))
    }
    assert "kedro_gcs_bridge.pod.runner" in loaded
    assert dag_side == set()
    # Read back through the store, which alone knows the run prefix's layout.
    record = HandoffStore(prefix.as_uri(), task="inspect").read_record("preprocessed_companies")
    assert record.to_json()["size"] > 0
