"""The run prefix: where one DAG run's boundary datasets and manifests live, through fsspec.

Layout (one function each, so it is visible here and nowhere else)::

    <prefix>/data/<dataset>/data.<ext>      the value, written by kedro-datasets
    <prefix>/data/<dataset>/record.json     format, size, crc32c, producer, attempt
    <prefix>/manifests/<task>.json          written last by a group: all it saved

`<prefix>` is any fsspec URL: `gs://bucket/root/<dag_id>/<run_id>` on GKE, `file://` or a
path locally, `memory://` in tests. A GCS object appears whole or not at all; on other
file systems every object is written under a temporary name and renamed into place, so a
reader never sees half an object. A retried group writes the same names again.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import google_crc32c
from fsspec.implementations.local import LocalFileSystem

from kedro_gcs_bridge.errors import (
    ChecksumError,
    ForbiddenFormatError,
    HandoffError,
    MissingHandoffError,
)
from kedro_gcs_bridge.pod.formats import FORMATS, choose_encoding, rebuild

logger = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_CHUNK = 8 * 1024 * 1024
_GCS_PROTOCOLS = {"gs", "gcs"}
#: The object that marks a folder as a run prefix; `runs list/gc` only ever touch marked ones.
MARKER_OBJECT = "_gcs_bridge_run.json"
MARKER_KIND = "kedro-gcs-bridge run prefix"
#: gcsfs block for handoff reads and writes (see `HandoffStore.__init__`).
_GCS_BLOCK = 50 * 2**20


def object_key(dataset: str) -> str:
    """A dataset name as one safe object-name segment (stable, reversible escaping).

    Letters, digits, `.`, `_` and `-` stay (so `features.x` keeps its name); everything else,
    and a leading dot (no `.`/`..` segments), is percent-encoded.
    """
    key = _SAFE.sub(lambda match: "".join(f"%{b:02X}" for b in match[0].encode()), dataset)
    return "%2E" + key[1:] if key.startswith(".") else key


_STORAGE_MODULES = ("gcsfs", "aiohttp", "requests", "google.auth", "google.api_core", "fsspec")


def storage_cause(exc: BaseException) -> BaseException | None:
    """The storage failure behind an exception (network, HTTP, I/O), if that is what it is.

    Such an error must not make the store try another format: the data was fine, the
    storage was not.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        module = type(current).__module__
        if isinstance(current, OSError | TimeoutError) or module.startswith(_STORAGE_MODULES):
            return current
        current = current.__cause__ or current.__context__
    return None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def storage_options(prefix: str) -> dict[str, Any]:
    """fsspec options for a prefix; anonymous access when a local GCS emulator is configured."""
    protocol = prefix.split("://", 1)[0] if "://" in prefix else "file"
    if protocol in _GCS_PROTOCOLS and os.environ.get("STORAGE_EMULATOR_HOST"):
        # gcsfs reads this on import; its experimental gRPC path stalls against emulators.
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        return {"token": "anon", "project": "local-emulator"}
    return {}


