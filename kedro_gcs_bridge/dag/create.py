"""What `kedro airflow create` does with kedro-gcs-bridge: plan first, then hand the template
a `DagFileFactory`.

Called by the Kedro hook (`kedro_gcs_bridge/hooks.py`) only under `kedro airflow create` with
the bridge's template: it loads the `airflow` config like kedro-airflow, plans every requested
pipeline and stops the command with the problems found *before* kedro-airflow opens any DAG
file; then it adds `gcs_bridge` (a `DagFileFactory`) to the config so the template can render
the plan.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kedro_gcs_bridge.config import merge_airflow_config, unknown_keys
from kedro_gcs_bridge.dag.dagfile import DagFile, DagFileFactory, build_dag_file, with_assets
from kedro_gcs_bridge.dag.storage_check import read_image_filter, storage_plan_for
from kedro_gcs_bridge.dag.variants import (
    VariantFile,
    kedro_airflow_file_name,
    protect_base_files,
    restore,
    variant_file_name,
    variant_suffix,
)

if TYPE_CHECKING:
    from kedro.config import AbstractConfigLoader
    from kedro.framework.context import KedroContext
    from kedro.pipeline import Pipeline

logger = logging.getLogger(__name__)

CONFIG_KEY = "gcs_bridge"

#: Why `--group-by` is refused, and what to use instead.
GROUP_BY_REFUSED = (
    "kedro-gcs-bridge: `--group-by {value}` is kedro-airflow's grouping for its own template; "
    "the bridge groups nodes by `airflow.<group>` tags and the `groups:` config, which it checks "
    "(cycles, machine classes) and which `plan` and `validate` show. Drop `--group-by` and use "
    "`groups:` in conf/base/airflow.yml instead{example}; `kedro gcs-bridge suggest` proposes a "
    "`groups:` block from a measured run and compares it with `--group-by memory|namespace`."
)
_GROUP_BY_EXAMPLES = {
    "namespace": ', e.g. `groups: {<ns>: ["namespace:<ns>"]}` for each top-level namespace',
    "memory": (
        " (the bridge already hands in-memory datasets between pods, so nodes joined by memory "
        "need not share a pod)"
    ),
}


def load_airflow_config(config_loader: AbstractConfigLoader) -> dict[str, Any]:
    """Reads the `airflow` config exactly as kedro-airflow 0.11 does (missing file -> {})."""
    from kedro.config import MissingConfigException

    patterns = getattr(config_loader, "config_patterns", None)
    if patterns is not None and "airflow" not in patterns:
        patterns.update({"airflow": ["airflow*", "airflow/**"]})
    try:
        return dict(config_loader["airflow"])
    except MissingConfigException:
        return {}


def _storage_problems(
    dag: DagFile, pipeline: Pipeline, pipelines: Mapping[str, Pipeline], context: KedroContext
) -> list[str]:
    """The storage plan's errors (returned) and warnings (logged: what will be lost)."""
    storage = storage_plan_for(dag, pipeline, pipelines, context.catalog, context.project_path)
    if storage is None:
        return []
    for warning in storage.warnings:
        logger.warning("%s: %s", dag.pipeline_name, warning)
    if not storage.errors:
        return []
    lines = "\n".join(f"  - {error}" for error in storage.errors)
    return [
        f"Pipeline {dag.pipeline_name}: {len(storage.errors)} dataset(s) would be missing or "
        f"lost on GKE, where each pod has its own disk:\n{lines}"
    ]


def _refuse_group_by(params: Mapping[str, Any]) -> None:
    value = params.get("node_grouping")
    if value:
        example = _GROUP_BY_EXAMPLES.get(str(value).lower(), "")
        raise click.UsageError(GROUP_BY_REFUSED.format(value=value, example=example))


def _conf_source_problem(conf_source: str, project_path: Path) -> str | None:
    """Why pods could not read `--conf-source`, or None (a URL, or a path the image holds)."""
    if not conf_source or "://" in conf_source:
        return None
    path = Path(conf_source)
    remedy = (
        "pods run the image's copy of the project, so pass a path relative to the project "
        "that the image holds, or a remote URL (gs://...)"
    )
    if path.is_absolute():
        return f"--conf-source {conf_source} is an absolute path on this machine: {remedy}."
    relative = path.as_posix().removeprefix("./")
    if relative.startswith("../"):
        return f"--conf-source {conf_source} is outside the project: {remedy}."
    image = read_image_filter(project_path)
    if image.source and image.excludes(relative):
        return f"--conf-source {conf_source}: {image.source} leaves it out of the image: {remedy}."
    return None


