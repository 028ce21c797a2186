"""`kedro gcs-bridge init | catalog`: set a project up, and move its local-disk catalog
entries to GCS in a catalog env of their own."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml

from kedro_gcs_bridge.cli import access
from kedro_gcs_bridge.dag.catalog_env import (
    CatalogEnv,
    RawConf,
    catalog_env,
    check_env,
    parse_root,
    upload_commands,
)
from kedro_gcs_bridge.dag.dockerfile_check import dockerfile_warnings
from kedro_gcs_bridge.errors import CatalogEnvError
from kedro_gcs_bridge.planning.storage import Where
from kedro_gcs_bridge.pod.catalog import location_of_config

if TYPE_CHECKING:
    from kedro.framework.startup import ProjectMetadata

_PACKAGE = Path(__file__).resolve().parents[1]


def _resource(name: str) -> Path:
    """A file shipped with the package (wheel) or, in a source checkout, from the repo root."""
    packaged = _PACKAGE / "_resources" / name
    return packaged if packaged.exists() else _PACKAGE.parent / name


def init_files() -> list[tuple[Path, str]]:
    """(source, destination relative to the project) for every file `init` copies."""
    files = [
        (_resource("templates") / "gcs_bridge.j2", "templates/gcs_bridge.j2"),
        (_PACKAGE / "project_files" / "airflow.yml", "conf/base/airflow.yml"),
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


@click.command()
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@click.pass_obj
def init(metadata: ProjectMetadata, force: bool) -> None:
    """Copy the DAG template, a commented conf/base/airflow.yml and docker/ into the project.

    A docker/Dockerfile of the project's own is kept and checked: each thing it lacks for the
    pods (kedro-gcs-bridge installed, no ENV that changes Kedro's env) is a warning.
    """
    project_path = Path(metadata.project_path)
    written, skipped = copy_init_files(project_path, force)
    for relative in written:
        click.secho(f"wrote   {relative}", fg="green")
    for relative in skipped:
        click.secho(f"skipped {relative} (exists; --force overwrites it)", fg="yellow")
    if "docker/Dockerfile" in skipped:
        for problem in dockerfile_warnings(project_path):
            click.secho(f"warning: {problem}", fg="yellow")
    added = ignore_local_runs(project_path)
    if added:
        click.secho(f"added   {added} to .gitignore (replay's local run prefixes)")
    click.echo(
        "Next: tag nodes airflow.<group> / machine.<class>, fill conf/base/airflow.yml, then "
        "`kedro gcs-bridge validate`, `kedro gcs-bridge plan` and `kedro airflow create -j "
        "templates/gcs_bridge.j2`."
    )


def ignore_local_runs(project_path: Path) -> str | None:
    """Adds the local runs folder to the project's .gitignore (Kedro's templates have one);
    the line added, or None (no .gitignore, or it names the folder already)."""
    from kedro_gcs_bridge.planning.naming import LOCAL_RUNS_DIR

    gitignore = project_path / ".gitignore"
    if not gitignore.is_file():
        return None
    text = gitignore.read_text(encoding="utf-8")
    if LOCAL_RUNS_DIR in {line.strip().strip("/") for line in text.splitlines()}:
        return None
    end = "" if not text or text.endswith("\n") else "\n"
    gitignore.write_text(f"{text}{end}{LOCAL_RUNS_DIR}/\n", encoding="utf-8")
    return f"{LOCAL_RUNS_DIR}/"


def _usage(check: Callable[[str], str]) -> Callable[..., str]:
    """A click callback from a checker that raises CatalogEnvError: a usage error (exit 2)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str) -> str:
        try:
            return check(value)
        except CatalogEnvError as exc:
            raise click.UsageError(str(exc)) from exc

    return callback


def _without_path(config: Mapping[str, Any]) -> dict[str, str]:
    """Catalog entries (name -> type) that keep their data elsewhere than a file: no
    `filepath`/`path` (a database table, an API), and not in memory."""
    found = {}
    for name, entry in config.items():
        if name.startswith("_") or not isinstance(entry, Mapping):
            continue
        location = location_of_config(entry)
        if location.where is Where.REMOTE and location.path is None:
            found[name] = str(entry.get("type", "a dataset"))
    return found


