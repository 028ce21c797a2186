"""`kedro gcs-bridge replay`: run a generated DAG's tasks here, each as its own process."""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kedro_gcs_bridge.cli import access

if TYPE_CHECKING:
    from kedro.framework.startup import ProjectMetadata

    from kedro_gcs_bridge.dag.isolation import TaskDirs
    from kedro_gcs_bridge.dag.replay import ReplayTask
    from kedro_gcs_bridge.dag.warm import WarmStarter
    from kedro_gcs_bridge.pod.protocol import Manifest


#: Airflow's log level, read when Airflow is imported (the DagBag, the operators).
AIRFLOW_LOG_LEVEL_ENV = "AIRFLOW__LOGGING__LOGGING_LEVEL"


def _emulator_root() -> str:
    """Where `--emulator` puts run prefixes (naming.py: suggest finds replay's copies by it)."""
    from kedro_gcs_bridge.planning.naming import REPLAY_EMULATOR_ROOT

    return REPLAY_EMULATOR_ROOT


def _emulator_bucket() -> str:
    """The bucket `--emulator` makes in its in-memory GCS (or on the user's emulator)."""
    return _emulator_root().removeprefix("gs://").split("/")[0]


@click.command()
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
    help="Hand data over through a local GCS emulator (gs://): yours when "
    "STORAGE_EMULATOR_HOST is set, else one started for this replay.",
)
@click.option(
    "--seed",
    is_flag=True,
    help="With --emulator: first upload the DAG's inputs that `catalog --root` moved to "
    "gs:// from the project's local files (the default env's catalog).",
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
@click.option(
    "--cold-start",
    is_flag=True,
    help="Start each task as a new process, not forked from a warm server that has imported "
    "Kedro and the project's imports (slower; for imports that are not safe to fork).",
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
    seed: bool,
    tracking_uri: str | None,
    shared_dir: bool,
    keep_task_dirs: Path | None,
    pod_start_delay: float,
    cold_start: bool,
) -> None:
    """Run a generated DAG's tasks here, each as its own process, in dependency order.

    Each task runs in its own fresh copy of the project as the image holds it (the docker
    ignore file decides), with its own HOME and temp dir, as a GKE pod does; --shared-dir
    runs them all in the project folder instead. --emulator hands data over through a local
    GCS emulator: one started for this replay, or yours when STORAGE_EMULATOR_HOST is set;
    the DAG's gs:// inputs must be on it (--seed uploads them) before any task starts.
    Each `kedro run` task is forked from a server that has imported Kedro and the project's
    imports (its own process, folder and environment still); --cold-start starts each anew.
    """
    # Airflow reads the DAG file here, and says each file it fills its DagBag from and each
    # pod it builds at INFO: not what a replay is about (your own level wins).
    os.environ.setdefault(AIRFLOW_LOG_LEVEL_ENV, "WARNING")
    tracking = _replay_tracking(tracking_uri)
    isolation = {
        "shared_dir": shared_dir,
        "keep_task_dirs": keep_task_dirs,
        "pod_start_delay": pod_start_delay,
        "cold_start": cold_start,
    }
    if seed and not emulator:
        raise click.UsageError("--seed fills a GCS emulator: pass it with --emulator.")
    code = 0
    try:
        if not emulator:
            _replay(metadata, dag_file, root, parallel, run_id, only, tracking, **isolation)
        else:
            from kedro_gcs_bridge.ops.emulator import EMULATOR_HOST_ENV, GCSFS_HNS_ENV

            with _emulator() as (url, own):
                env = {EMULATOR_HOST_ENV: url, GCSFS_HNS_ENV: "false"}
                os.environ.update(env)
                env |= tracking
                root = root or _emulator_root()
                use = _EmulatorUse(url, own, seed)
                _replay(
                    metadata, dag_file, root, parallel, run_id, only, env, emulator=use, **isolation
                )
    except click.exceptions.Exit as end:
        code = end.exit_code
    if Path(sys.argv[0]).name == "kedro" and sys.argv[1:3] == ["gcs-bridge", "replay"]:
        atexit.register(_exit_unfinalized, code)
    if code:
        raise click.exceptions.Exit(code)


_exiting: list[int] = []


def _exit_unfinalized(code: int) -> None:
    """The last step of the `kedro gcs-bridge replay` process (registered last, so run first
    at exit, after Kedro's CLI hooks): the other exit handlers run (logging's flush among
    them), then the process ends without finalizing, one by one, the thousands of modules
    Airflow's DagBag loaded (1-2 s)."""
    if _exiting:
        return  # called again by the run below
    _exiting.append(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


@dataclass(frozen=True)
class _EmulatorUse:
    """The emulator a replay hands data through: its URL, whether replay started it (and
    stops it at the end), and whether to seed it with the DAG's inputs."""

    url: str
    own: bool
    seed: bool


@contextmanager
def _emulator() -> Iterator[tuple[str, bool]]:
    """The user's emulator (`STORAGE_EMULATOR_HOST`, left running) or one started here."""
    from kedro_gcs_bridge.ops.emulator import EMULATOR_HOST_ENV, gcs_emulator

    given = os.environ.get(EMULATOR_HOST_ENV)
    if given:
        click.echo(f"GCS emulator: {given} (yours, from {EMULATOR_HOST_ENV}; left running)")
        _make_bucket(given, _emulator_bucket())
        yield given, False
        return
    with gcs_emulator(_emulator_bucket()) as url:
        click.echo(
            f"GCS emulator: {url} (bucket {_emulator_bucket()}, in memory, stopped at the end)"
        )
        yield url, True


def _make_bucket(url: str, bucket: str) -> None:
    """Makes replay's bucket on the user's emulator, in seconds or one error naming it."""
    from kedro_gcs_bridge.dag.seed import gcs_filesystem
    from kedro_gcs_bridge.ops.emulator import GCSFS_HNS_ENV
    from kedro_gcs_bridge.ops.runs import REACH_SECONDS, within

    def make() -> None:
        fs = gcs_filesystem()
        if not fs.exists(bucket):
            fs.mkdir(bucket)

    os.environ.setdefault(GCSFS_HNS_ENV, "false")
    within(REACH_SECONDS, f"the GCS emulator {url} (STORAGE_EMULATOR_HOST)", make)


def _replay_tracking(uri: str | None) -> dict[str, str]:
    """The environment that points every replayed task at `uri`; a local store made first."""
    if not uri:
        return {}
    from kedro_gcs_bridge.tracking.library import open_local_store

    # Before any task starts, so parallel tasks find the schema made (see the tracker).
    open_local_store(uri)
    return access.tracking_env(uri)


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
    emulator: _EmulatorUse | None = None,
    cold_start: bool = False,
) -> None:
    from kedro_gcs_bridge.dag.replay import default_run_id, load_dag_tasks
    from kedro_gcs_bridge.dag.replay import replay as run_replay

    project = Path(metadata.project_path)
    root = root or access.local_runs_root(metadata)
    run_id = run_id or default_run_id()
    # Its imports overlap Airflow's and the DagBag's; replaced if the tasks' env differs.
    warm = None if cold_start else _early_warm_start(project, parallel, extra_env, shared_dir, root)
    try:
        dag_id, prefix, tasks = load_dag_tasks(dag_file, run_id, root)
        tasks = _with_image_env(project, tasks)
        unknown = set(only) - {task.task_id for task in tasks}
        if unknown:
            raise click.ClickException(
                f"no task {sorted(unknown)} in {dag_id}; tasks: {[t.task_id for t in tasks]}"
            )
        chosen = [task for task in tasks if not only or task.task_id in only]
        if emulator is not None:
            _emulator_inputs(metadata, tasks, chosen, emulator)
        else:
            _gcs_inputs_reachable(metadata, tasks, chosen)
        click.echo(f"Replaying {dag_id} ({len(tasks)} tasks), run {run_id}\nrun prefix: {prefix}")
        sandbox = _replay_sandbox(project, root, shared_dir, keep_task_dirs)
        if warm is not None:
            click.echo(
                "warm start: each kedro task is forked from a process that has imported Kedro "
                "and the project's imports (--cold-start: a new process each)"
            )
        try:
            results = run_replay(
                tasks,
                project,
                parallel,
                extra_env=extra_env,
                on_result=_progress(len(only) or len(tasks), sandbox),
                only=set(only) or None,
                sandbox=sandbox,
                pod_start_delay=pod_start_delay,
                warm_start=warm if warm is not None else not cold_start,
            )
        finally:
            if sandbox is not None and keep_task_dirs is None:
                shutil.rmtree(sandbox.root, ignore_errors=True)
        model_from = _model_source(metadata, prefix, emulator)
        click.echo(_summary(results, prefix, pod_start_delay, model_from))
        kept = emulator is None or not emulator.own
        for line in _after(results, dag_file, run_id, kept_prefix=kept):
            click.echo(line)
        if any(result.state != "success" for result in results):
            raise click.exceptions.Exit(1)
    finally:
        if warm is not None:
            warm.close()


def _early_warm_start(
    project: Path, parallel: int, extra_env: dict[str, str], shared_dir: bool, root: str
) -> WarmStarter:
    """Replay's warm server, started before the DAG is read, with the environment the tasks
    will share as far as known now (the image's ENV included)."""
    from kedro_gcs_bridge.dag.dockerfile_check import image_env
    from kedro_gcs_bridge.dag.replay import warm_env
    from kedro_gcs_bridge.dag.warm import WarmStarter, is_remote
    from kedro_gcs_bridge.pod.context import REPLAY_PARALLEL_ENV

    extra = {REPLAY_PARALLEL_ENV: str(max(1, parallel)), **extra_env}
    env = warm_env(project, image_env(project), extra)
    return WarmStarter(project, env, own_dirs=not shared_dir, remote=is_remote(root))


def _with_image_env(project: Path, tasks: list[ReplayTask]) -> list[ReplayTask]:
    """The tasks with the ENV of the project's Dockerfile that changes what a pod runs
    (KEDRO_ENV, variables its code reads) under each task's own env, as in the image."""
    from dataclasses import replace

    from kedro_gcs_bridge.dag.dockerfile_check import DOCKERFILE, image_env

    settings = image_env(project)
    if not settings:
        return tasks
    shown = ", ".join(f"{name}={value}" for name, value in settings.items())
    click.echo(f"image ENV ({DOCKERFILE}): {shown} (each task runs with it, as its pod would)")
    return [replace(task, env={**settings, **task.env}) for task in tasks]


def _after(results: Sequence[Any], dag_file: Path, run_id: str, kept_prefix: bool) -> list[str]:
    """What replay says once after its table: the files tasks left on their own disks, and
    the command that re-runs the failed tasks and the ones they held back (instead of Kedro's
    "Repeat the previous command" advice, left out of each task's gist) when the run prefix
    outlives the replay (`kept_prefix`: not on an emulator replay started and stopped)."""
    from kedro_gcs_bridge.dag.replay import left_on_disk_summary

    lines = [left] if (left := left_on_disk_summary(results)) else []
    again = [r.task_id for r in results if r.state in ("failed", "upstream_failed")]
    if not any(r.state == "failed" for r in results):
        return lines
    if not kept_prefix:
        lines.append(
            "the run prefix was on the emulator this replay started, gone with it: after a "
            "fix, replay the whole DAG again, or keep an emulator of your own running "
            "(STORAGE_EMULATOR_HOST) to re-run single tasks with --task"
        )
        return lines
    tasks = " ".join(f"--task {task}" for task in again)
    lines.append(
        "re-run the failed task(s) and the ones they held back, after a fix (with this "
        f"replay's other options): kedro gcs-bridge replay {dag_file} --run-id {run_id} {tasks}"
    )
    return lines


def _progress(count: int, sandbox: TaskDirs | None = None) -> Any:
    """What replay says as each task ends: `[n/count] task: state (seconds)`, and its log's
    gist (its new warnings; on failure its exception, the log's tail and, when the log names
    files the image leaves out, what to do)."""
    from kedro_gcs_bridge.dag.task_log import result_details

    done = itertools.count(1)
    seen: set[str] = set()

    def progress(result: Any) -> None:
        colour = {"success": "green", "failed": "red"}.get(result.state, "yellow")
        delay = f", {result.pod_start_s:g} s of it pod start" if result.pod_start_s else ""
        click.secho(
            f"[{next(done)}/{count}] {result.task_id}: {result.state} "
            f"({result.seconds:.1f} s{delay})",
            fg=colour,
        )
        details = result_details(result.log, result.state == "failed", seen)
        remedy = sandbox.contents.remedy(result.log) if sandbox is not None else None
        if remedy and result.state == "failed":
            details += f"\n    remedy: {remedy}"
        cold = f"cold start: {result.cold_reason}"
        if result.cold_reason and cold not in seen:
            seen.add(cold)
            details = "\n".join(filter(None, [f"    {cold}", details]))
        if details:
            click.echo(details)

    return progress


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


def _emulator_inputs(
    metadata: ProjectMetadata, tasks: Sequence[Any], chosen: Sequence[Any], use: _EmulatorUse
) -> None:
    """Seeds the emulator with the chosen tasks' raw gs:// inputs when asked, then fails
    before any task starts if one is still missing (one error naming dataset, bucket and
    object). What the DAG's own tasks make is never seeded nor checked here."""
    from kedro_gcs_bridge.dag.seed import missing, missing_error, remote_inputs, seed

    remote, local = _input_locations(metadata, tasks, chosen)
    inputs = remote_inputs(remote, local, Path(metadata.project_path))
    if use.seed:
        for line in seed(inputs):
            click.echo(line)
    absent = missing(inputs)
    if absent:
        raise missing_error(absent, use.url, use.seed)


def _gcs_inputs_reachable(
    metadata: ProjectMetadata, tasks: Sequence[Any], chosen: Sequence[Any]
) -> None:
    """Without --emulator, the chosen tasks' raw gs:// inputs are read from GCS itself (or the
    emulator `STORAGE_EMULATOR_HOST` names): one listing of the first one's bucket must
    answer within seconds, before any task starts (gcsfs would retry each for a minute).
    Skipped when the project's own conf cannot be read here (a DAG made with
    `--conf-source`): the tasks then say what they lack."""
    from kedro.config import MissingConfigException

    from kedro_gcs_bridge.dag.seed import remote_inputs
    from kedro_gcs_bridge.ops.runs import open_reachable

    try:
        remote, local = _input_locations(metadata, tasks, chosen)
    except MissingConfigException:  # the pods read another conf source (--conf-source)
        return
    urls = [item.url for item in remote_inputs(remote, local, Path(metadata.project_path))]
    if not urls:
        return
    bucket = "/".join(urls[0].split("/")[:3])
    hint = (
        "replay against a local emulator instead: --emulator --seed (it uploads the project's "
        "own copies of the raw inputs first)"
    )
    open_reachable(bucket, hint, f"{len(urls)} raw input(s) on GCS ({urls[0]}, ...)")


def _input_locations(
    metadata: ProjectMetadata, tasks: Sequence[Any], chosen: Sequence[Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Where the DAG's env keeps the chosen tasks' raw inputs (made by no task of the DAG,
    under their own name or another entry on the same path), and where the default env
    keeps them."""
    from kedro.framework.project import pipelines

    from kedro_gcs_bridge.planning.grouping import is_parameter
    from kedro_gcs_bridge.planning.storage import aliases_of
    from kedro_gcs_bridge.pod.catalog import catalog_locations

    env, name = _dag_env(tasks)
    with access.quiet_context(metadata, env) as context:
        registered = pipelines.get(name)
        if registered is None:
            return {}, {}
        whole, part = (
            registered.only_nodes(*nodes) if nodes else registered
            for nodes in (_nodes(tasks), _nodes(chosen))
        )
        made = set(whole.all_outputs())
        needed = sorted(ds for ds in part.inputs() if not is_parameter(ds) and ds not in made)
        remote = catalog_locations(context.catalog, [*needed, *sorted(made)])
    raw = [ds for ds in needed if ds not in aliases_of(remote, made)]
    with access.quiet_context(metadata) as context:
        local = catalog_locations(context.catalog, raw)
    return {ds: remote[ds] for ds in raw}, local


def _nodes(tasks: Sequence[Any]) -> list[str]:
    return sorted({node for task in tasks for node in task.nodes})


def _dag_env(tasks: Sequence[Any]) -> tuple[str | None, str]:
    """The Kedro env and pipeline the tasks' commands run (`--env`, `--pipelines`)."""
    env: str | None = None
    name = "__default__"
    for task in tasks[:1]:
        args = list(task.command)
        for flag in ("--env", "-e"):
            if flag in args[:-1]:
                env = args[args.index(flag) + 1]
        for flag in ("--pipelines", "--pipeline", "-p"):
            if flag in args[:-1]:
                name = args[args.index(flag) + 1]
    return env, name


def _model_source(metadata: ProjectMetadata, prefix: str, emulator: _EmulatorUse | None) -> str:
    """What `suggest --from` reads to model this replay, as a command line's start.

    The run prefix itself; a gs:// one on the user's emulator (`--emulator`, or `--prefix
    gs://...` with `STORAGE_EMULATOR_HOST` set) with `STORAGE_EMULATOR_HOST` in front, so it
    does not reach for real GCS; on an emulator replay started (gone when it ends), a local
    copy of the run's manifests under the project's runs folder, made here.
    """
    from kedro_gcs_bridge.ops.emulator import EMULATOR_HOST_ENV

    if emulator is not None and emulator.own:
        kept = _keep_manifests(prefix, access.local_runs_root(metadata))
        return f"kedro gcs-bridge suggest --from {kept}" if kept else ""
    host = os.environ.get(EMULATOR_HOST_ENV)
    if host and prefix.startswith(("gs://", "gcs://")):
        return f"{EMULATOR_HOST_ENV}={host} kedro gcs-bridge suggest --from {prefix}"
    return f"kedro gcs-bridge suggest --from {prefix}"


def _keep_manifests(prefix: str, local_root: str) -> str | None:
    """Copies the run marker and manifests of an emulator's run prefix to the local runs
    folder (what `suggest --from` and `runs list` read, and `suggest --from mlflow:<id>` finds
    by `replay_emulator_copy`); their URL, or None without any."""
    from kedro_gcs_bridge.planning.naming import replay_emulator_copy
    from kedro_gcs_bridge.pod.store import HandoffStore

    copy = replay_emulator_copy(prefix, local_root)
    if copy is None:
        return None
    source = HandoffStore(prefix, task="replay")
    target = HandoffStore(copy, task="replay")
    try:
        paths = source.fs.find(source.layout.manifests_dir)
        if not paths:
            return None
        for path in [*paths, source.layout.marker]:
            if source.fs.exists(path):
                relative = path[len(source.root) + 1 :]
                target.fs.makedirs(f"{target.root}/{relative}".rsplit("/", 1)[0], exist_ok=True)
                target.fs.pipe_file(f"{target.root}/{relative}", source.fs.cat_file(path))
    except OSError:
        return None
    return target.prefix


def _summary(
    results: Sequence[Any], prefix: str, pod_start_delay: float = 0.0, model_from: str = ""
) -> str:
    from kedro_gcs_bridge.planning.views import replay_table

    try:
        manifests = {m.task: m for m in access.read_manifests(prefix, "replay")}
    except Exception:  # noqa: BLE001 - the table is still useful without byte counts
        manifests = {}
    rows = [
        (r.task_id, r.state, r.seconds, _bytes_out(manifests.get(r.task_id)), r.nodes)
        for r in results
    ]
    timing = _timing(results, manifests, model_from, pod_start_delay)
    return replay_table(rows) + "\n" + timing


def _bytes_out(manifest: Manifest | None) -> int:
    """The bytes a task's manifest records for its outputs (0 without a manifest)."""
    return manifest.bytes_out if manifest is not None else 0


def _timing(
    results: Sequence[Any], manifests: dict[str, Any], model_from: str, pod_start_delay: float
) -> str:
    """The measured makespan, and the `suggest` call that models this replay (`model_from`:
    the command's start, `kedro gcs-bridge suggest --from URL`; none when empty)."""
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
        warm = sum(result.start == "warm" for result in results)
        pods = "; tasks started warm, a pod pays a new process's: --cold-start measures that"
        lines.append(
            f"kedro run start, measured: {kedro_start:.1f} s per task (median of task seconds "
            f"- pod start delay - node seconds{pods if warm else ''})"
        )
    if kedro_start is not None and model_from:
        lines.append(
            f"model of this replay: {model_from} --pod-start {pod_start_delay:g} "
            f"--kedro-start {kedro_start:.2f} --round-trip-ms 0 (and the DAG's --params)"
        )
    return "\n".join(lines)
