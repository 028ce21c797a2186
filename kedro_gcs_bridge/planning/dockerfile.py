"""What a project's own Dockerfile lacks for the pods of a kedro-gcs-bridge DAG.

Every pod runs `kedro run --runner kedro_gcs_bridge.GCSRunner --env <env> ...` in the image, so
the image must install kedro-gcs-bridge, and must not set environment variables that change
Kedro's env or the registered pipelines behind the DAG's back: plan, validate and replay run
on this machine without them. Pure: `kedro gcs-bridge init` reads the Dockerfile, the
project's declared dependencies and the variables its code reads, and prints what this finds.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence

#: The package, as pip, a wheel file name or an import may spell it.
_BRIDGE = re.compile(r"kedro[-_]gcs[-_]bridge", re.IGNORECASE)
#: A RUN that installs packages (pip, uv, poetry, pdm, conda).
_INSTALLS = re.compile(r"\b(pip3?|uv|poetry|pdm|conda|mamba)\b.*\b(install|sync|add)\b")
#: Environment variables read by name in Python code.
ENV_READ = re.compile(
    r"""(?:environ\s*(?:\.get\s*\(|\[)|getenv\s*\()\s*["']([A-Za-z_][A-Za-z0-9_]*)["']"""
)

#: Kedro's own variables that change what a pod runs, and why each is a problem in an image.
KEDRO_VARIABLES = {
    "KEDRO_ENV": (
        "the DAG passes `--env` to every pod, so Kedro loads the DAG's env, but code that "
        "reads KEDRO_ENV (a pipeline registry choosing pipelines by env, say) sees the image's "
        "value, which plan, validate and replay on this machine do not: remove it and choose "
        "the env with `kedro airflow create -e <env>`"
    ),
}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments out."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    if pending:
        lines.append(pending)
    parsed = []
    for line in lines:
        word, _, rest = line.partition(" ")
        if word:
            parsed.append((word.upper(), rest.strip()))
    return parsed


def env_settings(text: str) -> dict[str, str]:
    """The variables a Dockerfile's ENV instructions set (both `K=V ...` and `K V`)."""
    found: dict[str, str] = {}
    for word, rest in instructions(text):
        if word != "ENV" or not rest:
            continue
        try:
            parts = shlex.split(rest)
        except ValueError:
            parts = rest.split()
        if parts and "=" not in parts[0]:
            found[parts[0]] = " ".join(parts[1:])
            continue
        found.update(part.split("=", 1) for part in parts if "=" in part)
    return found


def installs_bridge(text: str, declared: Iterable[str]) -> bool:
    """Whether the image gets kedro-gcs-bridge: named by an instruction, or declared by the
    project (pyproject.toml, requirements.txt) and the Dockerfile installs packages."""
    steps = instructions(text)
    if any(_BRIDGE.search(rest) for word, rest in steps if word in {"RUN", "ARG", "ENV"}):
        return True
    runs_install = any(word == "RUN" and _INSTALLS.search(rest) for word, rest in steps)
    return runs_install and any(_BRIDGE.match(str(dep).strip()) for dep in declared)


def dockerfile_problems(
    text: str,
    source: str,
    declared: Iterable[str],
    env_reads: Mapping[str, Sequence[str]],
    dag_env: str | None = None,
) -> list[str]:
    """What the Dockerfile lacks or sets that the DAG does not know, each with its fix.

    Args:
        text: The Dockerfile.
        source: Its project-relative path, for messages.
        declared: The project's declared dependencies (requirement strings).
        env_reads: Variable -> the project files whose code reads it.
        dag_env: The env the DAG runs its pods with, when known: `KEDRO_ENV` set to it
            changes nothing.
    """
    problems = []
    if not installs_bridge(text, declared):
        problems.append(
            f"{source} does not install kedro-gcs-bridge: every pod runs `kedro run --runner "
            "kedro_gcs_bridge.GCSRunner` and would fail on it. Install it in the image "
            "(`pip install kedro-gcs-bridge`, or a wheel of it copied into the build context), "
            "or add it to the project's dependencies that the Dockerfile installs."
        )
    for name, value in sorted(env_settings(text).items()):
        if name == "KEDRO_ENV" and value == dag_env:
            continue
        why = KEDRO_VARIABLES.get(name)
        readers = env_reads.get(name, ())
        if why is None and readers:
            why = (
                f"the project's code reads it ({', '.join(readers)}), and plan, validate and "
                "replay on this machine run without it: remove it from the image, or make the "
                "code not depend on it"
            )
        if why is not None:
            problems.append(f"{source} sets ENV {name}={value}: {why}.")
    return problems
