"""`kedro gcs-bridge plan | validate`: a pipeline's task plan, and whether pipelines would
become valid DAGs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kedro_gcs_bridge.cli import access
from kedro_gcs_bridge.cli.options import (
    emit,
    env_option,
    output_option,
    params_option,
    pipeline_option,
)
from kedro_gcs_bridge.dag.dockerfile_check import dockerfile_warnings
from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.planning.grouping import node_specs
from kedro_gcs_bridge.planning.node_names import generated_text
from kedro_gcs_bridge.planning.storage import remedies_once, storage_text
from kedro_gcs_bridge.planning.views import FORMATS, render_plan

if TYPE_CHECKING:
    from kedro.framework.startup import ProjectMetadata

    from kedro_gcs_bridge.planning.pod_world import PodConfig


@click.command()
@pipeline_option
@env_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@params_option
@output_option
@click.pass_obj
def plan(
    metadata: ProjectMetadata,
    pipeline_name: str,
    env: str,
    fmt: str,
    params: dict[str, Any],
    output: Path | None,
) -> None:
    """Print the Airflow tasks of a pipeline: nodes, machine class, upstream, crossing data."""
    (dag,), catalog, _, pods = access.dag_files(metadata, [pipeline_name], env, params)
    if dag.plan is None:
        raise click.ClickException(dag.error or "no plan")
    _pod_warnings(metadata, dag, pods)
    storage = access.storage_plan(metadata, dag, catalog)
    notes = storage.local_disk_edges() if storage is not None else {}
    text = render_plan(dag.plan, fmt, notes)
    if fmt == "text" and storage is not None:
        text += "\n" + storage_text(storage)
    if fmt == "text":
        planned = (name for task in dag.plan.tasks for name in task.nodes)
        text += generated_text(node_specs(access.pipeline(pipeline_name)), planned)
    emit(text, output, machine_readable=fmt != "text")


def _pod_warnings(metadata: ProjectMetadata, dag: Any, pods: PodConfig) -> None:
    """What validate would refuse about the pods' config, as warnings on stderr (plan's
    stdout may be machine-readable)."""
    from kedro_gcs_bridge.dag.create import parameter_problems, pod_env_problem

    env_gap = pod_env_problem(pods, metadata.project_path, [dag])
    lines = [env_gap] if env_gap else []
    lines += parameter_problems(dag, access.pipeline(dag.pipeline_name), pods)
    for line in lines:
        click.secho(f"warning: {line}", fg="yellow", err=True)


@click.command()
@click.option(
    "-p", "--pipeline", "pipeline_names", multiple=True, help="Default: every registered one."
)
@env_option
@params_option
@click.pass_obj
def validate(
    metadata: ProjectMetadata, pipeline_names: tuple[str, ...], env: str, params: dict[str, Any]
) -> None:
    """Check pipelines would become valid DAGs; exit 1 on any error."""
    names = list(pipeline_names) or access.pipeline_names()
    files, catalog, raw, pods = access.dag_files(metadata, names, env, params)
    from kedro_gcs_bridge.dag.create import pod_env_problem  # needs the `dag` extra

    env_gap = pod_env_problem(pods, metadata.project_path, files)
    if env_gap:
        raise ConfigError(env_gap)
    for warning in dockerfile_warnings(metadata.project_path, env):
        click.secho(f"warning: {warning}", fg="yellow")
    failed = False
    errors: dict[str, list[str]] = {}  # a storage problem -> the pipelines it affects
    warnings: dict[str, list[str]] = {}
    for name, dag in zip(names, files, strict=True):
        for note in access.config_warnings(raw, name, params):
            click.secho(f"{name}: warning: {note}", fg="yellow")
        failed |= not _report(metadata, name, dag, catalog, pods, (errors, warnings))
    for line in _once([f"warning: {warning}" for warning in warnings], warnings):
        click.secho(line, fg="yellow")
    for line in _once(remedies_once(list(errors)), errors):
        click.secho(line, fg="red")
    if failed:
        raise click.exceptions.Exit(1)


def _once(lines: list[str], by: dict[str, list[str]]) -> list[str]:
    """Lines of problems several pipelines share, each said once after the pipelines it
    affects (`a, b: error: ...`); remedy lines as they are."""
    owners: dict[str, list[str]] = {}
    for text, pipelines in by.items():
        problem = text.partition(". Remedy: ")[0]
        for said in (text, f"{problem}."):
            owners[f"error: {said}"] = owners[f"warning: {said}"] = pipelines
    return [f"{', '.join(owners[line])}: {line}" if line in owners else line for line in lines]


def _report(
    metadata: ProjectMetadata,
    name: str,
    dag: Any,
    catalog: Any,
    pods: PodConfig,
    shared: tuple[dict[str, list[str]], dict[str, list[str]]],
) -> bool:
    """Says what is wrong with one pipeline's DAG; True when it is valid. Its storage errors
    and warnings go to `shared` (problem -> pipelines), to be said once for all pipelines; its
    missing parameters are its own."""
    if dag.error:
        click.secho(f"{name}: ERROR\n{dag.error}", fg="red")
        return False
    if dag.plan is None:  # build_dag_file sets either a plan or an error
        raise click.ClickException(f"{name}: no plan and no error")
    storage = access.storage_plan(metadata, dag, catalog)
    for warning in dag.plan.warnings:
        click.secho(f"{name}: warning: {warning}", fg="yellow")
    errors, warnings = shared
    for warning in storage.warnings if storage is not None else ():
        warnings.setdefault(warning, []).append(name)
    from kedro_gcs_bridge.dag.create import parameter_problems  # needs the `dag` extra

    missing = parameter_problems(dag, access.pipeline(name), pods)
    stored = list(storage.errors) if storage is not None else []
    for error in stored:
        errors.setdefault(error, []).append(name)
    if stored or missing:
        count = f" ({len(stored)} storage problem(s), said below)" if stored else ""
        click.secho(f"{name}: ERROR{count}", fg="red")
        for line in missing:
            click.secho(f"{name}: {line}", fg="red")
        return False
    click.secho(f"{name}: ok, {len(dag.plan.tasks)} task(s)", fg="green")
    return True
