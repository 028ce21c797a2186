"""Saving and loading boundary datasets under one run prefix, one attempt of one task.

The layout and the objects are `pod/protocol.py`'s; the commit (manifests with preconditions,
withdrawing an attempt) is `pod/commit.py`'s. A consumer reads each object once (the pinned
generation on GCS; never through a symlink on local disk), checks the crc32c of exactly those
bytes against the record, then decodes them (frames straight from those bytes in memory,
without a copy). A pickle is decoded only when pickle is allowed and only from an object a
committed manifest of this run prefix names.

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

import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from kedro_gcs_bridge.errors import (
    ForbiddenFormatError,
    HandoffError,
    MetadataError,
    MissingHandoffError,
    SupersededAttemptError,
)
from kedro_gcs_bridge.pod.backend import (
    Backend,
    open_backend,
    storage_error,
    storage_errors,
)
from kedro_gcs_bridge.pod.commit import RunCommits
from kedro_gcs_bridge.pod.formats import (
    Encoding,
    Format,
    catalog_extra,
    choose_encoding,
    label,
    rebuild,
    unpickles,
)
from kedro_gcs_bridge.pod.protocol import Manifest, Record, RunLayout, dumps, now
from kedro_gcs_bridge.pod.reader import VerifiedReader
from kedro_gcs_bridge.pod.transfer import (
    TransferSettings,
    remove_paths,
    upload_frame,
    wants_parallel,
)

__all__ = ["HandoffStore"]

logger = logging.getLogger(__name__)


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
        self.commits = RunCommits(self.prefix, self.backend, self.layout, task, attempt, self._url)
        self.reader = VerifiedReader(self.backend, self.layout, self.transfer, allow_pickle)
        self._fs_args = {**self.backend.dataset_fs_args(), **(fs_args or {})}
        self.saved: dict[str, Record] = {}
        self.loaded: dict[str, Record] = {}

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
        with storage_errors("reaching the run prefix", self.prefix, any_error=True):
            self.backend.check_reachable()

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
        """Marks the prefix as a run prefix (once: the first group's marker stays)."""
        self.commits.mark(dag_id, run_id)

    # --- the commit (pod/commit.py) -------------------------------------------------------
    def start_attempt(self) -> None:
        """Withdraws this group's commit while it runs again (never a newer attempt's).

        Raises:
            SupersededAttemptError: A newer attempt of this task has committed already.
            ProtocolVersionError: The commit is of a newer major protocol version.
        """
        self.commits.withdraw()

    def write_manifest(
        self, nodes: Iterable[str], started_at: str, measured: Mapping[str, Any] | None = None
    ) -> Manifest:
        """Commits this attempt: writes the group's manifest, after all its outputs.

        Args:
            nodes: The nodes the group ran.
            started_at: When the attempt started (ISO 8601).
            measured: What the group measured: `Manifest` fields such as `node_seconds`.

        Raises:
            SupersededAttemptError: A newer attempt committed first (its manifest stays, and
                this attempt's objects are removed).
        """
        manifest = Manifest(
            task=self.task,
            nodes=tuple(sorted(nodes)),
            attempt=self.attempt,
            datasets=dict(sorted(self.saved.items())),
            attempt_id=self.attempt_id,
            started_at=started_at,
            finished_at=now(),
            **(measured or {}),
        )
        try:
            self.commits.commit(manifest)
        except SupersededAttemptError:
            for record in self.saved.values():
                self._remove(self.layout.stored_paths(record))
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
            label(record.format, record.extra),
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
                "pickle, and pickle is forbidden (handoff.allow_pickle: false): nothing was "
                "written. Allow pickle, or give the dataset a catalog type without pickle."
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
        error = storage_error(
            exc,
            f"saving dataset '{dataset}' to",
            self._url(path),
            "Nothing was committed for it, so no reader will take it for complete; the task "
            "can be retried.",
        )
        if error is not None:
            raise error from exc

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
            saved_at=now(),
            extra=encoding.extra,
        )

    def _remove(self, paths: list[str]) -> None:
        if self.backend.parallel_parts:
            remove_paths(self.fs, paths)
        else:
            for path in paths:
                self.backend.remove(path)

    # --- resolving --------------------------------------------------------------------------
    def manifests(self) -> list[Manifest]:
        """Every committed manifest under the prefix (a listing: for finalize and tools).

        Raises:
            MetadataError: A manifest is damaged (names the object).
            ProtocolVersionError: A manifest is of a newer major protocol version.
        """
        return self.commits.listing()

    def read_record(
        self, dataset: str, producer_node: str | None = None, producer_task: str | None = None
    ) -> Record:
        """The record of a dataset in its producer's committed manifest.

        Raises:
            NotCommittedError: The producer has no committed manifest.
            MissingHandoffError: The manifest does not list the dataset.
            MetadataError: The manifest or the record is damaged.
            ProtocolVersionError: The manifest is of a newer major protocol version.
        """
        task = producer_task or self.upstream.get(dataset)
        if task is None:
            task = self.commits.producer_task(dataset, producer_node)
        return self.commits.record(dataset, task, producer_node)

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
        fmt = self.reader.readable_format(record, catalog_format)
        path = self.reader.object_path(record)
        value = self.reader.decode(record, fmt, self.reader.verified_bytes(record, path, fmt), path)
        self.loaded[dataset] = record
        logger.info(
            "Loaded %s (%s, %d bytes) from %s", dataset, label(fmt), record.size, self._url(path)
        )
        try:
            return rebuild(value, record.extra)
        except (KeyError, TypeError, AttributeError) as exc:
            raise MetadataError(
                f"the record of dataset '{dataset}' (task '{record.producer_task}') says "
                f"{dict(record.extra)} about object {self._url(path)}, which does not fit what "
                f"it holds ({type(exc).__name__}: {exc}). Re-run that task."
            ) from exc