def _variant_files(
    dags: Sequence[DagFile], params: Mapping[str, Any], project_path: Path
) -> list[VariantFile]:
    """Where kedro-airflow will write each variant DAG, and the name it must get instead."""
    folder = Path(params.get("target_path") or "airflow_dags/")
    folder = folder if folder.is_absolute() else project_path / folder
    files = []
    for dag in dags:
        suffix = variant_suffix(dag.config)
        if suffix:
            base = kedro_airflow_file_name(dag.package_name, dag.env, dag.pipeline_name)
            files.append(VariantFile(folder / base, folder / variant_file_name(base, suffix)))
    return files


def _rename_variants(dags: Sequence[DagFile], params: Mapping[str, Any], path: Path) -> None:
    """Variant DAGs get their own file names once kedro-airflow wrote them (see variants.py)."""
    ctx = click.get_current_context(silent=True)
    files = _variant_files(dags, params, path)
    if ctx is None or not files:
        return
    protect_base_files(files)
    ctx.call_on_close(partial(restore, files))


def plan_notes(dag: DagFile) -> list[str]:
    """What create says about a planned DAG, once each: the plan's warnings, then each group
    whose name is not its task id as it is."""
    plan = dag.plan
    if plan is None:
        return []
    renamed = [
        f"group {group!r} is task {task_id!r} (task ids keep letters, digits, '_', '.', '-')"
        for group, task_id in plan.renamed
    ]
    return [*plan.warnings, *renamed]


def prepare_create(context: KedroContext, params: Mapping[str, Any]) -> None:
    """Plans the pipelines `kedro airflow create` asked for; stops it on any problem.

    Raises:
        click.UsageError: `--group-by`, which the bridge does not use (it says what to use).
        click.ClickException: A pipeline cannot become a DAG (every problem listed); no DAG
            file has been written.
    """
    from kedro.framework import project
    from kedro.framework.project import pipelines

    _refuse_group_by(params)
    conf_problem = _conf_source_problem(params.get("conf_source") or "", context.project_path)
    raw = load_airflow_config(context.config_loader)
    names = (
        list(pipelines)
        if params.get("convert_all")
        else list(params.get("pipeline_names") or ["__default__"])
    )
    errors: list[str] = [conf_problem] if conf_problem else []
    dags: list[DagFile] = []
    tags = list(params.get("tags") or [])
    for name in names:
        pipeline = pipelines.get(name)
        if pipeline is None:
            continue  # kedro-airflow reports unknown pipelines itself
        if tags:
            pipeline = pipeline.only_nodes_with_tags(*tags)
        merged = merge_airflow_config(raw, name, params.get("params"))
        for note in unknown_keys(merged):
            logger.warning(note)
        dag = build_dag_file(
            {
                **merged,
                "pipeline": pipeline,
                "pipeline_name": name,
                "env": params.get("env") or "local",
                "package_name": project.PACKAGE_NAME,
                "conf_source": params.get("conf_source") or "",
            },
            str(context.project_path),
            params.get("params") or {},
            tags,
        )
        dag = with_assets(dag, pipeline, pipelines, context.catalog, str(context.project_path))
        dags.append(dag)
        if dag.error:
            errors.append(dag.error)
        elif dag.plan is not None:
            for note in [*plan_notes(dag), *dag.asset_notes()]:
                logger.warning("%s: %s", name, note)
            errors += _storage_problems(dag, pipeline, pipelines, context)
    if errors:
        # A plain ClickException: Kedro's KedroCliError prints sys.exc_info(), which click
        # 8.2+ no longer holds when it shows the error ("NoneType: None").
        raise click.ClickException("kedro-gcs-bridge: no DAG file written.\n" + "\n".join(errors))
    raw.setdefault("default", {})
    planned = {dag.pipeline_name: dag for dag in dags}
    factory = DagFileFactory(str(context.project_path), params.get("params") or {}, tags, planned)
    raw["default"] = {**raw["default"], CONFIG_KEY: factory}
    context.config_loader["airflow"] = raw
    _rename_variants(dags, params, Path(context.project_path))
