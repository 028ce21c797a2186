"""The GCS catalog env that `kedro gcs-bridge catalog` writes: every local-disk entry moved.

Kedro merges `conf/<env>/catalog.yml` over `conf/base` key by key, so an env that repeats each
local-disk entry (a dataset or a factory pattern) with the same type and options and its
filepath under a `gs://bucket/path` root moves the whole catalog to GCS without touching base:
`data/01_raw/companies.csv` becomes `gs://bucket/path/data/01_raw/companies.csv`. Pure: the
command reads the config and writes the file (cli/project.py).

Filepaths that start with a Kedro global (`${globals:base_location}/01_raw/x.csv`, the global
in conf/base/globals.yml) need no copy: Kedro merges globals.yml across envs before it
resolves the catalog, so one override of the global in conf/<env>/globals.yml moves them
all. Catalog variables (`_base_location: data/` in a catalog*.yml, used as
`${_base_location}`) are resolved inside each env's folder, so an override in conf/<env>
never reaches conf/base's entries (checked with Kedro 1.7): those entries are copied, the
variable set once at the top of the env's catalog and the entries keeping `${_base_location}`.
"""

from __future__ import annotations

import copy
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from kedro_gcs_bridge.errors import CatalogEnvError
from kedro_gcs_bridge.planning.storage import Where
from kedro_gcs_bridge.pod.catalog import location_of_config
from kedro_gcs_bridge.values import root_url_value

#: `gs://bucket` or `gs://bucket/path`, bucket named as GCS allows.

#: Envs the command never writes: base holds the catalog it overrides; local is left out of
#: the image and is where local runs read their credentials.
RESERVED_ENVS = ("base", "local")

_PATH_KEYS = ("filepath", "path")

#: A filepath that starts with an interpolation: `${globals:key}rest` or `${_var}rest`.
_DERIVED = re.compile(r"^\$\{(globals:)?([A-Za-z_][\w.-]*)\}(.*)$", re.DOTALL)


@dataclass(frozen=True)
class RawConf:
    """The base env as written, interpolations unresolved.

    Attributes:
        catalog: The catalog files' top-level keys (entries, and `_` variables).
        globals: conf/base/globals.yml.
    """

    catalog: Mapping[str, Any]
    globals: Mapping[str, Any]


def parse_root(root: str) -> str:
    """The root as `gs://bucket[/path]`, without a trailing slash.

    Raises:
        CatalogEnvError: It is not a gs:// URL of a bucket (and an optional path), saying why.
    """
    try:
        root_url_value(root, schemes=("gs",))
        if any(char.isspace() for char in root):
            raise ValueError(f"{root!r} holds a space.")
    except ValueError as exc:
        raise CatalogEnvError(
            f"--root {root!r} is not a GCS location: {str(exc).rstrip('.')}; write "
            "gs://<bucket>[/<path>], e.g. gs://acme-ml/spaceflights (the bucket must exist; "
            "the pods' service account needs read and write access to it)."
        ) from exc
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


