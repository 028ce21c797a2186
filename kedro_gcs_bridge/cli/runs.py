"""`kedro gcs-bridge runs list | gc` and `finalize`: run prefixes as a whole."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

from kedro_gcs_bridge.cli import access
from kedro_gcs_bridge.cli.options import env_option
from kedro_gcs_bridge.errors import GCSBridgeError
from kedro_gcs_bridge.ops.finalize import finish_run
from kedro_gcs_bridge.ops.runs import delete_runs, parse_age, scan_runs, select_for_gc
from kedro_gcs_bridge.planning.views import human_size

if TYPE_CHECKING:
    from kedro.framework.startup import ProjectMetadata

_root_option = click.option(
    "--root", default=None, help="Root URL. Default: gcs_bridge_root of the env."
)


@click.group()
def runs() -> None:
    """List and delete run prefixes (the handoff data of DAG runs)."""


def _scan_runs(url: str) -> list[Any]:
    """The run prefixes under a root; skipped objects are printed."""
    scan = scan_runs(url)
    for problem in scan.problems:
        click.secho(f"warning: {problem}", fg="yellow")
    return scan.runs


@runs.command("list")
@_root_option
@env_option
@click.pass_obj
def list_command(metadata: ProjectMetadata, root: str | None, env: str) -> None:
    """One line per run prefix: dag, run, groups done, outcome, bytes, last write (newest first)."""
    url = access.runs_root(metadata, root, env)
    found = _scan_runs(url)
    click.echo(f"{len(found)} run(s) under {url}")
    for run in found:
        expected = f"/{len(run.groups_expected)}" if run.groups_expected else ""
        when = run.last_write.strftime("%Y-%m-%d %H:%M:%S") if run.last_write else "-"
        click.echo(
            f"{run.dag_id}  {run.run_id}  groups {len(run.groups_done)}{expected}  "
            f"{run.outcome}  {human_size(run.size)}  {when}"
        )


def _age(ctx: click.Context, param: click.Parameter, value: str) -> dt.timedelta:
    try:
        return parse_age(value)
    except GCSBridgeError as exc:
        raise click.BadParameter(str(exc), ctx, param) from exc


@runs.command("gc")
@click.option(
    "--older-than", required=True, callback=_age, help="Age of the last write: 7d, 12h, 30m."
)
@click.option("--keep-failed", is_flag=True, help="Keep runs whose groups did not all finish.")
@click.option("--dry-run", is_flag=True, help="Print what would be deleted; delete nothing.")
@_root_option
@env_option
@click.pass_obj
def gc_command(
    metadata: ProjectMetadata,
    older_than: dt.timedelta,
    keep_failed: bool,
    dry_run: bool,
    root: str | None,
    env: str,
) -> None:
    """Delete whole run prefixes by age; nothing outside the root is touched."""
    url = access.runs_root(metadata, root, env)
    chosen = select_for_gc(_scan_runs(url), older_than, keep_failed, dt.datetime.now(dt.UTC))
    verb = "would delete" if dry_run else "deleting"
    for run in chosen:
        click.echo(f"{verb} {run.url} ({run.outcome}, {human_size(run.size)})")
    freed = sum(run.size for run in chosen) if dry_run else delete_runs(url, chosen)
    click.echo(
        f"{len(chosen)} run(s), {human_size(freed)} {'would be freed' if dry_run else 'freed'}"
    )


@click.command()
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
    """End a DAG run: set the MLflow parent run's status, clean up; exit 1 if a group failed.

    An error of its own (storage, MLflow) exits 1 too, so Airflow retries it.
    """
    from_env, variable = access.run_prefix_from_env()
    prefix = prefix or from_env
    if not prefix:
        raise click.ClickException(f"no run prefix: pass --prefix or set {variable}.")
    outcome = finish_run(prefix, tasks.split(",") if tasks else None, cleanup)
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
