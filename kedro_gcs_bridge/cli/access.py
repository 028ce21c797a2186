"""Where the command line reads a project and a run prefix: the Kedro context, the `airflow`
config, pipelines and catalog, the runs root, the manifests under a run prefix, and the
bridge's environment variables.

The commands read these through the functions here only, so a change of the config model or
of the run-prefix protocol is made in this module.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from kedro.framework.startup import ProjectMetadata
    from kedro.pipeline import Pipeline

    from kedro_gcs_bridge.config import BridgeConfig
    from kedro_gcs_bridge.dag.dagfile import DagFile
    from kedro_gcs_bridge.planning.pod_world import PodConfig
    from kedro_gcs_bridge.planning.storage import StoragePlan
    from kedro_gcs_bridge.pod.protocol import Manifest

#: What the DAG-writing commands import beyond the pod's install (the `dag` extra).
_DAG_EXTRA_MODULES = ("jinja2", "slugify")


@contextlib.contextmanager
def quiet_context(metadata: ProjectMetadata, env: str | None = None) -> Iterator[Any]:
    """The project's KedroContext, with Kedro's INFO logs and deprecation warnings held back
    (these commands print plans and graphs that users redirect into files)."""
    import logging
    import warnings

    from kedro.framework.session import KedroSession

    kedro_logger = logging.getLogger("kedro")
    level = kedro_logger.level
    kedro_logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with KedroSession.create(project_path=metadata.project_path, env=env) as session:
                yield session.load_context()
    finally:
        kedro_logger.setLevel(level)


def load_project(metadata: ProjectMetadata, env: str) -> tuple[dict[str, Any], Any]:
    """The raw `airflow` config and the catalog the plan reads (`planning_catalog`: the one
    `kedro airflow create` checks with), for an env."""
    from kedro_gcs_bridge.dag.create import load_airflow_config
    from kedro_gcs_bridge.dag.storage_check import planning_catalog

    with quiet_context(metadata, env) as context:
        return load_airflow_config(context.config_loader), planning_catalog(context)


def load_project_for_pods(
    metadata: ProjectMetadata, env: str
) -> tuple[dict[str, Any], Any, PodConfig]:
    """`load_project`, and the config the pods of that env run with (`dag.create.pod_config`)."""
    from kedro_gcs_bridge.dag.create import load_airflow_config, pod_config
    from kedro_gcs_bridge.dag.storage_check import planning_catalog

    with quiet_context(metadata, env) as context:
        raw = load_airflow_config(context.config_loader)
        return raw, planning_catalog(context), pod_config(context, env)


def pipeline(name: str) -> Pipeline:
    """The registered pipeline `name`."""
    from kedro.framework.project import pipelines

    found = pipelines.get(name)
    if found is None:
        raise click.ClickException(f"Pipeline {name} not found; registered: {sorted(pipelines)}.")
    return found


def pipeline_names() -> list[str]:
    """Every registered pipeline, sorted."""
    from kedro.framework.project import pipelines

    return sorted(pipelines)


def merged_config(raw: dict[str, Any], name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The config of one pipeline as kedro-airflow merges it (`default:`, its own, params)."""
    from kedro_gcs_bridge.config import merge_airflow_config

    return merge_airflow_config(raw, name, params)


def bridge_config(raw: dict[str, Any], name: str, params: dict[str, Any]) -> BridgeConfig:
    """The typed config of one pipeline."""
    from kedro_gcs_bridge.config import parse_config

    return parse_config(merged_config(raw, name, params))


def config_warnings(raw: dict[str, Any], name: str, params: dict[str, Any]) -> list[str]:
    """What the config of one pipeline holds that nothing reads (a team's own keys)."""
    from kedro_gcs_bridge.config import unknown_keys

    return unknown_keys(merged_config(raw, name, params))


def _check_sections(raw: dict[str, Any], registered: list[str]) -> None:
    """Says the airflow config's top-level sections nothing reads (stderr); stops on a config
    key or a misspelled pipeline name there, as `kedro airflow create` does."""
    from kedro_gcs_bridge.config import section_problems

    problems, notes = section_problems(raw, registered)
    for note in notes:
        click.secho(f"warning: {note}", fg="yellow", err=True)
    if problems:
        raise click.ClickException("\n".join(problems))


