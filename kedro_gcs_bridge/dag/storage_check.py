"""The storage plan of a project's DAG: the facts gathered from the project, then classified.

The edge around `planning/storage.py`: it reads where the catalog keeps each dataset, which
other registered pipelines make it, and whether the image holds a local file (the project's
docker ignore file, `planning/image.py`). `plan`, `validate` and `kedro airflow create` call
`storage_plan_for`, so the three say the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.planning.assets import plan_assets
from kedro_gcs_bridge.planning.grouping import NodeSpec, base_name, is_parameter, node_specs
from kedro_gcs_bridge.planning.image import IMAGE_IGNORE_FILES, ImageFilter
from kedro_gcs_bridge.planning.storage import (
    DatasetLocation,
    StorageEntry,
    StoragePlan,
    Where,
    classify,
    grade,
)
from kedro_gcs_bridge.pod.catalog import catalog_locations

if TYPE_CHECKING:
    from kedro.framework.context import KedroContext
    from kedro.pipeline import Pipeline

    from kedro_gcs_bridge.dag.dagfile import DagFile


def planning_catalog(context: KedroContext) -> Any:
    """The catalog the storage plan reads: the env's catalog config and credentials, built as
    `kedro run` builds it (`settings.DATA_CATALOG_CLASS`, paths made absolute), so dataset
    factories resolve and credentialed entries load.

    Unlike Kedro's `context.catalog` it holds no parameter datasets (each a MemoryDataset whose
    copy mode imports pandas; the plan reads no parameter from the catalog: `dag.create`
    checks them) and fires no `after_catalog_created` hook: the plan reads each dataset's
    configuration, which a hook acting on a run's live catalog does not write, and the one
    such hook of every install (kedro-telemetry's) would send a statistics event per read.
    """
    from kedro.config import MissingConfigException
    from kedro.framework.context.context import (
        _convert_paths_to_absolute_posix,
        _validate_transcoded_datasets,
    )
    from kedro.framework.project import settings

    loader = context.config_loader
    config = _convert_paths_to_absolute_posix(
        project_path=context.project_path, conf_dictionary=loader["catalog"]
    )
    try:
        credentials = loader["credentials"]
    except MissingConfigException:
        credentials = {}
    unknown = unresolved_credentials(config, credentials)
    if unknown:
        raise ConfigError(_credentials_problem(unknown, str(context.env or "local")))
    catalog = settings.DATA_CATALOG_CLASS.from_config(catalog=config, credentials=credentials)
    _validate_transcoded_datasets(catalog)
    return catalog


def unresolved_credentials(
    catalog: Mapping[str, Any], credentials: Mapping[str, Any]
) -> dict[str, str]:
    """Catalog entry (or factory pattern) -> the credentials name it uses that `credentials`
    does not define (Kedro would stop on it with a traceback)."""
    return {
        name: entry["credentials"]
        for name, entry in catalog.items()
        if isinstance(entry, Mapping)
        and isinstance(entry.get("credentials"), str)
        and entry["credentials"] not in credentials
    }


def _credentials_problem(unknown: Mapping[str, str], env: str) -> str:
    used = ", ".join(f"'{name}' uses '{creds}'" for name, creds in sorted(unknown.items()))
    return (
        f"catalog credentials that env '{env}' does not define: {used}. A pod's `kedro run "
        f"--env {env}` reads conf/base and conf/{env} only (conf/local stays on this machine). "
        "On GKE drop `credentials:` from gs:// entries and grant the pods' service account "
        "access (Workload Identity), or define them in conf/<env>/credentials.yml from a "
        "Kubernetes Secret (`pod.secret_env` and `${oc.env:VAR}`)."
    )


@dataclass(frozen=True)
class PipelineFacts:
    """What the storage plan and the assets read of one pipeline, gathered once.

    Attributes:
        nodes: The pipeline's nodes (`node_specs`).
        locations: Base dataset name -> where the catalog keeps it (Kedro's absolute paths).
        made_elsewhere: Base name -> other registered pipelines that output it.
    """

    nodes: list[NodeSpec]
    locations: Mapping[str, DatasetLocation]
    made_elsewhere: Mapping[str, list[str]]


def pipeline_facts(
    name: str,
    pipeline: Pipeline,
    pipelines: Mapping[str, Pipeline],
    catalog: Any,
    nodes: list[NodeSpec] | None = None,
) -> PipelineFacts:
    """The facts of `pipeline` (registered as `name`) that its storage plan and assets read.

    Args:
        name: The pipeline's registered name.
        pipeline: The pipeline (filtered by `--tags` where create was given them).
        pipelines: Every registered pipeline.
        catalog: The Kedro catalog of the env the tasks run with.
        nodes: `node_specs(pipeline)`, where the caller has them already.
    """
    full = _full_names(pipeline)
    located = catalog_locations(catalog, full.values())
    return PipelineFacts(
        node_specs(pipeline) if nodes is None else nodes,
        {base: located[dataset] for base, dataset in full.items()},
        _made_elsewhere(name, pipeline, pipelines),
    )


def read_image_filter(project_path: Path) -> ImageFilter:
    """The rules of the first docker ignore file the project has (none: all is in the image)."""
    for relative in IMAGE_IGNORE_FILES:
        path = project_path / relative
        if path.is_file():
            return ImageFilter.parse(path.read_text(encoding="utf-8"), relative)
    return ImageFilter()


def _image_gap(project_path: Path, path: str, image: ImageFilter) -> str | None:
    """Why the image lacks a local file, or None when it holds it."""
    target = Path(path)
    if target.is_absolute():
        try:
            target = target.relative_to(project_path)
        except ValueError:
            return "it is outside the project folder"
    relative = PurePosixPath(target.as_posix()).as_posix()
    if relative.startswith("../"):
        return "it is outside the project folder"
    if image.excludes(relative):
        return f"{image.source} leaves {relative} out of the build context"
    if not (project_path / relative).exists():
        return f"{relative} does not exist in the project folder"
    return None


def _relative(location: DatasetLocation, project_path: Path) -> DatasetLocation:
    """A local path as the project names it (Kedro makes catalog paths absolute)."""
    if location.where is not Where.LOCAL or location.path is None:
        return location
    try:
        relative = Path(location.path).relative_to(project_path)
    except ValueError:
        return location
    return replace(location, path=relative.as_posix())


def _made_elsewhere(
    name: str, pipeline: Pipeline, pipelines: Mapping[str, Pipeline]
) -> dict[str, list[str]]:
    """Base dataset name -> other registered pipelines that output it.

    A pipeline holding every node of this one (such as `__default__`) is named only when no
    other pipeline makes the dataset: a DAG of that pipeline makes it and reads it itself.
    """
    own = {node.name for node in pipeline.nodes}
    disjoint: dict[str, list[str]] = {}
    superset: dict[str, list[str]] = {}
    for other, candidate in sorted(pipelines.items()):
        if other == name or candidate is None:
            continue
        target = superset if own <= {node.name for node in candidate.nodes} else disjoint
        for output in candidate.all_outputs():
            target.setdefault(base_name(output), []).append(other)
    return {**superset, **disjoint}


def _full_names(pipeline: Pipeline) -> dict[str, str]:
    """Base name -> the first name the pipeline uses for it (transcoded or not)."""
    names: dict[str, str] = {}
    for node in pipeline.nodes:
        for dataset in (*node.inputs, *node.outputs):
            base = base_name(dataset)
            if base not in names and not is_parameter(dataset):
                names[base] = dataset
    return names


def _missing_from_image(
    locations: Mapping[str, DatasetLocation], project_path: Path
) -> dict[str, str]:
    image = read_image_filter(project_path)
    gaps = {
        name: _image_gap(project_path, str(location.path), image)
        for name, location in locations.items()
        if location.where is Where.LOCAL
    }
    return {name: gap for name, gap in gaps.items() if gap is not None}


def storage_entries(
    dag: DagFile, facts: PipelineFacts, project_path: str | Path
) -> tuple[StorageEntry, ...] | None:
    """Every dataset of a planned DAG in its storage class, classified once for both its
    storage plan and its assets (the image is read for a GKE DAG only); None without a plan.

    Args:
        dag: The planned DAG file (its plan and config).
        facts: `pipeline_facts` of the pipeline the DAG was planned from.
        project_path: The project folder (for the docker ignore file).
    """
    if dag.plan is None:
        return None
    project = Path(project_path)
    locations = {base: _relative(where, project) for base, where in facts.locations.items()}
    missing = {} if dag.local else _missing_from_image(locations, project)
    return classify(
        dag.plan,
        facts.nodes,
        locations,
        facts.made_elsewhere,
        missing,
        dag.config.handoff.local_handoff,
    )


def storage_plan_for(
    dag: DagFile,
    pipeline: Pipeline,
    pipelines: Mapping[str, Pipeline],
    catalog: Any,
    project_path: str | Path,
    facts: PipelineFacts | None = None,
    entries: Sequence[StorageEntry] | None = None,
) -> StoragePlan | None:
    """The storage plan of a planned DAG, or None when it needs none (local backend, no plan).

    Args:
        dag: The planned DAG file (its plan and config).
        pipeline: The pipeline the DAG was planned from.
        pipelines: Every registered pipeline (to find inputs another DAG makes).
        catalog: The Kedro catalog of the env the pods run with.
        project_path: The project folder (for the docker ignore file).
        facts: `pipeline_facts` of the pipeline, where the caller gathered them already.
        entries: `storage_entries` of the DAG, where the caller classified them already.
    """
    if dag.plan is None or dag.local:
        return None
    if entries is None:
        facts = facts or pipeline_facts(dag.pipeline_name, pipeline, pipelines, catalog)
        entries = storage_entries(dag, facts, project_path) or ()
    return grade(entries, dag.config.handoff.local_disk)


def with_assets(
    dag: DagFile,
    pipeline: Pipeline,
    pipelines: Mapping[str, Pipeline],
    catalog: Any,
    project_path: str,
    facts: PipelineFacts | None = None,
    entries: Sequence[StorageEntry] | None = None,
) -> DagFile:
    """The DAG file with its Airflow assets, read from the catalog (see planning/assets.py).

    Args:
        dag: The planned DAG file (a failed plan comes back as it is).
        pipeline: The pipeline the DAG was planned from.
        pipelines: Every registered pipeline (to find inputs another pipeline's DAG makes).
        catalog: The Kedro catalog of the env the tasks run with.
        project_path: The project folder (relative local paths are under it).
        facts: `pipeline_facts` of the pipeline, where the caller gathered them already.
        entries: `storage_entries` of the DAG, where the caller classified them already.
    """
    if dag.plan is None:
        return dag
    facts = facts or pipeline_facts(dag.pipeline_name, pipeline, pipelines, catalog)
    assets = plan_assets(
        dag.plan,
        facts.nodes,
        facts.locations,
        facts.made_elsewhere,
        dag.local,
        dag.config.handoff.local_handoff,
        project_path,
        entries=entries,
    )
    return replace(dag, assets=assets)
