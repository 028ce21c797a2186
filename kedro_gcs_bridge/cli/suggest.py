"""`kedro gcs-bridge suggest`: a `groups:` block from a measured run (see planning/suggest)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import click

from kedro_gcs_bridge.cli import access
from kedro_gcs_bridge.cli.options import (
    emit,
    env_option,
    output_option,
    params_option,
    pipeline_option,
)
from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.planning import suggest as model
from kedro_gcs_bridge.planning.grouping import NodeSpec, group_pipeline, group_tags, node_specs
from kedro_gcs_bridge.planning.machines import memory_bytes
from kedro_gcs_bridge.planning.node_names import generated_text
from kedro_gcs_bridge.planning.plan import node_classes

if TYPE_CHECKING:
    from kedro.framework.startup import ProjectMetadata

    from kedro_gcs_bridge.config import BridgeConfig
    from kedro_gcs_bridge.pod.protocol import Manifest

FORMATS = ("text", "yaml", "json")


@click.command()
@click.option(
    "--from",
    "source",
    required=True,
    help="Run prefix URL of a finished run, or its MLflow parent run: mlflow:<run id>.",
)
@click.option(
    "--mlflow-tracking-uri",
    default=None,
    help="For mlflow:<run id>. Default: $MLFLOW_TRACKING_URI, else airflow.yml's.",
)
@pipeline_option
@env_option
@params_option
@click.option(
    "--pod-start",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds [the run's measured median, else 60].",
)
@click.option(
    "--kedro-start", type=click.FloatRange(min=0), default=None, help="`kedro run` start, s [5]."
)
@click.option(
    "--round-trip-ms", type=click.FloatRange(min=0), default=None, help="One GCS request [40]."
)
@click.option("--objective", type=click.Choice(model.OBJECTIVES), default="time", show_default=True)
@click.option("--max-memory", default=None, help="Bytes of data a group may touch (16Gi).")
@click.option("--allow-mixed", is_flag=True, help="Let a group mix machine classes.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@output_option
@click.pass_obj
def suggest(
    metadata: ProjectMetadata,
    source: str,
    mlflow_tracking_uri: str | None,
    pipeline_name: str,
    env: str,
    params: dict[str, Any],
    pod_start: float | None,
    kedro_start: float | None,
    round_trip_ms: float | None,
    objective: str,
    max_memory: str | None,
    allow_mixed: bool,
    fmt: str,
    output: Path | None,
) -> None:
    """Suggest `groups:` from a measured run: fewer pods where they cost more than they give."""
    bound = _max_memory(max_memory)
    nodes, config, group_of, persisted = _suggest_inputs(metadata, pipeline_name, env, params)
    tagged = _tag_groups(nodes, config)
    # What is said about the inputs goes to stderr for the machine-readable formats.
    said: list[str] = []
    tracking_uri = mlflow_tracking_uri or access.tracking_uri_from_env()
    url = _run_prefix(source, tracking_uri or config.mlflow.tracking_uri, said)
    url = _replay_copy(url, access.local_runs_root(metadata), said)
    read_from = len(said)  # where the text format says how many manifests it read
    manifests = _manifests(url)
    figures = model.figures_from_manifests(manifests, persisted, [n.name for n in nodes])
    pod_start, kedro_start, pod_start_from = model.pod_start_choice(
        pod_start, kedro_start, manifests
    )
    cost = model.cost_model(pod_start, kedro_start, round_trip_ms)
    said.append(f"pod start: {cost.pod_start_s:.1f} s ({pod_start_from})")
    said += _catalog_reads_text(model.unsized_catalog_reads(nodes, persisted))
    classes = node_classes(nodes, config)
    result = model.suggest_groups(
        nodes, figures.measurements, classes, group_of, cost, objective, allow_mixed, bound, tagged
    )
    if fmt != "text":
        for line in said:
            click.echo(line, err=True)
        for line in figures.incomplete():
            click.secho(line, err=True, fg="yellow")
        emit(_render(fmt, result, cost, figures, said), output, machine_readable=True)
        return
    said[read_from:read_from] = [
        f"{figures.tasks} task manifest(s) read from {url}",
        *figures.incomplete(),
    ]
    block = model.groups_block(result.suggested.groups)
    named = generated_text(nodes, (name for found in block.values() for name in found))
    emit(_render(fmt, result, cost, figures, said) + named, output, machine_readable=False)


def _render(
    fmt: str,
    result: model.Suggestion,
    cost: model.CostModel,
    figures: model.RunFigures,
    said: list[str],
) -> str:
    """The suggestion in one of `FORMATS` (text: after what was said about the inputs)."""
    if fmt == "json":
        run = {
            "missing_tasks": list(figures.missing_tasks),
            "unmeasured_nodes": list(figures.unmeasured_nodes),
        }
        payload = result.to_json() | {"model": cost.to_json(), "run": run}
        return json.dumps(payload, indent=2) + "\n"
    if fmt == "yaml":
        return model.groups_yaml(result.suggested.groups)
    lines = list(said)
    if figures.estimated_nodes:
        count = len(figures.estimated_nodes)
        lines.append(f"no node timings for {count} node(s): their group's time split evenly")
    return "\n".join(lines) + "\n" + model.suggestion_text(result, cost)


def _catalog_reads_text(names: tuple[str, ...]) -> list[str]:
    """What suggest says of the datasets nodes read from the catalog's own storage: no size,
    rather than 0 B (none: nothing)."""
    if not names:
        return []
    return [
        f"note: {len(names)} dataset(s) are read from the catalog's own storage (gs:// or "
        "disk), not through the run prefix: the run measured no size for them, so 'bytes via "
        f"GCS' leaves them out; they cost every grouping the same: {', '.join(names)}"
    ]


def _suggest_inputs(
    metadata: ProjectMetadata, pipeline_name: str, env: str, params: dict[str, Any]
) -> tuple[list[NodeSpec], BridgeConfig, dict[str, str], frozenset[str]]:
    """The pipeline's nodes, its config, its current groups and its persisted datasets."""
    raw, catalog = access.load_project(metadata, env)
    found = access.pipeline(pipeline_name)
    config = access.bridge_config(raw, pipeline_name, params)
    nodes = node_specs(found)
    grouping = group_pipeline(
        pipeline_name, nodes, config.grouping_prefix, config.grouping, config.groups
    )
    persisted = access.persisted_datasets(catalog, found)
    return nodes, config, dict(grouping.group_of), persisted