@dataclass(frozen=True)
class Record:
    """What the producer recorded about one saved dataset."""

    dataset: str
    format: str
    path: str
    size: int
    crc32c: str
    producer_task: str
    attempt: int
    saved_at: str
    extra: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-safe data."""
        return {
            "dataset": self.dataset,
            "format": self.format,
            "path": self.path,
            "size": self.size,
            "crc32c": self.crc32c,
            "producer_task": self.producer_task,
            "attempt": self.attempt,
            "saved_at": self.saved_at,
            "extra": dict(self.extra),
        }


class HandoffStore:
    """Saves and loads boundary datasets under one run prefix."""

    def __init__(
        self,
        prefix: str,
        task: str,
        attempt: int = 1,
        allow_pickle: bool = True,
        fs_args: Mapping[str, Any] | None = None,
    ) -> None:
        """Opens the run prefix (nothing is written until something is saved).

        Args:
            prefix: fsspec URL of the run prefix.
            task: The Airflow task (group) this process runs, for records and its manifest.
            attempt: The Airflow try number.
            allow_pickle: False forbids the pickle fallback.
            fs_args: Extra file system arguments for the kedro-datasets datasets.
        """
        self.prefix = prefix.rstrip("/")
        self.task = task
        self.attempt = attempt
        self.allow_pickle = allow_pickle
        options = storage_options(self.prefix)
        protocol = self.prefix.split("://", 1)[0] if "://" in self.prefix else "file"
        # kedro-datasets reads and writes through fs.open(): gcsfs then moves one block at a
        # time (default 5 MiB), each a sequential request while the codec waits. 50 MiB is the
        # chunk gcsfs's own pipe/put use (benchmarks/handoff.py has the figures).
        blocks = {"block_size": _GCS_BLOCK}
        defaults = blocks if protocol in _GCS_PROTOCOLS else {}
        self._fs_args = {**options, **defaults, **(fs_args or {})}
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.prefix, **options)
        except (ValueError, ImportError) as exc:
            raise HandoffError(f"cannot open run prefix {self.prefix}: {exc}") from exc
        self._atomic_objects = isinstance(self.fs, LocalFileSystem) is False
        self.saved: dict[str, Record] = {}
        self.loaded: dict[str, Record] = {}

    # --- layout -------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        """A path of the file system as a URL kedro-datasets can open."""
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return f"{protocol}://{path}" if protocol not in {"file", "local"} else path

    def data_dir(self, dataset: str) -> str:
        """Where one dataset's objects live."""
        return f"{self.root}/data/{object_key(dataset)}"

    def record_path(self, dataset: str) -> str:
        """The dataset's record."""
        return f"{self.data_dir(dataset)}/record.json"

    def manifest_path(self, task: str) -> str:
        """A group's manifest."""
        return f"{self.root}/manifests/{object_key(task)}.json"

    # --- checks -------------------------------------------------------------------------
    def check_reachable(self) -> None:
        """Fails early, naming the URL, when the bucket or folder cannot be used.

        Raises:
            HandoffError: The bucket does not exist or cannot be listed.
        """
        try:
            if self.fs.protocol and set(_as_tuple(self.fs.protocol)) & _GCS_PROTOCOLS:
                bucket = self.root.split("/", 1)[0]
                if not self.fs.exists(bucket):
                    raise HandoffError(
                        f"run prefix {self.prefix}: bucket '{bucket}' does not exist or this "
                        "pod's service account cannot see it (check gcs_bridge_root and the "
                        "Workload Identity binding)."
                    )
            elif isinstance(self.fs, LocalFileSystem):
                self.fs.makedirs(self.root, exist_ok=True)
        except HandoffError:
            raise
        except Exception as exc:
            raise HandoffError(f"run prefix {self.prefix} is not reachable: {exc}") from exc

    def _checksum(self, path: str) -> tuple[int, str]:
        """(size, base64 crc32c) of a stored object: from GCS metadata, else by reading it."""
        self.fs.invalidate_cache(path)
        info = self.fs.info(path)
        if info.get("crc32c"):
            return int(info["size"]), str(info["crc32c"])
        checksum = google_crc32c.Checksum()
        with self.fs.open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                checksum.update(chunk)
        return int(info["size"]), base64.b64encode(checksum.digest()).decode()

    # --- writing ------------------------------------------------------------------------
    def write_json(self, path: str, payload: Mapping[str, Any]) -> None:
        """Writes a JSON object atomically (a reader sees the old one or the new one)."""
        data = json.dumps(payload, indent=2, sort_keys=True).encode()
        if self._atomic_objects:
            self.fs.pipe_file(path, data)
            return
        temporary = f"{path}.tmp-{uuid.uuid4().hex}"
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.pipe_file(temporary, data)
        self.fs.mv(temporary, path)

    def create_json(self, path: str, payload: Mapping[str, Any]) -> bool:
        """Writes a JSON object only if none exists; True if this call created it.

        Exclusive where the storage can do it: GCS `ifGenerationMatch=0`, a hard link on local
        disk. (The gcp-storage-emulator ignores `ifGenerationMatch`: there the last writer wins.)
        """
        data = json.dumps(payload, indent=2, sort_keys=True).encode()
        folder = path.rsplit("/", 1)[0]
        if isinstance(self.fs, LocalFileSystem):
            self.fs.makedirs(folder, exist_ok=True)
            temporary = f"{path}.tmp-{uuid.uuid4().hex}"
            self.fs.pipe_file(temporary, data)
            try:
                os.link(temporary, path)
            except FileExistsError:
                return False
            finally:
                Path(temporary).unlink()
            return True
        if set(_as_tuple(self.fs.protocol)) & _GCS_PROTOCOLS:
            try:
                self.fs.pipe_file(path, data, mode="create")
            except FileExistsError:
                return False
            return True
        self.fs.invalidate_cache(folder)
        if self.fs.exists(path):
            return False
        self.fs.pipe_file(path, data)
        return True

    def read_run_object(self, name: str) -> dict[str, Any] | None:
        """The JSON object `<prefix>/<name>` (e.g. `_mlflow/run.json`), or None."""
        path = f"{self.root}/{name}"
        self.fs.invalidate_cache(path.rsplit("/", 1)[0])
        try:
            return dict(json.loads(self.fs.cat_file(path)))
        except FileNotFoundError:
            return None

    def create_run_object(self, name: str, payload: Mapping[str, Any]) -> bool:
        """Creates the JSON object `<prefix>/<name>` unless it exists; True if created."""
        return self.create_json(f"{self.root}/{name}", payload)

    def mark(self, dag_id: str | None, run_id: str | None) -> None:
        """Marks the prefix as a run prefix (once: the first group's marker stays)."""
        from kedro_gcs_bridge import __version__

        self.create_run_object(
            MARKER_OBJECT,
            {
                "kind": MARKER_KIND,
                "dag_id": dag_id,
                "run_id": run_id,
                "package_version": __version__,
                "created_at": _now(),
            },
        )

    def start_attempt(self) -> None:
        """Removes this group's manifest: while it runs, the group is not complete."""
        self._discard(self.manifest_path(self.task))

    def save(self, dataset: str, value: Any) -> Record:
        """Saves a boundary dataset: the value, then its record.

        Raises:
            ForbiddenFormatError: Only pickle fits and pickle is forbidden.
            HandoffError: Every fitting format failed, or storage failed.
        """
        from kedro.io import AbstractDataset

        errors: list[str] = []
        self._remove_leftovers(dataset)
        for encoding in choose_encoding(dataset, value, self.allow_pickle):
            fmt = encoding.format
            path = f"{self.data_dir(dataset)}/data.{fmt.extension}"
            target = path if self._atomic_objects else f"{path}.tmp-{uuid.uuid4().hex}"
            if not self._atomic_objects:
                self.fs.makedirs(self.data_dir(dataset), exist_ok=True)
            writer = AbstractDataset.from_config(
                dataset, fmt.dataset_config(self._url(target), self._fs_args)
            )
            try:
                writer.save(encoding.value)
            except Exception as exc:
                self._discard(target)
                cause = storage_cause(exc)
                if cause is not None:
                    raise HandoffError(
                        f"storage error while saving dataset '{dataset}' to "
                        f"{self._url(path)}: {type(cause).__name__}: {cause}. Nothing was "
                        "recorded for it, so no reader will take it for complete; the task "
                        "can be retried."
                    ) from exc
                errors.append(f"{fmt.name}: {exc}")
                continue
            if target != path:
                self.fs.mv(target, path)
            size, crc = self._checksum(path)
            record = Record(
                dataset=dataset,
                format=fmt.name,
                path=self._url(path),
                size=size,
                crc32c=crc,
                producer_task=self.task,
                attempt=self.attempt,
                saved_at=_now(),
                extra=encoding.extra,
            )
            self.write_json(self.record_path(dataset), record.to_json())
            self._remove_other_formats(dataset, keep=fmt.extension)
            self.saved[dataset] = record
            logger.info(
                "Handed off %s as %s (%d bytes) to %s", dataset, fmt.name, size, record.path
            )
            return record
        if not self.allow_pickle:
            raise ForbiddenFormatError(
                f"dataset '{dataset}' ({type(value).__qualname__}) could not be stored without "
                f"pickle, which is forbidden: {'; '.join(errors)}"
            )
        raise HandoffError(f"dataset '{dataset}' could not be saved: {'; '.join(errors)}")

    def _discard(self, path: str) -> None:
        # One DELETE: asking first whether the object exists costs 2-3 more requests on GCS.
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass
        except OSError:  # pragma: no cover - best effort clean-up of a failed attempt
            logger.warning("Could not remove %s", path)

    def _remove_leftovers(self, dataset: str) -> None:
        """Temporary objects of an attempt that was killed mid-save (never read by anyone)."""
        if self._atomic_objects:
            return
        for path in self.fs.glob(f"{self.data_dir(dataset)}/*.tmp-*"):
            self._discard(path)

    def _remove_other_formats(self, dataset: str, keep: str) -> None:
        """A retry that chose another format leaves no stale object of the old one."""
        for fmt in FORMATS.values():
            if fmt.extension != keep:
                self._discard(f"{self.data_dir(dataset)}/data.{fmt.extension}")

    def write_manifest(
        self, nodes: Iterable[str], started_at: str, extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Writes this group's manifest, after all its outputs: the group is complete."""
        manifest = {
            "task": self.task,
            "nodes": sorted(nodes),
            "attempt": self.attempt,
            "started_at": started_at,
            "finished_at": _now(),
            "datasets": {name: record.to_json() for name, record in sorted(self.saved.items())},
            **(extra or {}),
        }
        self.write_json(self.manifest_path(self.task), manifest)
        return manifest

    # --- reading ------------------------------------------------------------------------
    def manifests(self) -> list[dict[str, Any]]:
        """Every manifest under the prefix (other pods' writes included)."""
        folder = f"{self.root}/manifests"
        self.fs.invalidate_cache(folder)
        try:
            paths = self.fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []
        return [json.loads(self.fs.cat_file(p)) for p in sorted(paths) if p.endswith(".json")]

    def read_record(self, dataset: str, producer_node: str | None = None) -> Record:
        """The producer's record of a dataset.

        Raises:
            MissingHandoffError: No record: names the dataset, the producing node and its
                group's manifest, and the path looked at.
        """
        path = self.record_path(dataset)
        self.fs.invalidate_cache(path.rsplit("/", 1)[0])
        try:
            payload = json.loads(self.fs.cat_file(path))
        except FileNotFoundError:
            raise MissingHandoffError(self._missing_message(dataset, producer_node)) from None
        return Record(**payload)

    def _missing_message(self, dataset: str, producer_node: str | None) -> str:
        where = self._url(self.record_path(dataset))
        if producer_node is None:
            return (
                f"dataset '{dataset}' is not under the run prefix ({where}) and no node makes it."
            )
        owner = next((m for m in self.manifests() if producer_node in m.get("nodes", [])), None)
        if owner is None:
            state = (
                f"no manifest under {self.prefix}/manifests lists node '{producer_node}': its "
                "task has not run yet or did not finish. Run that task first (check the DAG's "
                "dependencies, or the run prefix / run id this task was given)."
            )
        else:
            state = (
                f"the manifest of task '{owner['task']}' (attempt {owner.get('attempt')}, "
                f"finished {owner.get('finished_at')}) exists but does not list it; was the "
                "producer run with another pipeline or a different plan?"
            )
        return (
            f"dataset '{dataset}', made by node '{producer_node}', is not under the run prefix "
            f"(looked for {where}); {state}"
        )

    def load(self, dataset: str, producer_node: str | None = None) -> Any:
        """Loads a boundary dataset after checking it against its record.

        Raises:
            MissingHandoffError: The dataset was never saved under this prefix.
            ChecksumError: The stored object is not what the producer recorded.
        """
        from kedro.io import AbstractDataset

        record = self.read_record(dataset, producer_node)
        fmt = FORMATS.get(record.format)
        if fmt is None:
            raise HandoffError(
                f"dataset '{dataset}' was stored as '{record.format}', which this version of "
                "kedro-gcs-bridge cannot read; use the same version in every pod."
            )
        path = f"{self.data_dir(dataset)}/data.{fmt.extension}"
        try:
            size, crc = self._checksum(path)
        except FileNotFoundError:
            raise ChecksumError(
                f"object {self._url(path)} of dataset '{dataset}' is missing although its "
                f"record says task '{record.producer_task}' saved it."
            ) from None
        if (size, crc) != (record.size, record.crc32c):
            raise ChecksumError(
                f"object {self._url(path)} of dataset '{dataset}' does not match its record "
                f"(size {size} vs {record.size}, crc32c {crc} vs {record.crc32c}): it was "
                f"changed or truncated after task '{record.producer_task}' wrote it. Re-run "
                "that task."
            )
        reader = AbstractDataset.from_config(
            dataset, fmt.dataset_config(self._url(path), self._fs_args)
        )
        try:
            value = reader.load()
        except Exception as exc:
            cause = storage_cause(exc)
            if cause is None:
                raise
            raise HandoffError(
                f"storage error while loading dataset '{dataset}' from {self._url(path)}: "
                f"{type(cause).__name__}: {cause}"
            ) from exc
        self.loaded[dataset] = record
        logger.info("Loaded %s (%s, %d bytes) from %s", dataset, fmt.name, size, record.path)
        return rebuild(value, record.extra)


def _as_tuple(protocol: str | tuple[str, ...]) -> tuple[str, ...]:
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
