"""The GCS catalog env that `kedro gcs-bridge catalog` writes: every local-disk entry moved.

Kedro merges `conf/<env>/catalog.yml` over `conf/base` key by key, so an env that repeats each
local-disk entry (a dataset or a factory pattern) with the same type and options and its
filepath under a `gs://bucket/path` root moves the whole catalog to GCS without touching base:
`data/01_raw/companies.csv` becomes `gs://bucket/path/data/01_raw/companies.csv`. Pure: the
command reads the config and writes the file (cli.py).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from kedro_gcs_bridge.errors import CatalogEnvError
from kedro_gcs_bridge.planning.storage import Where
from kedro_gcs_bridge.pod.catalog import location_of_config

#: `gs://bucket` or `gs://bucket/path`, bucket named as GCS allows.
_ROOT = re.compile(r"^gs://([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(/[^\s]*)?$")

#: Envs the command never writes: base holds the catalog it overrides; local is left out of
#: the image and is where local runs read their credentials.
RESERVED_ENVS = ("base", "local")

_PATH_KEYS = ("filepath", "path")


def parse_root(root: str) -> str:
    """The root as `gs://bucket[/path]`, without a trailing slash.

    Raises:
        CatalogEnvError: It is not a gs:// URL of a bucket (and an optional path).
    """
    match = _ROOT.match(root.rstrip("/"))
    if match is None or "//" in (match[2] or ""):
        raise CatalogEnvError(
            f"--root {root!r} is not a GCS location: write gs://<bucket>[/<path>], e.g. "
            "gs://acme-ml/spaceflights (the bucket must exist; the pods' service account "
            "needs read and write access to it)."
        )
    return root.rstrip("/")


def check_env(env: str) -> str:
    """The env name to write.

    Raises:
        CatalogEnvError: It is `base` or `local`, or not a plain folder name.
    """
    if env in RESERVED_ENVS or not re.fullmatch(r"[\w.-]+", env) or env.startswith("."):
        raise CatalogEnvError(
            f"--env {env!r} cannot hold the GCS catalog: conf/base is the catalog it overrides "
            "and conf/local is left out of the image; use a new env such as --env gcs."
        )
    return env


def project_relative(path: str, project_path: str) -> str | None:
    """A local path relative to the project, or None when it lies outside the project."""
    path = path.removeprefix("file://")
    if posixpath.isabs(path):
        root = project_path.rstrip("/") + "/"
        if not path.startswith(root):
            return None
        path = path[len(root) :]
    relative = posixpath.normpath(path)
    return None if relative.startswith("..") else relative


def _with_path(config: Mapping[str, Any], new_path: str) -> dict[str, Any]:
    """The entry with its (or its wrapped `dataset:` entry's) filepath replaced."""
    moved = dict(config)
    for key in _PATH_KEYS:
        if isinstance(moved.get(key), str):
            moved[key] = new_path
            return moved
    moved["dataset"] = _with_path(moved["dataset"], new_path)
    return moved


@dataclass(frozen=True)
class CatalogEnv:
    """What the command writes and says.

    Attributes:
        entries: The override catalog (name or pattern -> entry).
        moved: Name -> (old filepath, new filepath), for the report.
        outside: Local entries left alone because their path is outside the project.
    """

    entries: Mapping[str, Mapping[str, Any]]
    moved: Mapping[str, tuple[str, str]]
    outside: Mapping[str, str]

    def yaml(self, root: str, env: str) -> str:
        """The catalog.yml text, with a header saying where it came from."""
        header = (
            f"# Written by `kedro gcs-bridge catalog --root {root} --env {env}`: every local-disk\n"
            f"# entry of the catalog, same type and options, its filepath moved under {root}.\n"
            f"# Run with `--env {env}` (kedro run -e {env}; kedro airflow create -e {env}).\n"
        )
        body = yaml.safe_dump(dict(self.entries), sort_keys=False, default_flow_style=False)
        return header + body


def catalog_env(config: Mapping[str, Any], root: str, project_path: str) -> CatalogEnv:
    """Moves every local-disk entry of a catalog config (datasets and patterns) under a root.

    Args:
        config: The catalog config as Kedro loads it (`config_loader["catalog"]`).
        root: A parsed root (`parse_root`).
        project_path: The project folder, to make absolute local paths relative.
    """
    entries: dict[str, Mapping[str, Any]] = {}
    moved: dict[str, tuple[str, str]] = {}
    outside: dict[str, str] = {}
    for name, entry in config.items():
        if name.startswith("_") or not isinstance(entry, Mapping):
            continue  # YAML anchors and non-dataset keys: Kedro skips them too
        location = location_of_config(entry)
        if location.where is not Where.LOCAL or location.path is None:
            continue
        relative = project_relative(location.path, project_path)
        if relative is None:
            outside[name] = location.path
            continue
        new_path = f"{root}/{relative}"
        entries[name] = _with_path(entry, new_path)
        moved[name] = (location.path, new_path)
    return CatalogEnv(entries, moved, outside)


def upload_commands(raw_paths: Iterable[str], root: str) -> list[str]:
    """`gcloud storage cp` commands that upload the raw inputs' folders under the root.

    Args:
        raw_paths: Project-relative local paths of the raw inputs.
        root: A parsed root.
    """
    paths = set(raw_paths)
    commands = []
    for folder in sorted({posixpath.dirname(path) or path for path in paths}):
        recursive = "-r " if folder not in paths else ""
        commands.append(f"gcloud storage cp {recursive}{folder} {root}/{folder}")
    return commands
