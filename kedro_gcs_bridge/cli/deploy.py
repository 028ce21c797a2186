"""`kedro gcs-bridge deploy` and `trigger`: the last metre, DAG files into Airflow and a run.

The logic is in ops/deploy.py and ops/trigger.py; these commands parse options and print.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from kedro.framework.startup import ProjectMetadata

#: Where `kedro airflow create` writes DAG files unless told otherwise (`-t`).
DEFAULT_SOURCE = "airflow_dags"
URL_ENV = "KEDRO_GCS_BRIDGE_AIRFLOW_URL"


def _sources(metadata: ProjectMetadata, source: str, files: tuple[Path, ...]) -> list[Path]:
    if files:
        return list(files)
    folder = Path(source)
    if not folder.is_absolute():
        folder = Path(metadata.project_path) / folder
    if not folder.is_dir():
        raise click.BadParameter(
            f"{folder} is not a folder: run `kedro airflow create -t {source}` first, or "
            "name the DAG files.",
            param_hint="--from",
        )
    return sorted(folder.glob("*_dag.py"))


@click.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--dags-folder", required=True, help="Airflow's DAGs folder: gs://<composer-bucket>/dags."
)
@click.option(
    "--from",
    "source",
    default=DEFAULT_SOURCE,
    show_default=True,
    help="Folder of the generated *_dag.py files (when no FILES are named).",
)
@click.option("--force", is_flag=True, help="Overwrite files deploy did not write, or edited.")
@click.option("--image-digest", default=None, help="Pin docker_image to name@sha256:<digest>.")
@click.pass_obj
def deploy(
    metadata: ProjectMetadata,
    files: tuple[Path, ...],
    dags_folder: str,
    source: str,
    force: bool,
    image_digest: str | None,
) -> None:
    """Upload the generated DAG files into Airflow's DAGs folder, each atomically."""
    from kedro_gcs_bridge.ops.deploy import deploy as deploy_files

    done = deploy_files(_sources(metadata, source, files), dags_folder, force, image_digest)
    for item in done:
        click.echo(f"{item.action:9} {item.url}")
    pinned = f", image pinned to {image_digest}" if image_digest else ""
    click.echo(f"{len(done)} DAG file(s) in {dags_folder}{pinned}")


def _conf(ctx: click.Context, param: Any, value: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        conf = json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from exc
    if not isinstance(conf, dict):
        raise click.BadParameter("must be a JSON object, e.g. '{\"key\": 1}'")
    return conf


@click.command()
@click.argument("dag_id")
@click.option("--wait", is_flag=True, help="Follow the run; exit 0 if it succeeds, 1 if not.")
@click.option(
    "--api-url", envvar=URL_ENV, required=True, help=f"Airflow's web server URL (${URL_ENV})."
)
@click.option("--token-env", default=None, help="Variable holding a bearer token.")
@click.option("--username", default=None, help="Airflow user: its password is in --password-env.")
@click.option("--password-env", default="AIRFLOW_PASSWORD", show_default=True)
@click.option("--conf", "conf", default=None, callback=_conf, help="Run conf, a JSON object.")
@click.option("--unpause", is_flag=True, help="Unpause the DAG first (a paused DAG's run waits).")
@click.option("--poll-seconds", default=5.0, show_default=True, type=click.FloatRange(min=0.1))
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds --wait follows.")
@click.pass_context
def trigger(
    ctx: click.Context,
    dag_id: str,
    wait: bool,
    api_url: str,
    token_env: str | None,
    username: str | None,
    password_env: str,
    conf: dict[str, Any],
    unpause: bool,
    poll_seconds: float,
    timeout: float,
) -> None:
    """Start a run of DAG_ID through Airflow's REST API (Composer: Google credentials)."""
    from kedro_gcs_bridge.ops import trigger as ops

    def show(task: str, state: str) -> None:
        click.echo(f"{dt.datetime.now(dt.UTC):%H:%M:%S} {task}: {state}")

    def connect() -> ops.AirflowApi:
        token = ops.resolve_token(api_url, os.environ, token_env, username, password_env)
        return ops.AirflowApi(api_url, token)

    api = connect()
    run_id, paused = ops.start_run(api, dag_id, conf, unpause)
    click.echo(f"started run {run_id} of {dag_id}")
    if paused:
        click.echo(f"{dag_id} is paused: the run waits until it is unpaused (--unpause).")
    if not wait:
        return
    max_polls = max(1, int(timeout / poll_seconds))
    state = ops.watch(
        api,
        dag_id,
        run_id,
        show,
        poll_seconds,
        max_polls,
        tell=lambda line: click.echo(line, err=True),
        renew=connect,
    )
    click.echo(f"run {run_id} of {dag_id}: {state}")
    ctx.exit(ops.exit_code(state))