def _path_of(config: Any) -> str | None:
    """The entry's (or its wrapped `dataset:` entry's) filepath as written, or None."""
    if not isinstance(config, Mapping):
        return None
    for key in _PATH_KEYS:
        if isinstance(config.get(key), str):
            return config[key]
    return _path_of(config.get("dataset"))


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
        globals: The env's globals.yml (top-level keys of conf/base's, one leaf moved), when
            filepaths derive from Kedro globals: those entries need no copy.
        variables: Catalog variables (`_base_location`) set at the top of the env's catalog,
            for the copied entries that keep `${_base_location}`.
        through: Name -> the global or variable its new filepath comes from.
    """

    entries: Mapping[str, Mapping[str, Any]]
    moved: Mapping[str, tuple[str, str]]
    outside: Mapping[str, str]
    globals: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, str] = field(default_factory=dict)
    through: Mapping[str, str] = field(default_factory=dict)

    def yaml(self, root: str, env: str) -> str:
        """The catalog.yml text, with a header saying where it came from."""
        header = (
            f"# Written by `kedro gcs-bridge catalog --root {root} --env {env}`: every local-disk\n"
            f"# entry of the catalog, same type and options, its filepath moved under {root}.\n"
            f"# Run with `--env {env}` (kedro run -e {env}; kedro airflow create -e {env}).\n"
        )
        body = {**self.variables, **self.entries}
        return header + yaml.safe_dump(body, sort_keys=False, default_flow_style=False)

    def globals_yaml(self, root: str, env: str) -> str:
        """The globals.yml text: the globals the filepaths derive from, moved under the root."""
        header = (
            f"# Written by `kedro gcs-bridge catalog --root {root} --env {env}`: the globals\n"
            f"# local-disk filepaths derive from, moved under {root} (one override for them all).\n"
        )
        body = yaml.safe_dump(dict(self.globals), sort_keys=False, default_flow_style=False)
        return header + body


@dataclass(frozen=True)
class _Local:
    """One local-disk entry inside the project, and where it moves."""

    name: str
    entry: Mapping[str, Any]
    old: str
    new: str


def catalog_env(
    config: Mapping[str, Any], root: str, project_path: str, raw: RawConf | None = None
) -> CatalogEnv:
    """Moves every local-disk entry of a catalog config (datasets and patterns) under a root.

    Args:
        config: The catalog config as Kedro loads it (`config_loader["catalog"]`).
        root: A parsed root (`parse_root`).
        project_path: The project folder, to make absolute local paths relative.
        raw: conf/base as written: filepaths that derive from a global are moved by
            overriding the global (see the module docstring).
    """
    found: list[_Local] = []
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
        found.append(_Local(name, entry, location.path, f"{root}/{relative}"))
    derived = _derived(found, raw, root, project_path) if raw is not None else {}
    entries: dict[str, Mapping[str, Any]] = {}
    new_globals: dict[str, Any] = {}
    variables: dict[str, str] = {}
    through: dict[str, str] = {}
    for local in found:
        source = derived.get(local.name)
        if source is None:
            entries[local.name] = _with_path(local.entry, local.new)
            continue
        kind, key, value, written = source
        through[local.name] = f"${{{kind}{key}}}"
        if kind:
            new_globals = _set_global(new_globals or {}, raw.globals if raw else {}, key, value)
        else:
            variables[key] = value
            entries[local.name] = _with_path(local.entry, written)
    moved = {local.name: (local.old, local.new) for local in found}
    return CatalogEnv(entries, moved, outside, new_globals, variables, through)


def _lookup(tree: Mapping[str, Any], key: str) -> Any:
    """A dotted key's value in a nested mapping (None when absent)."""
    value: Any = tree
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _set_global(
    written: dict[str, Any], base: Mapping[str, Any], key: str, value: str
) -> dict[str, Any]:
    """The env's globals with `key` set: its whole top-level key copied from base (Kedro
    replaces a top-level key of base's globals by the env's), one leaf changed."""
    top, _, rest = key.partition(".")
    if not rest:
        return {**written, top: value}
    tree = copy.deepcopy(written.get(top, base.get(top, {})))
    node = tree
    *parents, leaf = rest.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value
    return {**written, top: tree}


def _derived(
    found: list[_Local], raw: RawConf, root: str, project_path: str
) -> dict[str, tuple[str, str, str, str]]:
    """Name -> (`globals:` or "", the global or variable, its value under the root, the
    filepath as the env writes it) for each entry whose path derives from one, when moving
    that one value moves every entry using it exactly where the copy would."""
    users: dict[tuple[str, str], list[tuple[_Local, str, str]]] = {}
    for local in found:
        written = _path_of(raw.catalog.get(local.name))
        match = _DERIVED.match(written or "")
        if match is None:
            continue
        kind, key, rest = match[1] or "", match[2], match[3]
        if not kind and not key.startswith("_"):
            continue  # another OmegaConf interpolation: the copy keeps it right
        users.setdefault((kind, key), []).append((local, rest, written or ""))
    derived: dict[str, tuple[str, str, str, str]] = {}
    for (kind, key), using in users.items():
        value = _lookup(raw.globals, key) if kind else raw.catalog.get(key)
        moved = _moved_value(
            value, [(rest, local.new) for local, rest, _ in using], root, project_path
        )
        if moved is None:
            continue
        for local, _, written in using:
            derived[local.name] = (kind, key, moved, written)
    return derived


def _moved_value(
    value: Any, uses: list[tuple[str, str]], root: str, project_path: str
) -> str | None:
    """The global's value under the root, such that value + rest is each entry's new path
    (None when no one value does: the entries are copied instead)."""
    if not isinstance(value, str) or "${" in value:
        return None
    relative = project_relative(value, project_path)
    if relative is None:
        return None
    base = root if relative == "." else f"{root}/{relative}"
    for candidate in (base, f"{base}/"):
        if all(candidate + rest == new for rest, new in uses):
            return candidate
    return None


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
