"""What a project's own Dockerfile lacks for the pods: kedro-gcs-bridge installed, and no ENV
that changes Kedro's env or the pipelines without the DAG knowing."""

from __future__ import annotations

from pathlib import Path

import pytest

from kedro_gcs_bridge.planning.dockerfile import (
    ENV_READ,
    dockerfile_problems,
    env_settings,
    installs_bridge,
)

SHIPPED = (Path(__file__).resolve().parents[2] / "docker" / "Dockerfile").read_text("utf-8")
#: A project's own Dockerfile, as the issue met it.
THEIRS = """FROM python:3.11-slim
# kedro-gcs-bridge is not mentioned in this comment
ENV KEDRO_ENV=prod \\
    MODE=fast
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
CMD ["kedro", "run"]
"""


def test_the_shipped_dockerfile_lacks_nothing() -> None:
    assert dockerfile_problems(SHIPPED, "docker/Dockerfile", [], {"KEDRO_ENV": ["x.py"]}) == []


def test_a_project_dockerfile_names_each_problem_and_its_fix() -> None:
    reads = {"MODE": ["src/p/pipeline_registry.py"], "HOME": ["src/p/nodes.py"]}
    installs, kedro_env, mode = dockerfile_problems(THEIRS, "docker/Dockerfile", [], reads)
    assert installs.startswith("docker/Dockerfile does not install kedro-gcs-bridge")
    assert "pip install kedro-gcs-bridge" in installs
    assert kedro_env.startswith("docker/Dockerfile sets ENV KEDRO_ENV=prod:")
    assert "kedro airflow create -e <env>" in kedro_env
    assert "ENV MODE=fast: the project's code reads it (src/p/pipeline_registry.py)" in mode


@pytest.mark.parametrize(
    ("text", "declared", "installed"),
    [
        pytest.param(THEIRS, [], False, id="not-named-anywhere"),
        pytest.param(THEIRS, ["kedro-gcs-bridge>=0.1"], True, id="declared-and-installed"),
        pytest.param("FROM x\nCOPY . .\n", ["kedro_gcs_bridge"], False, id="declared-no-install"),
        pytest.param("FROM x\nRUN pip install \\\n  kedro-gcs-bridge==0.1\n", [], True, id="run"),
        pytest.param("FROM x\nRUN uv pip install ./kedro_gcs_bridge-0.1.whl\n", [], True, id="whl"),
    ],
)
def test_installs_bridge(text: str, declared: list[str], installed: bool) -> None:
    assert installs_bridge(text, declared) is installed


def test_env_forms() -> None:
    text = 'ENV A=1 B="two words"\nENV C 3\n# ENV D=4\n'
    assert env_settings(text) == {"A": "1", "B": "two words", "C": "3"}


def test_env_reads_in_code() -> None:
    code = 'os.environ["A"]; os.environ.get("B", 1); os.getenv( "C"); environ[name]'
    assert ENV_READ.findall(code) == ["A", "B", "C"]


def test_replay_takes_the_image_env_that_changes_what_a_pod_runs(tmp_path: Path) -> None:
    """Issue 29: KEDRO_ENV and variables the project's code reads, not PATH and the like
    (they describe the image's filesystem, not this machine's)."""
    from kedro_gcs_bridge.dag.dockerfile_check import image_env

    assert image_env(tmp_path) == {}  # no Dockerfile of its own
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker/Dockerfile").write_text(
        "FROM python:3.11-slim\nENV KEDRO_ENV=prod PATH=/venv/bin:$PATH\nENV MODE fast\n"
        "ENV UNREAD=1\n"
    )
    (tmp_path / "src/p").mkdir(parents=True)
    (tmp_path / "src/p/registry.py").write_text('import os\nMODE = os.environ.get("MODE")\n')
    assert image_env(tmp_path) == {"KEDRO_ENV": "prod", "MODE": "fast"}