@click.command()
@click.option(
    "--root",
    required=True,
    callback=_usage(parse_root),
    help="gs://bucket[/path] to move local-disk data under.",
)
@click.option(
    "-e",
    "--env",
    "target_env",
    default="gcs",
    show_default=True,
    callback=_usage(check_env),
    help="Env to write.",
)
@click.option("--force", is_flag=True, help="Overwrite the files of conf/<env> it writes.")
@click.pass_obj
def catalog(metadata: ProjectMetadata, root: str, target_env: str, force: bool) -> None:
    """Write conf/<env>/catalog.yml: every local-disk catalog entry, its filepath on GCS
    (filepaths that derive from a Kedro global: one override in conf/<env>/globals.yml)."""
    config, raw_paths, conf = access.catalog_sources(metadata)
    env = catalog_env(config, root, str(metadata.project_path), _raw_conf(conf / "base"))
    files = {
        conf / target_env / "globals.yml": env.globals_yaml(root, target_env)
        if env.globals
        else "",
        conf / target_env / "catalog.yml": env.yaml(root, target_env) if env.entries else "",
    }
    files = {target: text for target, text in files.items() if text}
    for target in files:
        if target.exists() and not force:
            shown = target.relative_to(metadata.project_path)
            raise click.ClickException(f"{shown} exists; --force overwrites it.")
    for name, path in env.outside.items():
        click.secho(f"left alone: {name} ({path} is outside the project)", fg="yellow")
    for name, kind in _without_path(config).items():
        click.secho(
            f"left alone: {name} ({kind} has no filepath or path, so it is not on local disk: "
            "the pods use it as configured and must be able to reach it)",
            fg="yellow",
        )
    if not files:
        click.echo("No catalog entry is on local disk: nothing to write.")
        return
    for target, text in files.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    _say_written(metadata, env, conf / target_env, root)
    commands = upload_commands(raw_paths, root)
    if commands:
        click.echo("Upload the raw inputs:")
        click.echo("".join(f"  {command}\n" for command in commands), nl=False)
    click.echo(f"Next: kedro airflow create -j templates/gcs_bridge.j2 -e {target_env}")


def _say_written(metadata: ProjectMetadata, env: CatalogEnv, folder: Path, root: str) -> None:
    """What the command wrote, and each entry's move (through a global when it is one)."""
    shown = folder.relative_to(metadata.project_path)
    if env.globals:
        names = sorted({v for v in env.through.values() if v.startswith("${globals:")})
        count = sum(1 for name in env.through if name not in env.entries)
        click.secho(
            f"wrote {shown}/globals.yml: {', '.join(names)} moved to {root}, which moves "
            f"{count} local-disk entries",
            fg="green",
        )
    if env.entries:
        click.secho(
            f"wrote {shown}/catalog.yml: {len(env.entries)} local-disk entries moved to {root}",
            fg="green",
        )
    for name, (old, new) in env.moved.items():
        through = f" (through {env.through[name]})" if name in env.through else ""
        click.echo(f"  {name}: {old} -> {new}{through}")
    for variable in env.variables:
        click.secho(
            f"note: {variable} is a catalog variable: Kedro resolves it inside each env's "
            f"folder, so {shown}/catalog.yml sets it again and copies the entries that use "
            f"it. Made a global (`{variable.lstrip('_')}:` in conf/base/globals.yml, "
            f"`${{globals:{variable.lstrip('_')}}}` in the catalog), one override in "
            f"{shown}/globals.yml would move them all.",
            fg="yellow",
        )


def _raw_conf(base: Path) -> RawConf:
    """conf/base as written (interpolations unresolved): the files Kedro's default catalog
    patterns take (`catalog*`, `catalog*/**`, `**/catalog*`), and globals.yml."""
    catalog: dict[str, Any] = {}
    for path in sorted(base.rglob("*.y*ml")):
        parts = path.relative_to(base).parts
        if any(part.startswith(".") for part in parts):
            continue
        if path.suffix in (".yml", ".yaml") and any(p.startswith("catalog") for p in parts):
            catalog.update(_yaml_mapping(path))
    return RawConf(catalog, _yaml_mapping(base / "globals.yml"))


def _yaml_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    return dict(loaded) if isinstance(loaded, dict) else {}