def require_dag_extra() -> None:
    """Fails with the install command when the `dag` extra is missing (a pod's image)."""
    missing = [name for name in _DAG_EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(
            f"this command plans DAGs and needs {missing}, which a pod's install leaves out: "
            "pip install 'kedro-gcs-bridge[dag]'"
        )


def dag_files(
    metadata: ProjectMetadata, names: Iterable[str], env: str, params: dict[str, Any]
) -> tuple[list[DagFile], Any, dict[str, Any], PodConfig]:
    """The planned DAG file of each pipeline, the catalog, the raw `airflow` config and the
    config the pods run with."""
    require_dag_extra()
    from kedro.framework.project import pipelines

    from kedro_gcs_bridge.dag.dagfile import build_dag_file
    from kedro_gcs_bridge.planning.grouping import registered_node_specs

    raw, catalog, pods = load_project_for_pods(metadata, env)
    _check_sections(raw, list(pipelines))
    registered = registered_node_specs(pipelines.values())
    files = []
    for name in names:
        variables = {
            **merged_config(raw, name, params),
            "pipeline": pipeline(name),
            "pipeline_name": name,
            "env": env,
            "package_name": metadata.package_name,
        }
        path = str(metadata.project_path)
        files.append(build_dag_file(variables, path, registered=registered))
    return files, catalog, raw, pods


def storage_plan(metadata: ProjectMetadata, dag: DagFile, catalog: Any) -> StoragePlan | None:
    """The storage plan of a planned DAG (None for the local backend)."""
    from kedro.framework.project import pipelines

    from kedro_gcs_bridge.dag.storage_check import storage_plan_for

    found = pipelines[dag.pipeline_name]
    return storage_plan_for(dag, found, pipelines, catalog, metadata.project_path)


def persisted_datasets(catalog: Any, found: Pipeline) -> frozenset[str]:
    """The pipeline's datasets that the catalog persists by itself (not in memory)."""
    from kedro_gcs_bridge.pod.catalog import is_memory

    return frozenset(
        name for name in found.datasets() if name in catalog and not is_memory(catalog.get(name))
    )


def catalog_sources(metadata: ProjectMetadata) -> tuple[dict[str, Any], list[str], Path]:
    """The catalog config of the default env, its raw inputs' local paths, the conf folder."""
    from kedro.framework.project import pipelines, settings

    from kedro_gcs_bridge.dag.catalog_env import project_relative
    from kedro_gcs_bridge.planning.grouping import is_parameter
    from kedro_gcs_bridge.planning.storage import Where, aliases_of
    from kedro_gcs_bridge.pod.catalog import catalog_locations

    with quiet_context(metadata) as context:
        config = dict(context.config_loader["catalog"])
        made = {out for pipe in pipelines.values() for out in pipe.all_outputs()}
        needed = {name for pipe in pipelines.values() for name in pipe.inputs()}
        raw = sorted(name for name in needed - made if not is_parameter(name))
        located = catalog_locations(context.catalog, [*raw, *sorted(made)])
    made_here = aliases_of(located, made)  # read under another name than a node writes
    project = str(metadata.project_path)
    paths = [
        relative
        for name, location in located.items()
        if name in raw and name not in made_here
        if location.where is Where.LOCAL and location.path is not None
        if (relative := project_relative(location.path, project)) is not None
    ]
    return config, paths, Path(metadata.project_path) / settings.CONF_SOURCE


def local_runs_root(metadata: ProjectMetadata) -> str:
    """`file://<project>/.gcs-bridge-runs`: run prefixes when no root is given."""
    from kedro_gcs_bridge.planning.naming import local_runs_root as project_runs_root

    return project_runs_root(metadata.project_path)


def runs_root(metadata: ProjectMetadata, root: str | None, env: str) -> str:
    """The root `runs list/gc` read: `--root`, else the env's `gcs_bridge_root`, else the
    project's local runs folder."""
    if root:
        return root
    raw, _ = load_project(metadata, env)
    configured = (raw.get("default") or {}).get("gcs_bridge_root")
    return str(configured or local_runs_root(metadata))


def read_manifests(prefix: str, reader: str) -> list[Manifest]:
    """The committed manifests under a run prefix (`reader` names who reads, for errors).

    Raises:
        StorageUnreachableError: The storage gives no answer within seconds (one line).
    """
    from kedro_gcs_bridge.ops.runs import open_reachable
    from kedro_gcs_bridge.pod.store import HandoffStore

    hint = (
        "check the network and credentials; a run prefix on a GCS emulator needs "
        "STORAGE_EMULATOR_HOST pointing at it (one `replay --emulator` started is gone)"
    )
    if "://" in prefix and not prefix.startswith("file://"):
        open_reachable(prefix, hint, "the run prefix")
    return HandoffStore(prefix, task=reader).manifests()


def run_prefix_from_env() -> tuple[str | None, str]:
    """The run prefix the pod's environment names, and the variable's name."""
    from kedro_gcs_bridge.pod.context import RUN_PREFIX_ENV, TaskContext

    return TaskContext.from_env().run_prefix, RUN_PREFIX_ENV


def tracking_uri_from_env() -> str | None:
    """`$MLFLOW_TRACKING_URI`, if set."""
    from kedro_gcs_bridge.pod.context import TaskContext

    return TaskContext.from_env().tracking_uri


def tracking_env(uri: str) -> dict[str, str]:
    """The environment that points a replayed task at an MLflow store."""
    from kedro_gcs_bridge.pod.context import TRACKING_URI_ENV

    return {TRACKING_URI_ENV: uri}
