"""The edge around `planning/dockerfile.py`: reads a project's docker/Dockerfile, its declared
dependencies and the environment variables its code reads. `init`, `validate` and `kedro
airflow create` call `dockerfile_warnings`, so the three say the same; `replay` runs its tasks
with `image_env`, as the image runs its pods."""

from __future__ import annotations

import tomllib
from pathlib import Path

from kedro_gcs_bridge.planning.dockerfile import (
    ENV_READ,
    KEDRO_VARIABLES,
    dockerfile_problems,
    env_settings,
)

#: The Dockerfile the image of the pods is built from (init writes it).
DOCKERFILE = "docker/Dockerfile"


def _declared_dependencies(project_path: Path) -> list[str]:
    """The project's requirement strings: pyproject.toml's [project] dependencies and the
    lines of requirements.txt (at the root or in src/)."""
    declared: list[str] = []
    pyproject = project_path / "pyproject.toml"
    if pyproject.is_file():
        try:
            project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        except tomllib.TOMLDecodeError:
            project = {}
        declared += [str(dep) for dep in project.get("dependencies", [])]
    for relative in ("requirements.txt", "src/requirements.txt"):
        path = project_path / relative
        if path.is_file():
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            declared += [line.split("#", 1)[0].strip() for line in lines]
    return [dep for dep in declared if dep]


def _env_reads(project_path: Path) -> dict[str, list[str]]:
    """Environment variable -> the project's source files (under src/) that read it."""
    reads: dict[str, list[str]] = {}
    for path in sorted((project_path / "src").rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for name in dict.fromkeys(ENV_READ.findall(text)):
            reads.setdefault(name, []).append(path.relative_to(project_path).as_posix())
    return reads


def dockerfile_warnings(project_path: str | Path, dag_env: str | None = None) -> list[str]:
    """What the project's docker/Dockerfile lacks or sets behind the DAG's back, each with
    its fix ([] when the project has none).

    Args:
        project_path: The project folder.
        dag_env: The env the DAG runs its pods with, when known: an image `KEDRO_ENV` equal
            to it changes nothing.
    """
    project = Path(project_path)
    path = project / DOCKERFILE
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    declared = _declared_dependencies(project)
    return dockerfile_problems(text, DOCKERFILE, declared, _env_reads(project), dag_env)


def image_env(project_path: str | Path) -> dict[str, str]:
    """The variables the project's docker/Dockerfile sets (ENV) that change what a pod runs:
    Kedro's own and those the project's code reads. Replay gives them to each task as the
    image gives them to each pod; the others (PATH, ...) describe the image, not this machine.
    """
    project = Path(project_path)
    path = project / DOCKERFILE
    if not path.is_file():
        return {}
    settings = env_settings(path.read_text(encoding="utf-8", errors="replace"))
    matter = set(KEDRO_VARIABLES) | set(_env_reads(project))
    return {name: value for name, value in sorted(settings.items()) if name in matter}
