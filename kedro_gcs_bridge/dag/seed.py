"""Replay's raw inputs on a GCS emulator: seeded from the project's files, checked up front.

After `kedro gcs-bridge catalog --root gs://<bucket>/<path>`, the DAG's env reads its raw
inputs from gs:// while the project keeps them on local disk (the default env's catalog). An
emulator started for a replay is empty: `seed` uploads each input's local file or folder to
the gs:// path the DAG's env names (creating its bucket), and `missing` finds the inputs still
not there, so replay fails before any task starts, naming the dataset, the bucket and the
object, instead of one task after another failing deep inside gcsfs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro_gcs_bridge.errors import ReplayError
from kedro_gcs_bridge.planning.storage import DatasetLocation, Where

_GCS = ("gs://", "gcs://")


@dataclass(frozen=True)
class RemoteInput:
    """A raw input the DAG's env reads from GCS.

    Attributes:
        dataset: Its catalog name.
        url: Where the DAG's env reads it (`gs://bucket/path`).
        local: The project's file or folder the default env reads it from, when it exists.
    """

    dataset: str
    url: str
    local: Path | None

    @property
    def bucket(self) -> str:
        return self.url.split("://", 1)[1].split("/", 1)[0]

    @property
    def object(self) -> str:
        return self.url.split("://", 1)[1].partition("/")[2]


def remote_inputs(
    remote: Mapping[str, DatasetLocation], local: Mapping[str, DatasetLocation], project: Path
) -> list[RemoteInput]:
    """The inputs the DAG's env keeps on GCS, each with its local file when there is one.

    Args:
        remote: Input name -> where the DAG's env keeps it.
        local: Input name -> where the project's default env keeps it.
        project: The project folder (relative local paths are under it).
    """
    found = []
    for name, location in sorted(remote.items()):
        if location.where is not Where.REMOTE or not str(location.path).startswith(_GCS):
            continue
        mine = local.get(name)
        path = None
        if mine is not None and mine.where is Where.LOCAL and mine.path:
            candidate = Path(mine.path)
            candidate = candidate if candidate.is_absolute() else project / candidate
            path = candidate if candidate.exists() else None
        found.append(RemoteInput(name, str(location.path).rstrip("/"), path))
    return found


def gcs_filesystem() -> Any:
    """gcsfs for gs:// URLs (anonymous against an emulator), not a cached instance."""
    import fsspec

    from kedro_gcs_bridge.pod.backend import storage_options

    return fsspec.filesystem("gs", **storage_options("gs://"), skip_instance_cache=True)


def seed(inputs: Iterable[RemoteInput], fs: Any = None) -> list[str]:
    """Uploads each input's local file or folder to its gs:// path (its bucket made when
    missing); returns one line per upload."""
    fs = fs or gcs_filesystem()
    lines = []
    for item in inputs:
        if item.local is None:
            continue
        if not fs.exists(item.bucket):
            fs.mkdir(item.bucket)
        if item.local.is_dir():
            fs.put(f"{item.local}/", f"{item.url}/", recursive=True)
        else:
            fs.put_file(str(item.local), item.url)
        lines.append(f"seeded {item.dataset}: {item.local} -> {item.url}")
    return lines


def missing(inputs: Iterable[RemoteInput], fs: Any = None) -> list[RemoteInput]:
    """The inputs with no object (nor folder) at their gs:// path."""
    fs = fs or gcs_filesystem()
    fs.invalidate_cache()
    return [item for item in inputs if not fs.exists(item.url)]


def missing_error(absent: Sequence[RemoteInput], emulator: str, seeded: bool) -> ReplayError:
    """One error for the inputs not on the emulator: each dataset, bucket and object, and
    what to do (`--seed`, or upload by hand; inputs with no local file cannot be seeded)."""
    named = "; ".join(
        f"'{item.dataset}' (bucket {item.bucket}, object {item.object})" for item in absent
    )
    unseedable = [item.dataset for item in absent if item.local is None]
    if not seeded and not unseedable:
        remedy = "pass --seed to upload the project's local files of these inputs"
    else:
        without = ", ".join(unseedable)
        remedy = (
            f"no local file of {without} in the project's default env to seed from: replay "
            "first the DAG of the pipeline that makes them, on an emulator you keep running "
            f"(STORAGE_EMULATOR_HOST), or upload them to the emulator ({emulator}) yourself"
        )
    return ReplayError(
        f"{len(absent)} input(s) of the DAG are not on the GCS emulator {emulator}: {named}. "
        f"Remedy: {remedy}."
    )
