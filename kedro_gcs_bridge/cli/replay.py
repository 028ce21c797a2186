"""`kedro gcs-bridge replay`: run a generated DAG's tasks here, each as its own process."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kedro_gcs_bridge.cli import access

if TYPE_CHECKING:
    from kedro.framework.startup import ProjectMetadata

    from kedro_gcs_bridge.dag.isolation import TaskDirs
    from kedro_gcs_bridge.pod.protocol import Manifest

#: The bucket `--emulator` makes in its in-memory GCS.
_EMULATOR_BUCKET = "kedro-gcs-bridge-replay"


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
    from kedro_gcs_bridge.ops.emulator import EMULATOR_HOST_ENV, GCSFS_HNS_ENV, gcs_emulator

    with gcs_emulator(_EMULATOR_BUCKET) as url:
        click.echo(
            f"GCS emulator: {url} (bucket {_EMULATOR_BUCKET}, in memory, stopped at the end)"
        )
        env = {EMULATOR_HOST_ENV: url, GCSFS_HNS_ENV: "false"}
        os.environ.update(env)
        env |= tracking
        root = root or f"gs://{_EMULATOR_BUCKET}/runs"
        _replay(metadata, dag_file, root, parallel, run_id, only, env, **isolation)


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
) -> None:
    from kedro_gcs_bridge.dag.replay import default_run_id, left_on_disk_summary, load_dag_tasks
    from kedro_gcs_bridge.dag.replay import replay as run_replay

    project = Path(metadata.project_path)
    root = root or access.local_runs_root(metadata)
    run_id = run_id or default_run_id()
    dag_id, prefix, tasks = load_dag_tasks(dag_file, run_id, root)
    unknown = set(only) - {task.task_id for task in tasks}
    if unknown:
        raise click.ClickException(
            f"no task {sorted(unknown)} in {dag_id}; tasks: {[t.task_id for t in tasks]}"
        )
    click.echo(f"Replaying {dag_id} ({len(tasks)} tasks), run {run_id}\nrun prefix: {prefix}")
    sandbox = _replay_sandbox(project, root, shared_dir, keep_task_dirs)
    try:
        results = run_replay(
            tasks,
            project,
            parallel,
            extra_env=extra_env,
            on_result=_progress(len(only) or len(tasks)),
            only=set(only) or None,
            sandbox=sandbox,
            pod_start_delay=pod_start_delay,
        )
    finally:
        if sandbox is not None and keep_task_dirs is None:
            shutil.rmtree(sandbox.root, ignore_errors=True)
    click.echo(_summary(results, prefix, pod_start_delay))
    left = left_on_disk_summary(results)
    if left:
        click.echo(left)
    failed = [result.task_id for result in results if result.state == "failed"]
    if failed:
        # Instead of Kedro's "Repeat the previous command" advice, left out of each task's gist.
        again = " ".join(f"--task {task}" for task in failed)
        click.echo(
            f"to re-run the failed task(s) after a fix, replay again with --run-id {run_id} {again}"
        )
    if any(result.state != "success" for result in results):
        raise click.exceptions.Exit(1)


def _progress(count: int) -> Any:
    """What replay says as each task ends: `[n/count] task: state (seconds)`, and its log's
    gist (its new warnings; on failure its exception and the log's tail)."""
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


def _summary(results: Sequence[Any], prefix: str, pod_start_delay: float = 0.0) -> str:
    from kedro_gcs_bridge.planning.views import replay_table

    try:
        manifests = {m.task: m for m in access.read_manifests(prefix, "replay")}
    except Exception:  # noqa: BLE001 - the table is still useful without byte counts
        manifests = {}
    rows = [
        (r.task_id, r.state, r.seconds, _bytes_out(manifests.get(r.task_id)), r.nodes)
        for r in results
    ]
    return replay_table(rows) + "\n" + _timing(results, manifests, prefix, pod_start_delay)


def _bytes_out(manifest: Manifest | None) -> int:
    """The bytes a task's manifest records for its outputs (0 without a manifest)."""
    return manifest.bytes_out if manifest is not None else 0


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
