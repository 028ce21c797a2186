"""`kedro gcs-bridge ...`: set a project up (init), print its task plan (plan), check it (validate).

Registered as a Kedro project command through the `kedro.project_commands` entry point.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kedro_gcs_bridge.planning.views import FORMATS

if TYPE_CHECKING:
    from kedro.framework.startup import ProjectMetadata

    from kedro_gcs_bridge.dag.dagfile import DagFile
    from kedro_gcs_bridge.dag.isolation import TaskDirs
    from kedro_gcs_bridge.planning.storage import StoragePlan

DEFAULT_PIPELINE = "__default__"
DEFAULT_ENV = "local"


def _resource(name: str) -> Path:
    """A file shipped with the package (wheel) or, in a source checkout, from the repo root."""
    packaged = Path(__file__).parent / "_resources" / name
    return packaged if packaged.exists() else Path(__file__).resolve().parents[1] / name


def init_files() -> list[tuple[Path, str]]:
    """(source, destination relative to the project) for every file `init` copies."""
    files = [
        (_resource("templates") / "gcs_bridge.j2", "templates/gcs_bridge.j2"),
        (Path(__file__).parent / "project_files" / "airflow.yml", "conf/base/airflow.yml"),
    ]
    docker = _resource("docker")
    files += [
        (source, f"docker/{source.relative_to(docker)}")
        for source in sorted(docker.rglob("*"))
        if source.is_file()
    ]
    return files


def copy_init_files(project_path: Path, force: bool) -> tuple[list[str], list[str]]:
    """Copies the init files into a project; returns (written, skipped because they exist)."""
    written, skipped = [], []
    for source, relative in init_files():
        target = project_path / relative
        if target.exists() and not force:
            skipped.append(relative)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(relative)
    return written, skipped


def _split_params(ctx: click.Context, param: Any, value: str) -> dict[str, Any]:
    from kedro.framework.cli.utils import _split_params as kedro_split_params

    return kedro_split_params(ctx, param, value)


def _load_project(metadata: ProjectMetadata, env: str) -> tuple[dict[str, Any], Any]:
    """The raw airflow config and the catalog of the project, for an env.

    Kedro's own INFO logs and deprecation warnings are held back meanwhile: these commands
    print plans and graphs that users redirect into files.
    """
    from kedro_gcs_bridge.dag.create import load_airflow_config

    with _quiet_context(metadata, env) as context:
        return load_airflow_config(context.config_loader), context.catalog


@contextlib.contextmanager
def _quiet_context(metadata: ProjectMetadata, env: str | None = None) -> Iterator[Any]:
    """The project's KedroContext, with Kedro's INFO logs and deprecation warnings held back."""
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


#: What the DAG-writing commands import beyond the pod's install (the `dag` extra).
_DAG_EXTRA_MODULES = ("jinja2", "slugify")


def _require_dag_extra() -> None:
    """Fails with the install command when the `dag` extra is missing (a pod's image)."""
    import importlib.util

    missing = [name for name in _DAG_EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(
            f"this command plans DAGs and needs {missing}, which a pod's install leaves out: "
            "pip install 'kedro-gcs-bridge[dag]'"
        )


def _dag_files(
    metadata: ProjectMetadata, names: Iterable[str], env: str, params: dict[str, Any]
) -> tuple[list[DagFile], Any]:
    from kedro.framework.project import pipelines

    _require_dag_extra()
    from kedro_gcs_bridge.dag.dagfile import build_dag_file
    from kedro_gcs_bridge.planning.config import merge_airflow_config

    raw, catalog = _load_project(metadata, env)
    files = []
    for name in names:
        pipeline = pipelines.get(name)
        if pipeline is None:
            raise click.ClickException(
                f"Pipeline {name} not found; registered: {sorted(pipelines)}."
            )
        variables = {
            **merge_airflow_config(raw, name, params),
            "pipeline": pipeline,
            "pipeline_name": name,
            "env": env,
            "package_name": metadata.package_name,
        }
        files.append(build_dag_file(variables, str(metadata.project_path)))
    return files, catalog


def _storage_plan(metadata: ProjectMetadata, dag: DagFile, catalog: Any) -> StoragePlan | None:
    """The storage plan of a planned DAG (None for the local backend)."""
    from kedro.framework.project import pipelines

    from kedro_gcs_bridge.dag.storage_check import storage_plan_for

    pipeline = pipelines[dag.pipeline_name]
    return storage_plan_for(dag, pipeline, pipelines, catalog, metadata.project_path)


@click.group(name="kedro-gcs-bridge")
def commands() -> None:
    """kedro-gcs-bridge commands."""


@commands.group(name="gcs-bridge")
def gcs_bridge() -> None:
    """Run a Kedro project on Airflow + GKE, one pod per node group, data through GCS."""


@gcs_bridge.command()
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@click.pass_obj
def init(metadata: ProjectMetadata, force: bool) -> None:
    """Copy the DAG template, a commented conf/base/airflow.yml and docker/ into the project."""
    written, skipped = copy_init_files(Path(metadata.project_path), force)
    for relative in written:
        click.secho(f"wrote   {relative}", fg="green")
    for relative in skipped:
        click.secho(f"skipped {relative} (exists; --force overwrites it)", fg="yellow")
    click.echo(
        "Next: tag nodes airflow.<group> / machine.<class>, fill conf/base/airflow.yml, then "
        "`kedro gcs-bridge plan` and `kedro airflow create -j templates/gcs_bridge.j2`."
    )


@gcs_bridge.command()
@click.option("-p", "--pipeline", "pipeline_name", default=DEFAULT_PIPELINE, show_default=True)
@click.option("-e", "--env", default=DEFAULT_ENV, show_default=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--params", default="", callback=_split_params, help="Config overrides k=v,...")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file."
)
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
    from kedro_gcs_bridge.planning.storage import storage_text
    from kedro_gcs_bridge.planning.views import render_plan

    (dag,), catalog = _dag_files(metadata, [pipeline_name], env, params)
    if dag.plan is None:
        raise click.ClickException(dag.error or "no plan")
    storage = _storage_plan(metadata, dag, catalog)
    notes = storage.local_disk_edges() if storage is not None else {}
    text = render_plan(dag.plan, fmt, notes)
    if fmt == "text" and storage is not None:
        text += "\n" + storage_text(storage)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")


@gcs_bridge.command()
@click.option(
    "-p", "--pipeline", "pipeline_names", multiple=True, help="Default: every registered one."
)
@click.option("-e", "--env", default=DEFAULT_ENV, show_default=True)
@click.option("--params", default="", callback=_split_params, help="Config overrides k=v,...")
@click.pass_obj
def validate(
    metadata: ProjectMetadata, pipeline_names: tuple[str, ...], env: str, params: dict[str, Any]
) -> None:
    """Check pipelines would become valid DAGs; exit 1 on any error."""
    from kedro.framework.project import pipelines

    from kedro_gcs_bridge.planning.config import merge_airflow_config, unknown_keys
    from kedro_gcs_bridge.planning.storage import remedies_once

    names = list(pipeline_names) or sorted(pipelines)
    files, catalog = _dag_files(metadata, names, env, params)
    raw, _ = _load_project(metadata, env)
    failed = False
    for name, dag in zip(names, files, strict=True):
        for note in unknown_keys(merge_airflow_config(raw, name, params)):
            click.secho(f"{name}: warning: {note}", fg="yellow")
        if dag.error:
            failed = True
            click.secho(f"{name}: ERROR\n{dag.error}", fg="red")
            continue
        if dag.plan is None:  # build_dag_file sets either a plan or an error
            raise click.ClickException(f"{name}: no plan and no error")
        storage = _storage_plan(metadata, dag, catalog)
        storage_warnings = storage.warnings if storage is not None else ()
        for warning in (*dag.plan.warnings, *storage_warnings):
            click.secho(f"{name}: warning: {warning}", fg="yellow")
        if storage is not None and storage.errors:
            failed = True
            click.secho(f"{name}: ERROR", fg="red")
            for line in remedies_once(storage.errors):
                click.secho(f"{name}: {line}", fg="red")
            continue
        click.secho(f"{name}: ok, {len(dag.plan.tasks)} task(s)", fg="green")
    if failed:
        raise click.exceptions.Exit(1)


def _catalog_sources(metadata: ProjectMetadata) -> tuple[dict[str, Any], list[str], Path]:
    """The catalog config of the default env, its raw inputs' local paths, the conf folder."""
    from kedro.framework.project import pipelines, settings

    from kedro_gcs_bridge.dag.catalog_env import project_relative
    from kedro_gcs_bridge.planning.grouping import is_parameter
    from kedro_gcs_bridge.planning.storage import Where
    from kedro_gcs_bridge.pod.catalog import catalog_locations

    with _quiet_context(metadata) as context:
        config = dict(context.config_loader["catalog"])
        made = {out for pipe in pipelines.values() for out in pipe.all_outputs()}
        needed = {name for pipe in pipelines.values() for name in pipe.inputs()}
        raw = sorted(name for name in needed - made if not is_parameter(name))
        located = catalog_locations(context.catalog, raw)
    project = str(metadata.project_path)
    paths = [
        relative
        for location in located.values()
        if location.where is Where.LOCAL and location.path is not None
        if (relative := project_relative(location.path, project)) is not None
    ]
    return config, paths, Path(metadata.project_path) / settings.CONF_SOURCE


@gcs_bridge.command()
@click.option("--root", required=True, help="gs://bucket[/path] to move local-disk data under.")
@click.option("-e", "--env", "target_env", default="gcs", show_default=True, help="Env to write.")
@click.option("--force", is_flag=True, help="Overwrite conf/<env>/catalog.yml if it exists.")
@click.pass_obj
def catalog(metadata: ProjectMetadata, root: str, target_env: str, force: bool) -> None:
    """Write conf/<env>/catalog.yml: every local-disk catalog entry, its filepath on GCS."""
    from kedro_gcs_bridge.dag.catalog_env import catalog_env, check_env, parse_root, upload_commands
    from kedro_gcs_bridge.errors import CatalogEnvError

    try:
        root, target_env = parse_root(root), check_env(target_env)
    except CatalogEnvError as exc:
        raise click.UsageError(str(exc)) from exc
    config, raw_paths, conf = _catalog_sources(metadata)
    target = conf / target_env / "catalog.yml"
    shown = target.relative_to(metadata.project_path)
    if target.exists() and not force:
        raise click.ClickException(f"{shown} exists; --force overwrites it.")
    env = catalog_env(config, root, str(metadata.project_path))
    for name, path in env.outside.items():
        click.secho(f"left alone: {name} ({path} is outside the project)", fg="yellow")
    if not env.entries:
        click.echo("No catalog entry is on local disk: nothing to write.")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(env.yaml(root, target_env), encoding="utf-8")
    click.secho(f"wrote {shown}: {len(env.entries)} local-disk entries moved to {root}", fg="green")
    for name, (old, new) in env.moved.items():
        click.echo(f"  {name}: {old} -> {new}")
    commands = upload_commands(raw_paths, root)
    if commands:
        click.echo("Upload the raw inputs:")
        click.echo("".join(f"  {command}\n" for command in commands), nl=False)
    click.echo(f"Next: kedro airflow create -j templates/gcs_bridge.j2 -e {target_env}")


@gcs_bridge.command()
@click.argument("dag_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--prefix",
    "root",
    default=None,
    help="Local root for run prefixes (fsspec URL). Default: file://<project>/.gcs-bridge-runs",
)
@click.option("--parallel", default=2, show_default=True, help="Independent tasks run at once.")
@click.option("--run-id", default=None, help="Airflow run id to render. Default: manual__<now>.")
@click.option(
    "--task", "only", multiple=True, help="Re-run just this task (repeatable), as a cleared task."
)
@click.option(
    "--emulator",
    is_flag=True,
    help="Start a local GCS emulator for this replay and hand data over through it (gs://).",
)
@click.option(
    "--tracking-uri",
    default=None,
    help="Track into this MLflow store instead of the DAG's (sqlite:///mlflow.db works here).",
)
@click.option(
    "--shared-dir",
    is_flag=True,
    help="Run every task in the project folder itself, not in its own copy as a pod would.",
)
@click.option(
    "--keep-task-dirs",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Make each task's copy of the project under this folder and keep it.",
)
@click.option(
    "--pod-start-delay",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Seconds each task waits before its process starts, as a pod start would.",
)
@click.pass_obj
def replay(
    metadata: ProjectMetadata,
    dag_file: Path,
    root: str | None,
    parallel: int,
    run_id: str | None,
    only: tuple[str, ...],
    emulator: bool,
    tracking_uri: str | None,
    shared_dir: bool,
    keep_task_dirs: Path | None,
    pod_start_delay: float,
) -> None:
    """Run a generated DAG's tasks here, each as its own process, in dependency order.

    Each task runs in its own fresh copy of the project as the image holds it (the docker
    ignore file decides), with its own HOME and temp dir, as a GKE pod does; --shared-dir
    runs them all in the project folder instead.
    """
    tracking = _replay_tracking(tracking_uri)
    isolation = {
        "shared_dir": shared_dir,
        "keep_task_dirs": keep_task_dirs,
        "pod_start_delay": pod_start_delay,
    }
    if not emulator:
        _replay(metadata, dag_file, root, parallel, run_id, only, tracking, **isolation)
        return
    from kedro_gcs_bridge.errors import GCSBridgeError
    from kedro_gcs_bridge.ops.emulator import EMULATOR_HOST_ENV, GCSFS_HNS_ENV, gcs_emulator

    bucket = "kedro-gcs-bridge-replay"
    try:
        with gcs_emulator(bucket) as url:
            click.echo(f"GCS emulator: {url} (bucket {bucket}, in memory, stopped at the end)")
            env = {EMULATOR_HOST_ENV: url, GCSFS_HNS_ENV: "false"}
            os.environ.update(env)
            env |= tracking
            root = root or f"gs://{bucket}/runs"
            _replay(metadata, dag_file, root, parallel, run_id, only, env, **isolation)
    except GCSBridgeError as exc:
        raise click.ClickException(str(exc)) from exc


def _replay_tracking(uri: str | None) -> dict[str, str]:
    """The environment that points every replayed task at `uri`; a local store made first."""
    if not uri:
        return {}
    from kedro_gcs_bridge.errors import GCSBridgeError
    from kedro_gcs_bridge.pod.contract import TRACKING_URI_ENV
    from kedro_gcs_bridge.tracking.tracker import open_local_store

    try:
        # Before any task starts, so parallel tasks find the schema made (see the tracker).
        open_local_store(uri)
    except GCSBridgeError as exc:
        raise click.ClickException(str(exc)) from exc
    return {TRACKING_URI_ENV: uri}


def _replay(
    metadata: ProjectMetadata,
    dag_file: Path,
    root: str | None,
    parallel: int,
    run_id: str | None,
    only: tuple[str, ...],
    extra_env: dict[str, str],
    shared_dir: bool = False,
    keep_task_dirs: Path | None = None,
    pod_start_delay: float = 0.0,
) -> None:
    from kedro_gcs_bridge.dag.replay import default_run_id, load_dag_tasks
    from kedro_gcs_bridge.dag.replay import replay as run_replay
    from kedro_gcs_bridge.dag.task_log import result_details
    from kedro_gcs_bridge.errors import ReplayError

    project = Path(metadata.project_path)
    root = root or (project / ".gcs-bridge-runs").as_uri()
    run_id = run_id or default_run_id()
    try:
        dag_id, prefix, tasks = load_dag_tasks(dag_file, run_id, root)
    except ReplayError as exc:
        raise click.ClickException(str(exc)) from exc
    unknown = set(only) - {task.task_id for task in tasks}
    if unknown:
        raise click.ClickException(
            f"no task {sorted(unknown)} in {dag_id}; tasks: {[t.task_id for t in tasks]}"
        )
    click.echo(f"Replaying {dag_id} ({len(tasks)} tasks), run {run_id}\nrun prefix: {prefix}")
    sandbox = _replay_sandbox(project, root, shared_dir, keep_task_dirs)
    count = len(only) or len(tasks)
    seen: set[str] = set()

    done = itertools.count(1)

    def progress(result: Any) -> None:
        number = next(done)
        colour = {"success": "green", "failed": "red"}.get(result.state, "yellow")
        delay = f", {result.pod_start_s:g} s of it pod start" if result.pod_start_s else ""
        click.secho(
            f"[{number}/{count}] {result.task_id}: {result.state} ({result.seconds:.1f} s{delay})",
            fg=colour,
        )
        failed, left = result.state == "failed", result.left_on_disk
        details = result_details(result.log, failed, left, seen)
        if details:
            click.echo(details)

    try:
        results = run_replay(
            tasks,
            project,
            parallel,
            extra_env=extra_env,
            on_result=progress,
            only=set(only) or None,
            sandbox=sandbox,
            pod_start_delay=pod_start_delay,
        )
    finally:
        if sandbox is not None and keep_task_dirs is None:
            shutil.rmtree(sandbox.root, ignore_errors=True)
    click.echo(_summary(results, prefix, pod_start_delay))
    if any(result.state != "success" for result in results):
        raise click.exceptions.Exit(1)


def _replay_sandbox(
    project: Path, root: str, shared_dir: bool, keep_task_dirs: Path | None
) -> TaskDirs | None:
    """Each task's own copy of the project as the image holds it; None with --shared-dir."""
    if shared_dir:
        click.echo("shared dir: every task runs in the project folder (not isolated like pods)")
        return None
    from kedro_gcs_bridge.dag.isolation import task_dirs

    sandbox = task_dirs(project, root, keep_task_dirs)
    click.echo(sandbox.contents.describe())
    if keep_task_dirs is not None:
        click.echo(f"task folders: {sandbox.root}/<task>/project")
    return sandbox


def _summary(results: Sequence[Any], prefix: str, pod_start_delay: float = 0.0) -> str:
    from kedro_gcs_bridge.pod.store import HandoffStore

    try:
        manifests = {m["task"]: m for m in HandoffStore(prefix, task="replay").manifests()}
    except Exception:  # noqa: BLE001 - the table is still useful without byte counts
        manifests = {}
    return (
        _task_table(results, manifests)
        + "\n"
        + _timing(results, manifests, prefix, pod_start_delay)
    )


def _timing(
    results: Sequence[Any], manifests: dict[str, Any], prefix: str, pod_start_delay: float
) -> str:
    """The measured makespan, and the `suggest` call that models this replay."""
    from kedro_gcs_bridge.dag.replay import kedro_start_seconds, makespan, slot_waits

    lines = [
        f"makespan: {makespan(results):.1f} s (first task start to last task end, "
        f"{pod_start_delay:g} s pod start delay per task)"
    ]
    count, waited = slot_waits(results)
    if count:
        lines.append(
            f"{count} task(s) waited {waited:.1f} s in all for a free --parallel slot: "
            "Autopilot (and the model) would start them at once; raise --parallel to compare"
        )
    kedro_start = kedro_start_seconds(results, manifests)
    if kedro_start is not None:
        lines.append(
            f"kedro run start, measured: {kedro_start:.1f} s per task (median of task seconds "
            "- pod start delay - node seconds)\n"
            f"model of this replay: kedro gcs-bridge suggest --from {prefix} "
            f"--pod-start {pod_start_delay:g} --kedro-start {kedro_start:.2f} --round-trip-ms 0"
            " (and the DAG's --params)"
        )
    return "\n".join(lines)


def _task_table(results: Sequence[Any], manifests: dict[str, Any]) -> str:
    rows = [("task", "state", "seconds", "bytes out", "nodes")]
    for result in results:
        out = sum(r["size"] for r in manifests.get(result.task_id, {}).get("datasets", {}).values())
        rows.append(
            (
                result.task_id,
                result.state,
                f"{result.seconds:.1f}",
                str(out),
                ", ".join(result.nodes),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        + "  "
        + row[4]
        for row in rows
    )


@gcs_bridge.command()
@click.option(
    "--cleanup",
    type=click.Choice(["never", "on_success", "always"]),
    default="never",
    show_default=True,
    help="When to delete the run prefix (the MLflow run is kept).",
)
@click.option("--prefix", default=None, help="Run prefix. Default: $KEDRO_GCS_BRIDGE_RUN_PREFIX.")
@click.option(
    "--tasks", default=None, help="Group task ids a,b,c. Default: $KEDRO_GCS_BRIDGE_TASKS."
)
@click.option(
    "--failed-groups",
    type=click.Choice(["fail", "report"]),
    default="fail",
    show_default=True,
    help="fail: exit 1 when a group did not finish; report: say so and exit 0 (the DAG's "
    "run-failed task fails the run, so Airflow does not retry finalize for it).",
)
def finalize(cleanup: str, prefix: str | None, tasks: str | None, failed_groups: str) -> None:
    """End a DAG run: set the MLflow parent run's status, clean up; exit 1 if a group failed."""
    from kedro_gcs_bridge.ops.finalize import finish_run
    from kedro_gcs_bridge.pod.contract import RUN_PREFIX_ENV

    prefix = prefix or os.environ.get(RUN_PREFIX_ENV)
    if not prefix:
        raise click.ClickException(f"no run prefix: pass --prefix or set {RUN_PREFIX_ENV}.")
    from kedro_gcs_bridge.errors import GCSBridgeError

    try:
        outcome = finish_run(prefix, tasks.split(",") if tasks else None, cleanup)
    except GCSBridgeError as exc:  # exit 1: Airflow retries finalize
        raise click.ClickException(str(exc)) from exc
    click.echo(f"verdict from: {outcome.judged_by}")
    click.echo(f"groups complete: {', '.join(outcome.succeeded) or '-'}")
    if outcome.mlflow_status:
        click.echo(f"MLflow parent run: {outcome.mlflow_status}")
    if outcome.deleted_bytes is not None:
        click.echo(f"deleted {prefix} ({outcome.deleted_bytes} bytes)")
    if not outcome.ok:
        click.secho(f"groups that did not finish: {', '.join(outcome.incomplete)}", fg="red")
        if failed_groups == "fail":
            raise click.exceptions.Exit(1)


def _node_classes(nodes: Iterable[Any], config: Any) -> dict[str, str]:
    """Node -> the machine class its `machine.<class>` tag names (else the default class)."""
    prefix = config.resources_tag_prefix
    return {
        node.name: next(
            (tag[len(prefix) :] for tag in sorted(node.tags) if tag.startswith(prefix)),
            config.default_machine_class,
        )
        for node in nodes
    }


def _suggest_inputs(
    metadata: ProjectMetadata, pipeline_name: str, env: str, params: dict[str, Any]
) -> tuple[list[Any], Any, dict[str, str], frozenset[str]]:
    """The pipeline's nodes, its config, its current groups and its persisted datasets."""
    from kedro.framework.project import pipelines

    from kedro_gcs_bridge.errors import GCSBridgeError
    from kedro_gcs_bridge.planning.config import merge_airflow_config, parse_config
    from kedro_gcs_bridge.planning.grouping import group_pipeline, node_specs
    from kedro_gcs_bridge.pod.catalog import is_memory

    raw, catalog = _load_project(metadata, env)
    pipeline = pipelines.get(pipeline_name)
    if pipeline is None:
        raise click.ClickException(
            f"Pipeline {pipeline_name} not found; registered: {sorted(pipelines)}."
        )
    try:
        config = parse_config(merge_airflow_config(raw, pipeline_name, params))
    except GCSBridgeError as exc:
        raise click.ClickException(str(exc)) from exc
    nodes = node_specs(pipeline)
    grouping = group_pipeline(
        pipeline_name, nodes, config.grouping_prefix, config.grouping, config.groups
    )
    persisted = frozenset(
        name for name in pipeline.datasets() if name in catalog and not is_memory(catalog.get(name))
    )
    return nodes, config, dict(grouping.group_of), persisted


def _run_manifests(url: str) -> list[dict[str, Any]]:
    from kedro_gcs_bridge.errors import GCSBridgeError
    from kedro_gcs_bridge.pod.store import HandoffStore

    try:
        manifests = HandoffStore(url, task="suggest").manifests()
    except GCSBridgeError as exc:
        raise click.ClickException(str(exc)) from exc
    if not manifests:
        raise click.ClickException(
            f"no manifest under {url}/manifests: pass the run prefix of a finished run "
            "(<root>/<dag_id>/<run_id>, see `kedro gcs-bridge runs list`)."
        )
    return manifests


def _mlflow_run_id(source: str) -> str | None:
    """The MLflow run id `--from` names: `mlflow:<run id>`, or a bare 32-hex run id (never a
    run prefix, which always holds `<dag_id>/<run_id>`); None for a run prefix URL."""
    if source.startswith("mlflow:"):
        return source.removeprefix("mlflow:").strip()
    return source if re.fullmatch(r"[0-9a-f]{32}", source) else None


def _suggest_source(source: str, tracking_uri: str | None, err: bool) -> str:
    """The run prefix `suggest --from` reads: the URL given, or the one the MLflow parent run
    records (tag `kedro_gcs_bridge.run_prefix`)."""
    from kedro_gcs_bridge.errors import GCSBridgeError

    run_id = _mlflow_run_id(source)
    if run_id is None:
        return source
    if not tracking_uri:
        raise click.ClickException(
            f"--from {source} names MLflow run {run_id}, but no tracking URI is set: pass "
            "--mlflow-tracking-uri, set MLFLOW_TRACKING_URI or `mlflow_tracking_uri` in "
            "airflow.yml, or pass the run prefix URL instead."
        )
    from kedro_gcs_bridge.tracking.tracker import parent_run_prefix

    try:
        prefix = parent_run_prefix(tracking_uri, run_id)
    except GCSBridgeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"run prefix of MLflow run {run_id}: {prefix}", err=err)
    return prefix


def _measured_run(
    source: str, tracking_uris: tuple[str | None, str | None], err: bool
) -> tuple[str, list[Any]]:
    """The run prefix `--from` names and the manifests committed under it.

    The tracking URI for `mlflow:<run id>`: `--mlflow-tracking-uri`, else
    `$MLFLOW_TRACKING_URI`, else airflow.yml's `mlflow_tracking_uri` (`tracking_uris`: the
    option's and the config's)."""
    from kedro_gcs_bridge.pod.contract import TRACKING_URI_ENV, env_value

    given, configured = tracking_uris
    url = _suggest_source(source, given or env_value(TRACKING_URI_ENV) or configured, err)
    return url, _run_manifests(url)


@gcs_bridge.command()
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
@click.option("-p", "--pipeline", "pipeline_name", default=DEFAULT_PIPELINE, show_default=True)
@click.option("-e", "--env", default=DEFAULT_ENV, show_default=True)
@click.option("--params", default="", callback=_split_params, help="Config overrides k=v,...")
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
@click.option("--objective", type=click.Choice(["time", "cost"]), default="time", show_default=True)
@click.option("--max-memory", default=None, help="Bytes of data a group may touch (16Gi).")
@click.option("--allow-mixed", is_flag=True, help="Let a group mix machine classes.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "yaml", "json"]),
    default="text",
    show_default=True,
)
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
) -> None:
    """Suggest `groups:` from a measured run: fewer pods where they cost more than they give."""
    import json

    from kedro_gcs_bridge.errors import GCSBridgeError
    from kedro_gcs_bridge.planning import suggest as model
    from kedro_gcs_bridge.planning.machines import memory_bytes

    try:
        bound = memory_bytes(max_memory) if max_memory else None
    except GCSBridgeError as exc:
        raise click.ClickException(str(exc)) from exc
    nodes, config, group_of, persisted = _suggest_inputs(metadata, pipeline_name, env, params)
    # What is said about the inputs goes to stderr for the machine-readable formats.
    uris = (mlflow_tracking_uri, config.mlflow_tracking_uri)
    url, manifests = _measured_run(source, uris, err=fmt != "text")
    figures = model.figures_from_manifests(manifests, persisted)
    pod_start, kedro_start, pod_start_from = model.pod_start_choice(
        pod_start, kedro_start, manifests
    )
    cost = model.cost_model(pod_start, kedro_start, round_trip_ms)
    pod_start_line = f"pod start: {cost.pod_start_s:.1f} s ({pod_start_from})"
    if fmt != "text":
        click.echo(pod_start_line, err=True)
    result = model.suggest_groups(
        nodes,
        figures.measurements,
        _node_classes(nodes, config),
        group_of,
        cost,
        objective,
        allow_mixed,
        bound,
    )
    if fmt == "json":
        click.echo(json.dumps(result.to_json() | {"model": cost.to_json()}, indent=2))
    elif fmt == "yaml":
        click.echo(model.groups_yaml(result.suggested.groups), nl=False)
    else:
        click.echo(f"{figures.tasks} task manifest(s) read from {url}")
        click.echo(pod_start_line)
        if figures.estimated_nodes:
            count = len(figures.estimated_nodes)
            click.echo(f"no node timings for {count} node(s): their group's time split evenly")
        click.echo(model.suggestion_text(result, cost), nl=False)


@gcs_bridge.group()
def runs() -> None:
    """List and delete run prefixes (the handoff data of DAG runs)."""


def _root(metadata: ProjectMetadata, root: str | None, env: str) -> str:
    if root:
        return root
    raw, _ = _load_project(metadata, env)
    configured = (raw.get("default") or {}).get("gcs_bridge_root")
    return str(configured or (Path(metadata.project_path) / ".gcs-bridge-runs").as_uri())


def _scan_runs(url: str) -> list[Any]:
    """The run prefixes under a root; skipped objects are printed, a bad or unreachable root
    is one line."""
    from kedro_gcs_bridge.errors import GCSBridgeError
    from kedro_gcs_bridge.ops.runs import scan_runs

    try:
        scan = scan_runs(url)
    except GCSBridgeError as exc:
        raise click.ClickException(str(exc)) from exc
    for problem in scan.problems:
        click.secho(f"warning: {problem}", fg="yellow")
    return scan.runs


def _size(size: float) -> str:
    from kedro_gcs_bridge.planning.views import human_size

    return human_size(size)


@runs.command("list")
@click.option("--root", default=None, help="Root URL. Default: gcs_bridge_root of the env.")
@click.option("-e", "--env", default=DEFAULT_ENV, show_default=True)
@click.pass_obj
def list_command(metadata: ProjectMetadata, root: str | None, env: str) -> None:
    """One line per run prefix: dag, run, groups done, outcome, bytes, last write (newest first)."""
    url = _root(metadata, root, env)
    found = _scan_runs(url)
    click.echo(f"{len(found)} run(s) under {url}")
    for run in found:
        expected = f"/{len(run.groups_expected)}" if run.groups_expected else ""
        when = run.last_write.strftime("%Y-%m-%d %H:%M:%S") if run.last_write else "-"
        click.echo(
            f"{run.dag_id}  {run.run}  groups {len(run.groups_done)}{expected}  "
            f"{run.outcome}  {_size(run.size)}  {when}"
        )


@runs.command("gc")
@click.option("--older-than", required=True, help="Age of the last write: 7d, 12h, 30m.")
@click.option("--keep-failed", is_flag=True, help="Keep runs whose groups did not all finish.")
@click.option("--dry-run", is_flag=True, help="Print what would be deleted; delete nothing.")
@click.option("--root", default=None, help="Root URL. Default: gcs_bridge_root of the env.")
@click.option("-e", "--env", default=DEFAULT_ENV, show_default=True)
@click.pass_obj
def gc_command(
    metadata: ProjectMetadata,
    older_than: str,
    keep_failed: bool,
    dry_run: bool,
    root: str | None,
    env: str,
) -> None:
    """Delete whole run prefixes by age; nothing outside the root is touched."""
    import datetime as dt

    from kedro_gcs_bridge.errors import GCSBridgeError
    from kedro_gcs_bridge.ops.runs import delete_runs, parse_age, select_for_gc

    try:
        age = parse_age(older_than)
    except GCSBridgeError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from exc
    url = _root(metadata, root, env)
    chosen = select_for_gc(_scan_runs(url), age, keep_failed, dt.datetime.now(dt.UTC))
    verb = "would delete" if dry_run else "deleting"
    for run in chosen:
        click.echo(f"{verb} {run.url} ({run.outcome}, {_size(run.size)})")
    try:
        freed = sum(run.size for run in chosen) if dry_run else delete_runs(url, chosen)
    except GCSBridgeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{len(chosen)} run(s), {_size(freed)} {'would be freed' if dry_run else 'freed'}")


from kedro_gcs_bridge.cli_deploy import deploy, trigger  # noqa: E402

gcs_bridge.add_command(deploy)
gcs_bridge.add_command(trigger)