def _tag_groups(nodes: list[NodeSpec], config: BridgeConfig) -> dict[str, str]:
    """Node -> the group its one `airflow.<group>` tag asks for (none with grouping off)."""
    if not config.grouping:
        return {}
    found = {node.name: group_tags(node, config.grouping_prefix) for node in nodes}
    return {name: tags[0] for name, tags in found.items() if len(tags) == 1 and tags[0]}


def _max_memory(given: str | None) -> float | None:
    """`--max-memory` in bytes (None: no bound).

    Raises:
        click.BadParameter: Not a memory quantity.
    """
    if not given:
        return None
    try:
        return memory_bytes(given)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="'--max-memory'") from exc


def _run_prefix(source: str, tracking_uri: str | None, said: list[str]) -> str:
    """The run prefix `--from` names: the URL given, or the one the MLflow parent run records
    (tag `kedro_gcs_bridge.run_prefix`), found at `tracking_uri` (`--mlflow-tracking-uri`,
    else `$MLFLOW_TRACKING_URI`, else airflow.yml's `mlflow_tracking_uri`)."""
    run_id = model.mlflow_run_id(source)
    if run_id is None:
        return source
    if not tracking_uri:
        raise click.ClickException(
            f"--from {source} names MLflow run {run_id}, but no tracking URI is set: pass "
            "--mlflow-tracking-uri, set MLFLOW_TRACKING_URI or `mlflow_tracking_uri` in "
            "airflow.yml, or pass the run prefix URL instead."
        )
    from kedro_gcs_bridge.tracking.tracker import parent_run_prefix

    prefix = parent_run_prefix(tracking_uri, run_id)
    said.append(f"run prefix of MLflow run {run_id}: {prefix}")
    return prefix


def _replay_copy(url: str, local_root: str, said: list[str]) -> str:
    """The run prefix to read: a run on the emulator `replay --emulator` started (and stopped
    at its end) is read from the copy replay kept in the project's runs folder, unless
    `STORAGE_EMULATOR_HOST` names a live emulator; gcsfs would otherwise look for it on GCS.

    Raises:
        click.ClickException: Replay kept no copy of that run here.
    """
    from kedro_gcs_bridge.ops.emulator import EMULATOR_HOST_ENV
    from kedro_gcs_bridge.planning.naming import replay_emulator_copy

    copy = replay_emulator_copy(url, local_root)
    if copy is None or os.environ.get(EMULATOR_HOST_ENV):
        return url
    if not Path(unquote(urlsplit(copy).path)).is_dir():
        raise click.ClickException(
            f"run prefix {url} is on replay's emulator bucket and {EMULATOR_HOST_ENV} is not "
            f"set, so no emulator is named to read it from; replay keeps a copy ({copy}) only "
            f"of runs on an emulator it started and stopped. Set {EMULATOR_HOST_ENV} to the "
            "emulator that holds the run, or replay again from this project."
        )
    said.append(f"read from replay's copy of it (its emulator is gone): {copy}")
    return copy


def _manifests(url: str) -> list[Manifest]:
    manifests = access.read_manifests(url, "suggest")
    if not manifests:
        raise click.ClickException(
            f"no manifest under {url}/manifests: pass the run prefix of a finished run "
            "(<root>/<dag_id>/<run_id>, see `kedro gcs-bridge runs list`)."
        )
    return manifests
