"""Reading one committed object: its format, its confined path, its verified bytes, its value.

A consumer reads each object once (the pinned generation on GCS; never through a symlink on
local disk), checks the size and crc32c of exactly those bytes against the record, then
decodes them (frames straight from those bytes in memory, without a copy). On local disk a
frame's file is read into one writable buffer and checksummed chunk by chunk as it arrives;
the frame then keeps its numeric columns in that buffer. A pickle is decoded
only when pickle is allowed, and only from an object a committed manifest names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kedro_gcs_bridge.errors import (
    ChecksumError,
    ForbiddenFormatError,
    HandoffError,
    MetadataError,
)
from kedro_gcs_bridge.pod.backend import Backend, crc32c_of, storage_errors
from kedro_gcs_bridge.pod.formats import (
    CATALOG,
    Format,
    decode_catalog,
    decode_staged,
    label,
    recorded_format,
    unpickles,
)
from kedro_gcs_bridge.pod.protocol import OBJECT_NAME, Record, RunLayout
from kedro_gcs_bridge.pod.transfer import FRAME_READERS, TransferSettings, read_parts


@dataclass(frozen=True)
class VerifiedReader:
    """Reads the objects records name under one run prefix, checked before decoding."""

    backend: Backend
    layout: RunLayout
    transfer: TransferSettings
    allow_pickle: bool

    def readable_format(self, record: Record, own: Format | None) -> Format:
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
                f"dataset '{record.dataset}' was stored as {label(fmt)} by task "
                f"'{record.producer_task}', and pickle is forbidden here "
                "(handoff.allow_pickle: false): nothing was read. Allow pickle, or make the "
                "producer return a frame or JSON-safe builtins."
            )
        return fmt

    def object_path(self, record: Record) -> str:
        """The object a record names, confined to this dataset's folder of this prefix."""
        if not OBJECT_NAME.fullmatch(record.object):
            raise MetadataError(
                f"the record of dataset '{record.dataset}' (task '{record.producer_task}') "
                f"names object '{record.object}', which is not an object name the store writes; "
                "refused."
            )
        return self.layout.data_object(record.dataset, record.object)

    def _read_checked(self, record: Record, path: str, frame: bool) -> tuple[Any, str]:
        """The object's bytes (pinned generations) and their crc32c: its parts in parallel,
        a frame into a buffer its decoder may own (checksummed while read), or the bytes."""
        if not record.parts:
            if frame:
                return self.backend.read_checked(path, record.generation)
            data = self.backend.read(path, record.generation)
            return data, crc32c_of(data)
        paths = self.layout.stored_paths(record)
        if self.backend.parallel_parts:
            data = read_parts(self.backend.fs, paths, list(record.parts), self.transfer)
        else:
            data = b"".join(
                self.backend.read(part_path, part.generation)
                for part_path, part in zip(paths, record.parts, strict=True)
            )
        return data, crc32c_of(data)

    def verified_bytes(self, record: Record, path: str, fmt: Format | None = None) -> Any:
        """The object's bytes (pinned generations), checked against the record before any
        byte is decoded. `fmt`: the format that will decode them (a frame's are read into a
        buffer its decoder may own).

        Raises:
            ChecksumError: The object is missing, or its bytes are not what the record says.
            HandoffError: Storage failed.
        """
        url = self.backend.url_of(path)
        frame = fmt is not None and fmt.name in FRAME_READERS
        with storage_errors(f"loading dataset '{record.dataset}' from", url, any_error=True):
            try:
                data, crc = self._read_checked(record, path, frame)
            except FileNotFoundError:
                raise ChecksumError(
                    f"object {url} of dataset '{record.dataset}' is missing although the "
                    f"manifest of task '{record.producer_task}' names it. Re-run that task."
                ) from None
        if (len(data), crc) != (record.size, record.crc32c):
            raise ChecksumError(
                f"object {url} of dataset '{record.dataset}' does not match its "
                f"record (size {len(data)} vs {record.size}, crc32c {crc} vs {record.crc32c}): "
                f"it was changed or truncated after task '{record.producer_task}' wrote it. "
                "Re-run that task."
            )
        return data

    def decode(self, record: Record, fmt: Format, data: Any, path: str) -> Any:
        """Decodes verified bytes: frames straight from memory, the rest with kedro-datasets."""
        try:
            frame_reader = FRAME_READERS.get(fmt.name)
            if frame_reader is not None:
                return frame_reader(data)
            if fmt.name == CATALOG:
                return decode_catalog(record.dataset, fmt, bytes(data))
            return decode_staged(record.dataset, fmt, bytes(data))
        except Exception as exc:
            url = self.backend.url_of(path)
            raise HandoffError(
                f"object {url} of dataset '{record.dataset}' matches its record but cannot be "
                f"read as {label(fmt)}: {exc}"
            ) from exc
