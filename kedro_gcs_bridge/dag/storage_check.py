"""The storage plan of a project's DAG: the facts gathered from the project, then classified.

The edge around `planning/storage.py`: it reads where the catalog keeps each dataset, which
other registered pipelines make it, and whether the image holds a local file (the project's
docker ignore file, `planning/image.py`). `plan`, `validate` and `kedro airflow create` call
`storage_plan_for`, so the three say the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from kedro_gcs_bridge.planning.assets import plan_assets
from kedro_gcs_bridge.planning.grouping import base_name, is_parameter, node_specs
from kedro_gcs_bridge.planning.image import IMAGE_IGNORE_FILES, ImageFilter
from kedro_gcs_bridge.planning.storage import (
    DatasetLocation,
    StoragePlan,
    Where,
    classify,
    grade,
)
from kedro_gcs_bridge.pod.catalog import catalog_locations

if TYPE_CHECKING:
    from kedro.pipeline import Pipeline

    from kedro_gcs_bridge.dag.dagfile import DagFile


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
            if not is_parameter(dataset):
                names.setdefault(base_name(dataset), dataset)
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


def storage_plan_for(
    dag: DagFile,
    pipeline: Pipeline,
    pipelines: Mapping[str, Pipeline],
    catalog: Any,
    project_path: str | Path,
) -> StoragePlan | None:
    """The storage plan of a planned DAG, or None when it needs none (local backend, no plan).

    Args:
        dag: The planned DAG file (its plan and config).
        pipeline: The pipeline the DAG was planned from.
        pipelines: Every registered pipeline (to find inputs another DAG makes).
        catalog: The Kedro catalog of the env the pods run with.
        project_path: The project folder (for the docker ignore file).
    """
    if dag.plan is None or dag.local:
        return None
    project = Path(project_path)
    full = _full_names(pipeline)
    located = catalog_locations(catalog, full.values())
    locations = {base: _relative(located[name], project) for base, name in full.items()}
    entries = classify(
        dag.plan,
        node_specs(pipeline),
        locations,
        _made_elsewhere(dag.pipeline_name, pipeline, pipelines),
        _missing_from_image(locations, project),
        dag.config.handoff.local_handoff,
    )
    return grade(entries, dag.config.handoff.local_disk)


def with_assets(
    dag: DagFile,
    pipeline: Pipeline,
    pipelines: Mapping[str, Pipeline],
    catalog: Any,
    project_path: str,
) -> DagFile:
    """The DAG file with its Airflow assets, read from the catalog (see planning/assets.py).

    Args:
        dag: The planned DAG file (a failed plan comes back as it is).
        pipeline: The pipeline the DAG was planned from.
        pipelines: Every registered pipeline (to find inputs another pipeline's DAG makes).
        catalog: The Kedro catalog of the env the tasks run with.
        project_path: The project folder (relative local paths are under it).
    """
    if dag.plan is None:
        return dag
    full = _full_names(pipeline)
    located = catalog_locations(catalog, full.values())
    assets = plan_assets(
        dag.plan,
        node_specs(pipeline),
        {base: located[name] for base, name in full.items()},
        _made_elsewhere(dag.pipeline_name, pipeline, pipelines),
        dag.local,
        dag.config.handoff.local_handoff,
        project_path,
    )
    return replace(dag, assets=assets)
