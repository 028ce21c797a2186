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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from kedro_gcs_bridge.dag.dagfile import DagFileFactory, build_dag_file
from kedro_gcs_bridge.planning.config import merge_airflow_config, unknown_keys

if TYPE_CHECKING:
    from kedro.config import AbstractConfigLoader
    from kedro.framework.context import KedroContext

logger = logging.getLogger(__name__)

CONFIG_KEY = "gcs_bridge"


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


def prepare_create(context: KedroContext, params: Mapping[str, Any]) -> None:
    """Plans the pipelines `kedro airflow create` asked for; stops it on any problem.

    Raises:
        click.ClickException: A pipeline cannot become a DAG (every problem listed); no DAG
            file has been written.
    """
    from kedro.framework import project
    from kedro.framework.project import pipelines

    raw = load_airflow_config(context.config_loader)
    names = (
        list(pipelines)
        if params.get("convert_all")
        else list(params.get("pipeline_names") or ["__default__"])
    )
    errors: list[str] = []
    for name in names:
        pipeline = pipelines.get(name)
        if pipeline is None:
            continue  # kedro-airflow reports unknown pipelines itself
        tags = params.get("tags") or []
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
        )
        if dag.error:
            errors.append(dag.error)
        elif dag.plan is not None:
            for warning in dag.plan.warnings:
                logger.warning("%s: %s", name, warning)
    if errors:
        # A plain ClickException: Kedro's KedroCliError prints sys.exc_info(), which click
        # 8.2+ no longer holds when it shows the error ("NoneType: None").
        raise click.ClickException("kedro-gcs-bridge: no DAG file written.\n" + "\n".join(errors))
    raw.setdefault("default", {})
    raw["default"] = {**raw["default"], CONFIG_KEY: DagFileFactory(str(context.project_path))}
    context.config_loader["airflow"] = raw
