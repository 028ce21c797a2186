"""DAG variants: the local-backend and grouping-off DAGs never take the GKE DAG's id or file.

A project's production DAG runs every group in a GKE pod. Two variants of the same pipeline
exist for rehearsal and measurement: `pod_backend: local` (each group's `kedro run` as a local
process) and `grouping: false` (one task per node). Each gets a suffix on its `dag_id` and on
its file name, so copying `airflow_dags/` to Composer can never ship a variant as the real DAG.

kedro-airflow fixes the file name (`<package>[_<env>][_<pipeline>]_dag.py`) and the template
cannot change it, so `protect_base_files` moves an existing file of that name aside before
kedro-airflow writes, and `restore` (run when the click command closes) renames what it wrote
to the variant's name and puts the base file back: an existing GKE DAG file is never clobbered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from kedro_gcs_bridge.config import BridgeConfig

DEFAULT_PIPELINE = "__default__"
DEFAULT_ENV = "local"
_ASIDE = ".kedro-gcs-bridge-aside"

#: Variant suffix -> (does the config make this variant, what the DAG file's docstring says).
_VARIANTS: tuple[tuple[str, Callable[[BridgeConfig], bool], str], ...] = (
    (
        "local",
        lambda config: config.pod_backend == "local",
        "Local variant (`pod_backend: local`): each task runs its group's `kedro run` as a local\n"
        "process (BashOperator) on the Airflow worker, for `airflow dags test` on one machine;\n"
        "no GKE pod is started. Not for production: deploy the DAG generated without it.",
    ),
    (
        "ungrouped",
        lambda config: not config.grouping,
        "Ungrouped variant (`grouping: false`): one task per Kedro node; `airflow.<group>` tags\n"
        "and `groups:` are ignored, so every dataset between nodes crosses tasks.",
    ),
)

_GKE_DOC = (
    "Each task runs one group of Kedro nodes in a GKE Autopilot pod with\n"
    "kedro_gcs_bridge.GCSRunner."
)
_HANDOFF_DOC = "Tasks hand data to each other under the run prefix, not through XCom."


def variant_suffix(config: BridgeConfig) -> str:
    """`_local`, `_ungrouped`, both, or "" for the GKE DAG; added to the dag_id and file name."""
    return "".join(f"_{name}" for name, applies, _ in _VARIANTS if applies(config))


def variant_doc(config: BridgeConfig) -> str:
    """What the DAG file's docstring says about where and how its tasks run."""
    parts = [doc for _, applies, doc in _VARIANTS if applies(config)]
    if config.pod_backend != "local":
        parts.insert(0, _GKE_DOC)
    return "\n".join([*parts, _HANDOFF_DOC])


def kedro_airflow_file_name(package_name: str, env: str, pipeline_name: str) -> str:
    """The file name kedro-airflow 0.11's `create` writes for one pipeline."""
    name = package_name
    if env != DEFAULT_ENV:
        name += f"_{env}"
    if pipeline_name != DEFAULT_PIPELINE:
        name += f"_{pipeline_name}"
    return f"{name}_dag.py"


def variant_file_name(base_name: str, suffix: str) -> str:
    """`spaceflights_dag.py` + `_local` -> `spaceflights_local_dag.py`."""
    return f"{base_name.removesuffix('_dag.py')}{suffix}_dag.py"


@dataclass(frozen=True)
class VariantFile:
    """Where kedro-airflow writes a variant (`base`) and where it belongs (`target`)."""

    base: Path
    target: Path

    @property
    def aside(self) -> Path:
        return self.base.with_name(self.base.name + _ASIDE)


def protect_base_files(files: Sequence[VariantFile]) -> None:
    """Moves an existing file at each base path aside, so kedro-airflow's write spares it."""
    for file in files:
        if file.base.exists():
            file.base.replace(file.aside)


def restore(files: Sequence[VariantFile]) -> None:
    """Renames what kedro-airflow wrote to the variant names; puts the base files back.

    A file at a base path is one kedro-airflow wrote: `protect_base_files` moved any older one.
    """
    for file in files:
        if file.base.exists():
            file.base.replace(file.target)
            click.secho(f"kedro-gcs-bridge: the variant DAG is {file.target.name}", fg="green")
        if file.aside.exists():
            file.aside.replace(file.base)
