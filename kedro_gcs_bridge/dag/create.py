"""What `kedro airflow create` does with kedro-gcs-bridge: plan first, then hand the template
a `DagFileFactory`.

Called by the Kedro hook (`kedro_gcs_bridge/hooks.py`) only under `kedro airflow create` with
the bridge's template: it loads the `airflow` config like kedro-airflow, plans every requested
pipeline and stops the command with the problems found *before* kedro-airflow opens any DAG
file; then it adds `gcs_bridge` (a `DagFileFactory`) to the config so the template can render
the plan.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kedro_gcs_bridge.config import merge_airflow_config, section_problems, unknown_keys
from kedro_gcs_bridge.dag.dagfile import DagFile, DagFileFactory, build_dag_file
from kedro_gcs_bridge.dag.dockerfile_check import dockerfile_warnings
from kedro_gcs_bridge.dag.storage_check import (
    PipelineFacts,
    pipeline_facts,
    planning_catalog,
    read_image_filter,
    storage_entries,
    storage_plan_for,
    with_assets,
)
from kedro_gcs_bridge.dag.variants import (
    VariantFile,
    kedro_airflow_file_name,
    protect_base_files,
    restore,
    variant_file_name,
    variant_suffix,
)
from kedro_gcs_bridge.planning.grouping import (
    PARAMS_PREFIX,
    NodeSpec,
    node_specs,
    registered_node_specs,
)
from kedro_gcs_bridge.planning.pod_world import (
    CONFIG_SUFFIXES,
    PodConfig,
    env_problem,
    missing_parameters,
    parameter_names,
    runtime_parameter_names,
)

if TYPE_CHECKING:
    from kedro.config import AbstractConfigLoader
    from kedro.framework.context import KedroContext
    from kedro.pipeline import Pipeline

    from kedro_gcs_bridge.planning.storage import StorageEntry

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


def _config_files(folder: Path, project_path: Path) -> list[str]:
    """Project-relative config files under a conf env folder (none when it is missing)."""
    if not folder.is_dir():
        return []
    return sorted(
        path.relative_to(project_path).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and path.suffix in CONFIG_SUFFIXES
    )


def pod_config(
    context: KedroContext, env: str, conf_source: str = "", read_parameters: bool = True
) -> PodConfig:
    """The config a DAG's pods run with: the env, its config files (those of the base env
    too) and the parameters it defines, read from the project on this machine.

    Args:
        context: The Kedro context of `env`.
        env: The env of the DAG's pods.
        conf_source: `--conf-source` of `kedro airflow create`, which the pods read: a
            remote one holds the config, so no file of the image is checked.
        read_parameters: Read the env's parameters (False where no node reads a `params:`
            input: then none is checked, and Kedro's parameter validation is not paid).
    """
    project = Path(context.project_path)
    loader = context.config_loader
    parameters = parameter_names(context.params) if read_parameters else frozenset()
    if "://" in conf_source:
        return PodConfig(env, "", (), parameters)
    root = Path(conf_source or getattr(loader, "conf_source", None) or project / "conf")
    root = root if root.is_absolute() else project / root
    try:
        conf_root = root.relative_to(project).as_posix()
    except ValueError:
        return PodConfig(env, "", (), parameters)
    base = str(getattr(loader, "base_env", None) or "base")
    files = [*_config_files(root / base, project), *_config_files(root / env, project)]
    elsewhere = _parameters_elsewhere(root, {base, env}, project) if read_parameters else {}
    return PodConfig(env, conf_root, tuple(dict.fromkeys(files)), parameters, elsewhere)


def _reads_parameters(pipelines: Iterable[Pipeline]) -> bool:
    """Whether a node of the pipelines reads a `params:` input."""
    return any(
        dataset.startswith(PARAMS_PREFIX)
        for pipeline in pipelines
        for node in pipeline.nodes
        for dataset in node.inputs
    )


def _parameters_elsewhere(root: Path, read: set[str], project: Path) -> dict[str, str]:
    """`params:` name -> a parameters file of an env the pods do not read that defines it
    (for the hint; YAML read as it is, without Kedro's resolvers)."""
    import yaml

    found: dict[str, str] = {}
    folders = sorted(root.iterdir()) if root.is_dir() else []
    for folder in (path for path in folders if path.is_dir() and path.name not in read):
        for relative in _config_files(folder, project):
            if not any(part.startswith("parameters") for part in relative.split("/")[-2:]):
                continue
            try:
                loaded = yaml.safe_load((project / relative).read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                continue
            if isinstance(loaded, Mapping):
                for name in parameter_names(loaded):
                    found.setdefault(name, relative)
    return found


def pod_env_problem(
    pods: PodConfig, project_path: str | Path, dags: Sequence[DagFile]
) -> str | None:
    """Why the pods' env is not in the image built from the project, or None (also when no
    DAG runs pods: a `pod_backend: local` DAG runs the project where Airflow runs)."""
    if all(dag.local for dag in dags):
        return None
    return env_problem(pods, read_image_filter(Path(project_path)))


def parameter_problems(
    dag: DagFile, pipeline: Pipeline, pods: PodConfig, nodes: list[NodeSpec] | None = None
) -> list[str]:
    """One line per `params:` input of a task that the pods' env does not define (a DAG
    param, which every pod gets through `kedro run --params`, counts as defined).

    Args:
        dag: The planned DAG.
        pipeline: The pipeline it was planned from.
        pods: The config the pods run with.
        nodes: `node_specs(pipeline)`, where the caller has them already.
    """
    if dag.plan is None:
        return []
    defined = pods.parameters | runtime_parameter_names(dag.config.dag.params)
    return missing_parameters(
        dag.plan.tasks,
        node_specs(pipeline) if nodes is None else nodes,
        replace(pods, parameters=defined),
    )


def _storage_problems(
    dag: DagFile,
    pipeline: Pipeline,
    entries: Sequence[StorageEntry] | None,
    project_path: Path,
) -> list[str]:
    """The storage plan's errors (returned) and warnings (logged: what will be lost)."""
    storage = storage_plan_for(dag, pipeline, {}, None, project_path, entries=entries or ())
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


def _dag_problems(
    dag: DagFile,
    pipeline: Pipeline,
    facts: PipelineFacts,
    entries: Sequence[StorageEntry] | None,
    project_path: Path,
    pods: PodConfig,
    reads_parameters: bool = True,
) -> list[str]:
    """What stops one planned DAG (its plan's notes and storage warnings are logged);
    `reads_parameters` False where no node reads a `params:` input (nothing to check)."""
    if dag.error:
        return [dag.error]
    if dag.plan is None:
        return []
    for note in [*plan_notes(dag), *dag.asset_notes()]:
        logger.warning("%s: %s", dag.pipeline_name, note)
    errors = _storage_problems(dag, pipeline, entries, project_path)
    lines = parameter_problems(dag, pipeline, pods, facts.nodes) if reads_parameters else []
    return errors + [f"Pipeline {dag.pipeline_name}: {line}" for line in lines]


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


def _request_problems(
    names: Sequence[str], raw: Mapping[str, Any], registered: Sequence[str]
) -> list[str]:
    """The problems of the pipelines asked for and of the airflow config file's sections; its
    sections nothing reads are logged."""
    sections, notes = section_problems(raw, registered)
    for note in notes:
        logger.warning("kedro-gcs-bridge: %s", note)
    return _unknown_pipelines(names, registered) + sections


def _unknown_pipelines(names: Sequence[str], registered: Sequence[str]) -> list[str]:
    """A problem for each `-p` name no pipeline is registered under. kedro-airflow would stop
    on it too, but click 8.2+ loses its message (it prints "NoneType: None")."""
    known = sorted(registered)
    problems = []
    for name in names:
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        problems.append(
            f"pipeline '{name}' is not registered{hint}; registered: {', '.join(known)}. "
            "Pass one of them to -p/--pipelines, or --all."
        )
    return problems


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
    env = params.get("env") or "local"
    requested = [pipelines[name] for name in names if pipelines.get(name) is not None]
    reads_parameters = _reads_parameters(requested)
    pods = pod_config(context, env, params.get("conf_source") or "", reads_parameters)
    errors = [conf_problem] if conf_problem else []
    errors += _request_problems(names, raw, list(pipelines))
    for warning in dockerfile_warnings(context.project_path, env):
        logger.warning("kedro-gcs-bridge: %s", warning)
    dags: list[DagFile] = []
    tags = list(params.get("tags") or [])
    registered: list[NodeSpec] = []
    catalog = planning_catalog(context)
    for name in names:
        pipeline = pipelines.get(name)
        if pipeline is None:
            continue  # said by _unknown_pipelines
        if tags:
            pipeline = pipeline.only_nodes_with_tags(*tags)
        merged = merge_airflow_config(raw, name, params.get("params"))
        for note in unknown_keys(merged):
            logger.warning(note)
        variables = {
            **merged,
            "pipeline": pipeline,
            "pipeline_name": name,
            "env": env,
            "package_name": project.PACKAGE_NAME,
            "conf_source": params.get("conf_source") or "",
        }
        path = str(context.project_path)
        nodes = node_specs(pipeline)
        plan_with = partial(build_dag_file, variables, path, params.get("params") or {}, tags)
        dag = plan_with((), nodes)
        if dag.config.groups:  # its warnings name entries that take no node of any pipeline
            registered = registered or registered_node_specs(pipelines.values())
            dag = plan_with(registered, nodes)
        facts = pipeline_facts(name, pipeline, pipelines, catalog, nodes)
        entries = storage_entries(dag, facts, path)  # once, for the assets and the checks
        dag = with_assets(dag, pipeline, pipelines, catalog, path, facts, entries)
        dags.append(dag)
        errors += _dag_problems(
            dag, pipeline, facts, entries, context.project_path, pods, reads_parameters
        )
    env_gap = pod_env_problem(pods, context.project_path, dags)
    errors = ([env_gap] if env_gap else []) + errors
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
