"""The run prefix: where one DAG run's boundary datasets and manifests live, through fsspec.

Layout (computed by `RunLayout` and nowhere else)::

    <prefix>/_gcs_bridge_run.json                   marks the folder as a run prefix
    <prefix>/data/<dataset>/<attempt id>.<ext>      a value, written by kedro-datasets
    <prefix>/manifests/<task>.json                  a group's commit: which object holds what

The commit protocol: every attempt of a group writes its values under names unique to the
attempt (`a<try>-<random>.<ext>`), so attempts never overwrite each other. The group's
manifest, written last and atomically, is the commit: for each dataset it names the object
(on GCS also its generation), its format, size and crc32c. A consumer resolves a boundary
dataset only through its producer's manifest, never by a fixed name or a listing, so it reads
exactly one committed attempt or fails clearly. A manifest is replaced only by an attempt at
least as new (`Backend.update`: a generation precondition on GCS, a locked check and rename on
local disk), so a zombie older attempt resumed late cannot replace a newer commit. Objects of
superseded attempts are never read; `runs gc` removes them with the run.

A consumer reads each object once (the pinned generation on GCS; never through a symlink on
local disk), checks the crc32c of exactly those bytes against the manifest, then decodes them
(frames straight from those bytes in memory, without a copy). A pickle is decoded only when
pickle is allowed and only from an object a committed manifest of this run prefix names.

A catalog dataset on local disk that crosses pods is saved in its own catalog type (format
`catalog`: the entry's type and options in the record's `extra`, e.g. a Parquet file written by
`pandas.ParquetDataset` with the entry's save_args); the consumer decodes the verified bytes
with its own entry (else the recorded one). A catalog type that unpickles obeys `allow_pickle`
as the pickle format does; one that cannot save the value falls back to the value's format.

A large frame on GCS crosses as parts uploaded and read in parallel (`pod/transfer.py`): its
record lists the parts (`<object>.0000`, ...: size, generation) and the crc32c of the whole
stream; the parts are an attempt's objects like any other, committed by the manifest only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import fsspec

from kedro_gcs_bridge.errors import (
    ChecksumError,
    ForbiddenFormatError,
    HandoffError,
    MetadataError,
    MissingHandoffError,
    NotCommittedError,
    SupersededAttemptError,
)
from kedro_gcs_bridge.pod.backend import (
    KEEP,
    Backend,
    crc32c_of,
    dumps,
    open_backend,
    storage_options,
)
from kedro_gcs_bridge.pod.formats import (
    CATALOG,
    Encoding,
    Format,
    catalog_extra,
    choose_encoding,
    rebuild,
    recorded_format,
    unpickles,
)
from kedro_gcs_bridge.pod.transfer import (
    FRAME_READERS,
    Part,
    TransferSettings,
    read_parts,
    remove_paths,
    upload_frame,
    wants_parallel,
)

__all__ = [
    "MARKER_KIND",
    "MARKER_OBJECT",
    "HandoffStore",
    "Record",
    "RunLayout",
    "object_key",
    "open_backend",
    "storage_cause",
    "storage_options",
]

logger = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
#: Longest object-name segment kept as is; longer ones become a readable prefix plus a hash
#: (file systems refuse segments over 255 bytes; GCS names over 1,024).
_MAX_KEY = 160
_KEY_HASH = 16
#: What a manifest may name as an object: the attempt id and an extension, nothing else.
_OBJECT_NAME = re.compile(r"a\d{1,6}-[0-9a-f]{12}\.[a-z][a-z0-9]{1,7}")
#: The object that marks a folder as a run prefix; `runs list/gc` only ever touch marked ones.
MARKER_OBJECT = "_gcs_bridge_run.json"
MARKER_KIND = "kedro-gcs-bridge run prefix"
#: Where verified bytes are handed to kedro-datasets for decoding (process memory).
_STAGING = "memory:///kedro-gcs-bridge-verified"


def object_key(dataset: str) -> str:
    """A dataset name as one safe object-name segment, the same on every backend.

    Letters, digits, `.`, `_` and `-` stay (so `features.x` keeps its name); everything else,
    and a leading dot (no `.`/`..` segments), is percent-encoded. A key longer than 160 bytes
    keeps its first part and ends with `~` and a hash of the whole name (`~` never appears
    otherwise: it is escaped).
    """
    key = _SAFE.sub(lambda match: "".join(f"%{b:02X}" for b in match[0].encode()), dataset)
    key = "%2E" + key[1:] if key.startswith(".") else key
    if len(key) <= _MAX_KEY:
        return key
    head = key[: _MAX_KEY - _KEY_HASH - 1]
    head = head[: head.rfind("%")] if "%" in head[-2:] else head  # never cut an escape
    digest = hashlib.sha256(dataset.encode()).hexdigest()[:_KEY_HASH]
    return f"{head}~{digest}"


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


@dataclass(frozen=True)
class RunLayout:
    """Every object path under one run prefix (`root` is the file system's path of it)."""

    root: str

    def data_dir(self, dataset: str) -> str:
        """The folder of one dataset's objects (one per attempt that saved it)."""
        return f"{self.root}/data/{object_key(dataset)}"

    def data_object(self, dataset: str, name: str) -> str:
        """One attempt's object of a dataset (`name` as a manifest records it)."""
        return f"{self.data_dir(dataset)}/{name}"

    @staticmethod
    def object_name(attempt_id: str, extension: str) -> str:
        """The name an attempt gives its object of a dataset."""
        return f"{attempt_id}.{extension}"

    def part_object(self, dataset: str, name: str, index: int) -> str:
        """Part `index` of an object that crosses as parallel parts."""
        return f"{self.data_object(dataset, name)}.{index:04d}"

    @property
    def manifests_dir(self) -> str:
        """The folder of the groups' manifests."""
        return f"{self.root}/manifests"

    def manifest(self, task: str) -> str:
        """A group's manifest: its commit."""
        return f"{self.manifests_dir}/{object_key(task)}.json"

    def run_object(self, name: str) -> str:
        """A run-level object such as the marker or `_mlflow/run.json`."""
        return f"{self.root}/{name}"


#: Record fields and the JSON types each must have (a table: one check for all of them).
_RECORD_FIELDS: Mapping[str, type | tuple[type, ...]] = {
    "dataset": str,
    "format": str,
    "object": str,
    "path": str,
    "size": int,
    "crc32c": str,
    "generation": (int, type(None)),
    "producer_task": str,
    "attempt": int,
    "saved_at": str,
    "extra": dict,
}
#: Fields a record has only sometimes: `parts` for a frame stored as parallel parts.
_OPTIONAL_RECORD_FIELDS: Mapping[str, type | tuple[type, ...]] = {"parts": list}
_PART_FIELDS: Mapping[str, type | tuple[type, ...]] = {
    "size": int,
    "generation": (int, type(None)),
    "crc32c": str,
}
_MANIFEST_FIELDS: Mapping[str, type | tuple[type, ...]] = {
    "task": str,
    "nodes": list,
    "attempt": int,
    "datasets": dict,
}


def _check_fields(
    payload: Any, fields: Mapping[str, type | tuple[type, ...]], what: str
) -> dict[str, Any]:
    """`payload` as a dict with every field of the table, of the right type."""
    if not isinstance(payload, dict):
        raise MetadataError(f"{what} is a JSON {type(payload).__name__}, not an object.")
    problems = [
        f"'{name}' is missing" if name not in payload else f"'{name}' is not {_kind(kind)}"
        for name, kind in fields.items()
        if name not in payload
        or not isinstance(payload[name], kind)
        or isinstance(payload[name], bool)
    ]
    if problems:
        raise MetadataError(f"{what} is damaged: {', '.join(problems)}.")
    return payload


def _kind(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


@dataclass(frozen=True)
class Record:
    """What the producer recorded about one saved dataset (an entry of its manifest)."""

    dataset: str
    format: str
    object: str
    path: str
    size: int
    crc32c: str
    generation: int | None
    producer_task: str
    attempt: int
    saved_at: str
    extra: Mapping[str, Any]
    parts: tuple[Part, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-safe data."""
        payload = {name: getattr(self, name) for name in _RECORD_FIELDS}
        payload["extra"] = dict(self.extra)
        if self.parts:
            payload["parts"] = [part.to_json() for part in self.parts]
        return payload

    @classmethod
    def from_json(cls, payload: Any, where: str) -> Record:
        """A record read from a manifest; `where` names it in errors.

        Raises:
            MetadataError: A field is missing or has the wrong type, or the parts do not add
                up to the size.
        """
        fields = _check_fields(payload, _RECORD_FIELDS, where)
        problems = [
            f"'{name}' is not {_kind(kind)}"
            for name, kind in _OPTIONAL_RECORD_FIELDS.items()
            if name in fields and not isinstance(fields[name], kind)
        ]
        if problems:
            raise MetadataError(f"{where} is damaged: {', '.join(problems)}.")
        parts = tuple(
            _part_of(part, f"part {index} of {where}")
            for index, part in enumerate(fields.get("parts") or ())
        )
        if parts and sum(part.size for part in parts) != fields["size"]:
            raise MetadataError(f"{where} is damaged: its parts do not add up to its size.")
        return cls(**{name: fields[name] for name in _RECORD_FIELDS}, parts=parts)


def _part_of(payload: Any, where: str) -> Part:
    fields = _check_fields(payload, _PART_FIELDS, where)
    if fields["size"] < 1:
        raise MetadataError(f"{where} is damaged: its size is {fields['size']}.")
    return Part(**{name: fields[name] for name in _PART_FIELDS})


def parse_manifest(raw: bytes, where: str) -> dict[str, Any]:
    """A manifest's JSON, checked: its fields and every record in it.

    Raises:
        MetadataError: Not JSON, or a field or record is missing or malformed.
    """
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MetadataError(f"manifest {where} is not valid JSON ({exc}).") from exc
    manifest = _check_fields(payload, _MANIFEST_FIELDS, f"manifest {where}")
    for name, record in manifest["datasets"].items():
        Record.from_json(record, f"the record of dataset '{name}' in manifest {where}")
    return manifest


class HandoffStore:
    """Saves and loads boundary datasets under one run prefix, one attempt of one task."""

    def __init__(
        self,
        prefix: str,
        task: str,
        attempt: int = 1,
        allow_pickle: bool = True,
        fs_args: Mapping[str, Any] | None = None,
        upstream: Mapping[str, str] | None = None,
        transfer: TransferSettings | None = None,
    ) -> None:
        """Opens the run prefix (nothing is written until something is saved).

        Args:
            prefix: fsspec URL of the run prefix.
            task: The Airflow task (group) this process runs, for records and its manifest.
            attempt: The Airflow try number.
            allow_pickle: False forbids pickle, for saving and for loading.
            fs_args: Extra file system arguments for the kedro-datasets datasets.
            upstream: Boundary dataset -> the task that produces it (from the plan); a
                dataset not in it is looked up by its producing node in the manifests.
            transfer: When and how large frames cross as parallel parts (GCS only); by
                default `TransferSettings.from_env()`.
        """
        self.prefix = prefix.rstrip("/")
        self.task = task
        self.attempt = attempt
        self.attempt_id = f"a{attempt}-{uuid.uuid4().hex[:12]}"
        self.allow_pickle = allow_pickle
        self.upstream = dict(upstream or {})
        self.transfer = transfer or TransferSettings.from_env()
        self.backend: Backend = open_backend(self.prefix)
        self.fs, self.root = self.backend.fs, self.backend.root
        self.layout = RunLayout(self.root)
        self._fs_args = {**self.backend.dataset_fs_args(), **(fs_args or {})}
        self.saved: dict[str, Record] = {}
        self.loaded: dict[str, Record] = {}
        self._commits: dict[str, dict[str, Any]] = {}

    def _url(self, path: str) -> str:
        return self.backend.url_of(path)

    def data_dir(self, dataset: str) -> str:
        """Where one dataset's objects live."""
        return self.layout.data_dir(dataset)

    def manifest_path(self, task: str) -> str:
        """A group's manifest."""
        return self.layout.manifest(task)

    def check_reachable(self) -> None:
        """Fails early, naming the URL, when the bucket or folder cannot be used.

        Raises:
            HandoffError: The bucket does not exist or cannot be listed.
        """
        try:
            self.backend.check_reachable()
        except HandoffError:
            raise
        except Exception as exc:
            raise HandoffError(f"run prefix {self.prefix} is not reachable: {exc}") from exc

    # --- run-level objects ----------------------------------------------------------------
    def write_json(self, path: str, payload: Mapping[str, Any]) -> None:
        """Writes a JSON object atomically (a reader sees the old one or the new one)."""
        self.backend.publish(path, dumps(payload))

    def create_json(self, path: str, payload: Mapping[str, Any]) -> bool:
        """Writes a JSON object only if none exists; True if this call created it.

        Exclusive where the storage can do it: GCS `ifGenerationMatch=0`, a hard link on local
        disk. (The gcp-storage-emulator ignores `ifGenerationMatch`: there the last writer wins.)
        """
        return self.backend.create(path, dumps(payload))

    def read_run_object(self, name: str) -> dict[str, Any] | None:
        """The JSON object `<prefix>/<name>` (e.g. `_mlflow/run.json`), or None."""
        raw = self.backend.read_json(self.layout.run_object(name))
        return None if raw is None else dict(json.loads(raw))

    def create_run_object(self, name: str, payload: Mapping[str, Any]) -> bool:
        """Creates the JSON object `<prefix>/<name>` unless it exists; True if created."""
        return self.create_json(self.layout.run_object(name), payload)

    def mark(self, dag_id: str | None, run_id: str | None) -> None:
        """Marks the prefix as a run prefix (once: the first group's marker stays).

        Raises:
            HandoffError: Storage failed (named, with the object).
        """
        from kedro_gcs_bridge import __version__

        marker = {
            "kind": MARKER_KIND,
            "dag_id": dag_id,
            "run_id": run_id,
            "package_version": __version__,
            "created_at": _now(),
        }
        with self._storage_errors("writing", self.layout.run_object(MARKER_OBJECT)):
            self.create_run_object(MARKER_OBJECT, marker)

    @contextlib.contextmanager
    def _storage_errors(self, doing: str, path: str) -> Iterator[None]:
        """Turns a storage failure (network, HTTP, I/O) into a HandoffError naming the object."""
        try:
            yield
        except HandoffError:
            raise
        except Exception as exc:
            cause = storage_cause(exc)
            if cause is None:
                raise
            raise HandoffError(
                f"storage error while {doing} {self._url(path)}: {type(cause).__name__}: "
                f"{cause}. Nothing of this attempt is committed; the task can be retried."
            ) from exc

    # --- the commit -------------------------------------------------------------------------
    def _newer_commit(self, raw: bytes | None) -> dict[str, Any] | None:
        """The committed manifest, if it is a newer attempt's than this one."""
        if raw is None:
            return None
        try:
            current = parse_manifest(raw, self._url(self.manifest_path(self.task)))
        except MetadataError:
            return None  # a damaged commit is no commit: this attempt may replace it
        return current if current["attempt"] > self.attempt else None

    def _superseded(self, newer: Mapping[str, Any]) -> SupersededAttemptError:
        return SupersededAttemptError(
            f"attempt {self.attempt} of task '{self.task}' is superseded: attempt "
            f"{newer['attempt']} committed {self._url(self.manifest_path(self.task))} (finished "
            f"{newer.get('finished_at')}). This attempt's outputs are discarded; consumers "
            "read the newer attempt's."
        )

    def start_attempt(self) -> None:
        """Withdraws this group's commit while it runs again (never a newer attempt's).

        Raises:
            SupersededAttemptError: A newer attempt of this task has committed already.
        """

        def decide(raw: bytes | None) -> bytes | object | None:
            newer = self._newer_commit(raw)
            if newer is not None:
                raise self._superseded(newer)
            return None if raw is not None else KEEP

        with self._storage_errors("withdrawing", self.manifest_path(self.task)):
            self.backend.update(self.manifest_path(self.task), decide)

    def write_manifest(
        self, nodes: Iterable[str], started_at: str, extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Commits this attempt: writes the group's manifest, after all its outputs.

        Raises:
            SupersededAttemptError: A newer attempt committed first (its manifest stays, and
                this attempt's objects are removed).
        """
        manifest = {
            "task": self.task,
            "nodes": sorted(nodes),
            "attempt": self.attempt,
            "attempt_id": self.attempt_id,
            "started_at": started_at,
            "finished_at": _now(),
            "datasets": {name: record.to_json() for name, record in sorted(self.saved.items())},
            **(extra or {}),
        }
        data = dumps(manifest)

        def decide(raw: bytes | None) -> bytes:
            newer = self._newer_commit(raw)
            if newer is not None:
                raise self._superseded(newer)
            return data

        try:
            with self._storage_errors("committing", self.manifest_path(self.task)):
                self.backend.update(self.manifest_path(self.task), decide)
        except SupersededAttemptError:
            for record in self.saved.values():
                self._remove(self._stored_paths(record))
            raise
        return manifest

    # --- saving -----------------------------------------------------------------------------
    def save(self, dataset: str, value: Any, catalog_format: Format | None = None) -> Record:
        """Saves a boundary dataset under this attempt's own object name (not yet committed).

        Args:
            dataset: The dataset's name.
            value: What the node returned.
            catalog_format: The dataset's own catalog type (`formats.catalog_format`), for a
                catalog dataset that crosses; None chooses a format from the value.

        Raises:
            ForbiddenFormatError: Only pickle fits, or the catalog type unpickles, and pickle
                is forbidden.
            HandoffError: Every fitting format failed, or storage failed.
        """
        record = None
        if catalog_format is not None:
            record = self._save_in_catalog_type(dataset, value, catalog_format)
        record = record or self._save_by_value(dataset, value)
        self.saved[dataset] = record
        logger.info(
            "Handed off %s as %s (%d bytes) to %s",
            dataset,
            _label(record.format, record.extra),
            record.size,
            record.path,
        )
        return record

    def check_catalog_format(self, dataset: str, fmt: Format) -> None:
        """Fails when a dataset's catalog type stores pickle and pickle is forbidden.

        Raises:
            ForbiddenFormatError: The catalog type unpickles and `allow_pickle` is False.
        """
        if unpickles(fmt) and not self.allow_pickle:
            raise ForbiddenFormatError(
                f"dataset '{dataset}' is a {fmt.dataset_type} in the catalog, which stores "
                "pickle, and pickle is forbidden (allow_pickle: false): nothing was written. "
                "Allow pickle, or give the dataset a catalog type without pickle."
            )

    def _save_in_catalog_type(self, dataset: str, value: Any, fmt: Format) -> Record | None:
        """Writes the value as its catalog entry would; None (noted) if that type cannot."""
        self.check_catalog_format(dataset, fmt)
        errors: list[str] = []
        record = self._save_as(dataset, Encoding(fmt, value, catalog_extra(fmt)), errors)
        if record is None:
            logger.info(
                "Dataset '%s' could not be saved as %s (%s); it crosses in the format its "
                "value takes instead.",
                dataset,
                fmt.dataset_type,
                "; ".join(errors),
            )
        return record

    def _save_by_value(self, dataset: str, value: Any) -> Record:
        """Writes the value in the first format that takes it (`formats.choose_encoding`)."""
        errors: list[str] = []
        for encoding in choose_encoding(dataset, value, self.allow_pickle):
            record = self._save_as(dataset, encoding, errors)
            if record is not None:
                return record
        if not self.allow_pickle:
            raise ForbiddenFormatError(
                f"dataset '{dataset}' ({type(value).__qualname__}) could not be stored without "
                f"pickle, which is forbidden: {'; '.join(errors)}"
            )
        raise HandoffError(f"dataset '{dataset}' could not be saved: {'; '.join(errors)}")

    def _save_as(self, dataset: str, encoding: Encoding, errors: list[str]) -> Record | None:
        """Writes one encoding; None (and a note in `errors`) if the format cannot take it."""
        from kedro.io import AbstractDataset

        fmt = encoding.format
        name = RunLayout.object_name(self.attempt_id, fmt.extension)
        path = self.layout.data_object(dataset, name)
        if self.backend.parallel_parts and wants_parallel(fmt.name, encoding.value, self.transfer):
            return self._save_parts(dataset, encoding, name, errors)
        self.backend.prepare(self.layout.data_dir(dataset))
        try:
            writer = AbstractDataset.from_config(
                dataset, fmt.dataset_config(self._url(path), self._fs_args)
            )
            writer.save(encoding.value)
        except Exception as exc:  # noqa: BLE001 - storage errors are raised, the rest noted
            self.backend.remove(path)
            self._raise_if_storage(dataset, path, exc)
            errors.append(f"{fmt.name}: {exc}")
            return None
        stat = self.backend.stat(path)
        return self._record(dataset, encoding, name, stat.size, stat.crc32c, stat.generation)

    def _save_parts(
        self, dataset: str, encoding: Encoding, name: str, errors: list[str]
    ) -> Record | None:
        """Streams a large frame into parts uploaded in parallel (deleted again on failure)."""
        fmt = encoding.format
        try:
            parts, size, crc = upload_frame(
                self.fs,
                fmt.name,
                encoding.value,
                lambda index: self.layout.part_object(dataset, name, index),
                self.transfer,
            )
        except Exception as exc:  # noqa: BLE001 - storage errors are raised, the rest noted
            self._raise_if_storage(dataset, self.layout.data_object(dataset, name), exc)
            errors.append(f"{fmt.name}: {exc}")
            return None
        record = self._record(dataset, encoding, name, size, crc, None)
        return replace(record, parts=tuple(parts))

    def _raise_if_storage(self, dataset: str, path: str, exc: Exception) -> None:
        """Raises the storage error behind a failed save, if storage is what failed."""
        cause = exc if isinstance(exc, HandoffError) else storage_cause(exc)
        if cause is not None:
            raise HandoffError(
                f"storage error while saving dataset '{dataset}' to {self._url(path)}: "
                f"{type(cause).__name__}: {cause}. Nothing was committed for it, so no "
                "reader will take it for complete; the task can be retried."
            ) from exc

    def _record(
        self,
        dataset: str,
        encoding: Encoding,
        name: str,
        size: int,
        crc32c: str,
        generation: int | None,
    ) -> Record:
        return Record(
            dataset=dataset,
            format=encoding.format.name,
            object=name,
            path=self._url(self.layout.data_object(dataset, name)),
            size=size,
            crc32c=crc32c,
            generation=generation,
            producer_task=self.task,
            attempt=self.attempt,
            saved_at=_now(),
            extra=encoding.extra,
        )

    def _stored_paths(self, record: Record) -> list[str]:
        """The objects that hold a record's bytes: its parts, or its one object."""
        path = self.layout.data_object(record.dataset, record.object)
        if not record.parts:
            return [path]
        return [
            self.layout.part_object(record.dataset, record.object, index)
            for index in range(len(record.parts))
        ]

    def _remove(self, paths: list[str]) -> None:
        if self.backend.parallel_parts:
            remove_paths(self.fs, paths)
        else:
            for path in paths:
                self.backend.remove(path)

    # --- resolving --------------------------------------------------------------------------
    def manifests(self) -> list[dict[str, Any]]:
        """Every committed manifest under the prefix (a listing: for finalize and tools).

        Raises:
            MetadataError: A manifest is damaged (names the object).
        """
        folder = self.layout.manifests_dir
        self.fs.invalidate_cache(folder)
        try:
            paths = self.fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []
        found = []
        for path in sorted(p for p in paths if p.endswith(".json")):
            raw = self.backend.read_json(path)
            if raw is not None:
                found.append(parse_manifest(raw, self._url(path)))
        return found

    def _commit_of(self, task: str) -> dict[str, Any] | None:
        """The producer task's committed manifest, read once per store (one attempt only)."""
        if task not in self._commits:
            path = self.manifest_path(task)
            raw = self.backend.read_json(path)
            if raw is None:
                return None
            self._commits[task] = parse_manifest(raw, self._url(path))
        return self._commits[task]

    def _producer_task(self, dataset: str, producer_node: str | None) -> str | None:
        """The task that makes a dataset: from the plan, else the manifest listing the node."""
        if dataset in self.upstream:
            return self.upstream[dataset]
        for manifest in self.manifests():
            named = producer_node in manifest["nodes"] if producer_node else False
            if named or (producer_node is None and dataset in manifest["datasets"]):
                self._commits.setdefault(manifest["task"], manifest)
                return str(manifest["task"])
        return None

    def read_record(
        self, dataset: str, producer_node: str | None = None, producer_task: str | None = None
    ) -> Record:
        """The record of a dataset in its producer's committed manifest.

        Raises:
            NotCommittedError: The producer has no committed manifest.
            MissingHandoffError: The manifest does not list the dataset.
            MetadataError: The manifest or the record is damaged.
        """
        task = producer_task or self._producer_task(dataset, producer_node)
        manifest = self._commit_of(task) if task is not None else None
        if manifest is None:
            raise NotCommittedError(self._not_committed(dataset, producer_node, task))
        if dataset not in manifest["datasets"]:
            raise MissingHandoffError(
                f"dataset '{dataset}' is not in the manifest of task '{manifest['task']}' "
                f"(attempt {manifest['attempt']}, finished {manifest.get('finished_at')}, "
                f"{self._url(self.manifest_path(manifest['task']))}), which exists but does "
                "not list it; was the producer run with another pipeline or a different plan?"
            )
        where = f"the record of dataset '{dataset}' in {self._url(self.manifest_path(task))}"
        return Record.from_json(manifest["datasets"][dataset], where)

    def _not_committed(self, dataset: str, producer_node: str | None, task: str | None) -> str:
        made_by = f", made by node '{producer_node}'," if producer_node else ""
        if task is not None:
            state = (
                f"task '{task}' has not committed: no manifest at "
                f"{self._url(self.manifest_path(task))}"
            )
        elif producer_node is not None:
            state = (
                f"no manifest under {self.prefix}/manifests lists node '{producer_node}': its "
                "task has not run yet or did not finish"
            )
        else:
            state = "no manifest under it lists the dataset and no node makes it"
        return (
            f"dataset '{dataset}'{made_by} is not under the run prefix {self.prefix}: {state}. "
            "Run that task first (check the DAG's dependencies, or the run prefix / run id this "
            "task was given)."
        )

    def exists(self, dataset: str, producer_node: str | None = None) -> bool:
        """True if this attempt saved the dataset or a committed manifest names it."""
        if dataset in self.saved:
            return True
        try:
            self.read_record(dataset, producer_node)
        except MissingHandoffError:
            return False
        return True

    # --- loading ----------------------------------------------------------------------------
    def load(
        self,
        dataset: str,
        producer_node: str | None = None,
        producer_task: str | None = None,
        catalog_format: Format | None = None,
    ) -> Any:
        """Loads a boundary dataset from the object its producer's manifest names.

        Args:
            dataset: The dataset's name.
            producer_node: The node that makes it (finds the producer's manifest).
            producer_task: The task that makes it, when known (else from the plan or node).
            catalog_format: This consumer's own catalog type of the dataset: it decodes an
                object stored in a catalog type (a transcoded entry reads it its own way).

        Raises:
            MissingHandoffError: The producer has not committed, or did not save the dataset.
            ForbiddenFormatError: The dataset is a pickle and pickle is forbidden.
            ChecksumError: The object's bytes are not what the producer recorded.
        """
        record = self.read_record(dataset, producer_node, producer_task)
        fmt = self._readable_format(record, catalog_format)
        path = self._object_path(record)
        data = self._read_object(record, path)
        value = self._decode(record, fmt, data, path)
        self.loaded[dataset] = record
        logger.info(
            "Loaded %s (%s, %d bytes) from %s", dataset, _label(fmt), record.size, self._url(path)
        )
        try:
            return rebuild(value, record.extra)
        except (KeyError, TypeError, AttributeError) as exc:
            raise MetadataError(
                f"the record of dataset '{dataset}' (task '{record.producer_task}') says "
                f"{dict(record.extra)} about object {self._url(path)}, which does not fit what "
                f"it holds ({type(exc).__name__}: {exc}). Re-run that task."
            ) from exc

    def _readable_format(self, record: Record, own: Format | None) -> Format:
        """The format that decodes a record's object: the recorded one, or the consumer's
        own catalog type for an object stored in a catalog type."""
        extension = record.object.rsplit(".", 1)[-1]
        try:
            fmt = recorded_format(record.format, extension, record.extra)
        except TypeError as exc:
            raise MetadataError(
                f"the record of dataset '{record.dataset}' (task '{record.producer_task}') is "
                f"damaged: {exc}. Re-run that task."
            ) from exc
        if fmt is None:
            raise HandoffError(
                f"dataset '{record.dataset}' was stored as '{record.format}', which this "
                "version of kedro-gcs-bridge cannot read; use the same version in every pod."
            )
        if fmt.name == CATALOG and own is not None:
            fmt = own
        if unpickles(fmt) and not self.allow_pickle:
            raise ForbiddenFormatError(
                f"dataset '{record.dataset}' was stored as {_label(fmt)} by task "
                f"'{record.producer_task}', and pickle is forbidden here (allow_pickle: false): "
                "nothing was read. Allow pickle, or make the producer return a frame or "
                "JSON-safe builtins."
            )
        return fmt

    def _object_path(self, record: Record) -> str:
        """The object a record names, confined to this dataset's folder of this prefix."""
        if not _OBJECT_NAME.fullmatch(record.object):
            raise MetadataError(
                f"the record of dataset '{record.dataset}' (task '{record.producer_task}') "
                f"names object '{record.object}', which is not an object name the store writes; "
                "refused."
            )
        return self.layout.data_object(record.dataset, record.object)

    def _read_bytes(self, record: Record, path: str) -> Any:
        """The object's bytes (pinned generations): its parts in parallel, or the one object."""
        if not record.parts:
            return self.backend.read(path, record.generation)
        paths = self._stored_paths(record)
        if self.backend.parallel_parts:
            return read_parts(self.fs, paths, list(record.parts), self.transfer)
        return b"".join(
            self.backend.read(part_path, part.generation)
            for part_path, part in zip(paths, record.parts, strict=True)
        )

    def _read_object(self, record: Record, path: str) -> Any:
        """The object's bytes (pinned generation), checked against the record."""
        try:
            data = self._read_bytes(record, path)
        except FileNotFoundError:
            raise ChecksumError(
                f"object {self._url(path)} of dataset '{record.dataset}' is missing although "
                f"the manifest of task '{record.producer_task}' names it. Re-run that task."
            ) from None
        except HandoffError:
            raise
        except Exception as exc:
            cause = storage_cause(exc) or exc
            raise HandoffError(
                f"storage error while loading dataset '{record.dataset}' from "
                f"{self._url(path)}: {type(cause).__name__}: {cause}"
            ) from exc
        crc = crc32c_of(data)
        if (len(data), crc) != (record.size, record.crc32c):
            raise ChecksumError(
                f"object {self._url(path)} of dataset '{record.dataset}' does not match its "
                f"record (size {len(data)} vs {record.size}, crc32c {crc} vs {record.crc32c}): "
                f"it was changed or truncated after task '{record.producer_task}' wrote it. "
                "Re-run that task."
            )
        return data

    def _decode(self, record: Record, fmt: Format, data: Any, path: str) -> Any:
        """Decodes verified bytes: frames straight from memory, the rest with kedro-datasets."""
        try:
            frame_reader = FRAME_READERS.get(fmt.name)
            if frame_reader is not None:
                return frame_reader(data)
            if fmt.name == CATALOG:
                return _decode_catalog(record.dataset, fmt, bytes(data))
            return _decode_staged(record.dataset, fmt, bytes(data))
        except Exception as exc:
            raise HandoffError(
                f"object {self._url(path)} of dataset '{record.dataset}' matches its record but "
                f"cannot be read as {_label(fmt)}: {exc}"
            ) from exc


def _label(fmt: Format | str, extra: Mapping[str, Any] | None = None) -> str:
    """A format as logs and messages name it: `pandas.ParquetDataset` for a catalog type."""
    if isinstance(fmt, str):
        catalog = (extra or {}).get("catalog")
        return str(catalog["type"]) if fmt == CATALOG and catalog else fmt
    return fmt.dataset_type if fmt.name == CATALOG else fmt.name


def _decode_staged(dataset: str, fmt: Format, data: bytes) -> Any:
    """Decodes with the format's kedro-datasets dataset, from a file in process memory."""
    from kedro.io import AbstractDataset

    staging = f"{_STAGING}/{uuid.uuid4().hex}.{fmt.extension}"
    memory = fsspec.filesystem("memory")
    memory.pipe_file(staging, data)
    try:
        reader = AbstractDataset.from_config(dataset, fmt.dataset_config(staging, None))
        return reader.load()
    finally:
        memory.rm_file(staging)  # rm(recursive=True) would copy the bytes to size them


def _decode_catalog(dataset: str, fmt: Format, data: bytes) -> Any:
    """Decodes verified bytes with a catalog type: from process memory, or, for a type that
    reads local paths only, from a private temporary file holding exactly those bytes."""
    from kedro.io import AbstractDataset

    try:
        return _decode_staged(dataset, fmt, data)
    except Exception as exc:  # noqa: BLE001 - retried from a local file; its error is raised
        logger.debug("%s cannot read %s from memory (%s)", fmt.dataset_type, dataset, exc)
    with tempfile.TemporaryDirectory(prefix="kedro-gcs-bridge-") as folder:
        staging = f"{folder}/{uuid.uuid4().hex}.{fmt.extension}"
        Path(staging).write_bytes(data)
        return AbstractDataset.from_config(dataset, fmt.dataset_config(staging, None)).load()
