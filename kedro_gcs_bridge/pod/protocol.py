"""The run prefix as data: its layout, the objects in it, and the task context a pod reads.

Layout (computed by `RunLayout` and nowhere else)::

    <prefix>/_gcs_bridge_run.json                   the run marker: the folder is a run prefix
    <prefix>/data/<dataset>/<attempt id>.<ext>      a value (or its parts `.0000`, `.0001`, ...)
    <prefix>/manifests/<task>.json                  a group's commit: which object holds what
    <prefix>/_run.json                              finalize's outcome record
    <prefix>/_mlflow/run.json                       the MLflow parent run of the DAG run

The run marker, every manifest, every record in it and the outcome record carry the protocol
version (`PROTOCOL_VERSION`, "major.minor"; the checks are `pod/schema.py`'s): a reader refuses
a newer major version and says once per process when it meets fields it does not know.

`TaskContext` (`pod/context.py`, re-exported here) is the contract between a generated DAG and
its pods: `to_env()` is what the DAG writer puts in a pod's environment, `from_env()` the only
reader of it in a pod.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kedro_gcs_bridge.errors import MetadataError
from kedro_gcs_bridge.pod.context import TaskContext
from kedro_gcs_bridge.pod.schema import (
    BOOL_OR_NONE,
    INT_OR_NONE,
    NUMBER,
    PROTOCOL_VERSION,
    STR_OR_NONE,
    VERSION_KEY,
    Kind,
    checked,
    dumps,
    json_of,
    now,
    parse_json,
)

__all__ = [
    "MARKER_KIND",
    "MARKER_OBJECT",
    "OBJECT_NAME",
    "OUTCOME_OBJECT",
    "PROTOCOL_VERSION",
    "Manifest",
    "OutcomeRecord",
    "Part",
    "Record",
    "RunLayout",
    "RunMarker",
    "TaskContext",
    "dumps",
    "now",
    "object_key",
]

MARKER_OBJECT = "_gcs_bridge_run.json"
MARKER_KIND = "kedro-gcs-bridge run prefix"
OUTCOME_OBJECT = "_run.json"

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
#: Longest object-name segment kept as is; longer ones become a readable prefix plus a hash
#: (file systems refuse segments over 255 bytes; GCS names over 1,024).
_MAX_KEY = 160
_KEY_HASH = 16
#: What a manifest may name as an object: the attempt id and an extension, nothing else.
OBJECT_NAME = re.compile(r"a\d{1,6}-[0-9a-f]{12}\.[a-z][a-z0-9]{1,7}")


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
        """A run-level object such as `_mlflow/run.json`."""
        return f"{self.root}/{name}"

    def stored_paths(self, record: Record) -> list[str]:
        """The objects that hold a record's bytes: its parts, or its one object."""
        if not record.parts:
            return [self.data_object(record.dataset, record.object)]
        return [
            self.part_object(record.dataset, record.object, index)
            for index in range(len(record.parts))
        ]

    @property
    def marker(self) -> str:
        """The run marker: only a folder holding it is a run prefix (`runs list/gc`)."""
        return self.run_object(MARKER_OBJECT)

    @property
    def outcome(self) -> str:
        """Finalize's outcome record."""
        return self.run_object(OUTCOME_OBJECT)


# --- the objects ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One uploaded part of an object: its size, its generation and the server's crc32c."""

    size: int
    generation: int | None
    crc32c: str

    def to_json(self) -> dict[str, Any]:
        """The part as a record stores it."""
        return {"size": self.size, "generation": self.generation, "crc32c": self.crc32c}

    @classmethod
    def from_json(cls, payload: Any, where: str) -> Part:
        """A part read from a record (`where` names it in errors)."""
        known = checked(payload, _PART_FIELDS, {}, where)
        if known["size"] < 1:
            raise MetadataError(f"{where} is damaged: its size is {known['size']}.")
        return cls(known["size"], known["generation"], known["crc32c"])


_PART_FIELDS: Mapping[str, Kind] = {"size": int, "generation": INT_OR_NONE, "crc32c": str}
_RECORD_FIELDS: Mapping[str, Kind] = {
    "dataset": str,
    "format": str,
    "object": str,
    "path": str,
    "size": int,
    "crc32c": str,
    "generation": INT_OR_NONE,
    "producer_task": str,
    "attempt": int,
    "saved_at": str,
    "extra": dict,
}


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
    protocol: str = PROTOCOL_VERSION

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-safe data (no `parts` when it is one object)."""
        payload = json_of(self) | {"extra": dict(self.extra), "generation": self.generation}
        if not self.parts:
            payload.pop("parts")
        return payload

    @classmethod
    def from_json(cls, payload: Any, where: str) -> Record:
        """A record read from a manifest; `where` names it in errors.

        Raises:
            MetadataError: A field is missing or has the wrong type, or the parts do not add
                up to the size.
            ProtocolVersionError: A newer major protocol version.
        """
        known = checked(payload, _RECORD_FIELDS, {"parts": list}, where)
        parts = tuple(
            Part.from_json(part, f"part {index} of {where}")
            for index, part in enumerate(known.pop("parts", ()))
        )
        if parts and sum(part.size for part in parts) != known["size"]:
            raise MetadataError(f"{where} is damaged: its parts do not add up to its size.")
        return cls(**known, parts=parts)


_MANIFEST_FIELDS: Mapping[str, Kind] = {
    "task": str,
    "nodes": list,
    "attempt": int,
    "datasets": dict,
}
#: What a group measured (`GCSRunner`), read by `suggest`, `runs` and replay.
_MEASURED_FIELDS: Mapping[str, Kind] = {
    "attempt_id": STR_OR_NONE,
    "started_at": STR_OR_NONE,
    "finished_at": STR_OR_NONE,
    "kedro_run_id": STR_OR_NONE,
    "dag_tasks": list,
    "node_seconds": dict,
    "loaded_bytes": dict,
    "first_node_at": STR_OR_NONE,
    "task_start_at": STR_OR_NONE,
    "pod_start_seconds": NUMBER,
    "replay_parallel": INT_OR_NONE,
    "cpus": INT_OR_NONE,
    "warm_start": BOOL_OR_NONE,
}


@dataclass(frozen=True)
class Manifest:
    """A group's commit: its attempt, its nodes, a record per dataset it saved, its timings."""

    task: str
    nodes: tuple[str, ...]
    attempt: int
    datasets: Mapping[str, Record]
    attempt_id: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    kedro_run_id: str | None = None
    #: Every group task of the DAG (the runner's `KEDRO_GCS_BRIDGE_TASKS`).
    dag_tasks: tuple[str, ...] | None = None
    node_seconds: Mapping[str, float] | None = None
    loaded_bytes: Mapping[str, int] | None = None
    first_node_at: str | None = None
    task_start_at: str | None = None
    pod_start_seconds: float | None = None
    #: `replay --parallel` (tasks run at once) when a replay ran the group, and the CPUs of
    #: the machine: more tasks than CPUs make the pod start wait for a CPU.
    replay_parallel: int | None = None
    cpus: int | None = None
    #: True when replay forked the group from its warm server: its `pod_start_seconds` holds
    #: no cold `kedro run` start (a pod's does).
    warm_start: bool | None = None
    protocol: str = PROTOCOL_VERSION

    @property
    def bytes_out(self) -> int:
        """Bytes the group saved to the run prefix."""
        return sum(record.size for record in self.datasets.values())

    def to_json(self) -> dict[str, Any]:
        """The manifest as JSON-safe data."""
        return json_of(self)

    def to_bytes(self) -> bytes:
        """The manifest as the store writes it."""
        return dumps(self.to_json())

    @classmethod
    def from_json(cls, payload: Any, where: str) -> Manifest:
        """A manifest read from the run prefix (`where` names it in errors).

        Raises:
            MetadataError: A field or a record is missing or malformed.
            ProtocolVersionError: A newer major protocol version.
        """
        what = f"manifest {where}"
        known = checked(payload, _MANIFEST_FIELDS, _MEASURED_FIELDS, what)
        datasets = {
            str(name): Record.from_json(record, f"the record of dataset '{name}' in {what}")
            for name, record in known.pop("datasets").items()
        }
        try:
            return cls(
                **known
                | {
                    "nodes": tuple(str(node) for node in known["nodes"]),
                    "datasets": datasets,
                    "dag_tasks": _strings(known.get("dag_tasks")),
                    "node_seconds": _numbers(known.get("node_seconds"), float),
                    "loaded_bytes": _numbers(known.get("loaded_bytes"), int),
                }
            )
        except (TypeError, ValueError) as exc:
            raise MetadataError(f"{what} is damaged: {exc}.") from exc

    @classmethod
    def from_bytes(cls, raw: bytes, where: str) -> Manifest:
        """A manifest from the bytes of its object (`where`: its URL, for errors).

        Raises:
            MetadataError: Not JSON, or a field or a record is missing or malformed.
            ProtocolVersionError: A newer major protocol version.
        """
        return cls.from_json(parse_json(raw, f"manifest {where}"), where)


def _strings(values: list[Any] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    if not all(isinstance(value, str) for value in values):
        raise ValueError(f"not a list of names: {values!r}"[:200])
    return tuple(values)


def _numbers(values: Mapping[str, Any] | None, kind: type) -> dict[str, Any] | None:
    if values is None:
        return None
    if any(
        isinstance(value, bool) or not isinstance(value, int | float) for value in values.values()
    ):
        raise ValueError(f"not a mapping of numbers: {values!r}"[:200])
    return {str(name): kind(value) for name, value in values.items()}


@dataclass(frozen=True)
class RunMarker:
    """The object that marks a folder as a run prefix (written once, by the first group)."""

    dag_id: str | None
    run_id: str | None
    package_version: str
    created_at: str
    kind: str = MARKER_KIND
    protocol: str = PROTOCOL_VERSION

    def to_json(self) -> dict[str, Any]:
        """The marker as JSON-safe data."""
        return json_of(self) | {"dag_id": self.dag_id, "run_id": self.run_id}

    @classmethod
    def from_bytes(cls, raw: bytes, where: str) -> RunMarker:
        """A marker read from the run prefix.

        Raises:
            MetadataError: Not JSON, or not a kedro-gcs-bridge run marker.
            ProtocolVersionError: A newer major protocol version.
        """
        what = f"run marker {where}"
        payload = parse_json(raw, what)
        if not isinstance(payload, dict) or payload.get("kind") != MARKER_KIND:
            raise MetadataError(f"{what} is not a kedro-gcs-bridge run marker.")
        known = checked(
            payload,
            {"kind": str},
            {
                "dag_id": STR_OR_NONE,
                "run_id": STR_OR_NONE,
                "package_version": str,
                "created_at": str,
            },
            what,
        )
        return cls(
            dag_id=known.get("dag_id"),
            run_id=known.get("run_id"),
            package_version=known.get("package_version", "?"),
            created_at=known.get("created_at", "?"),
            protocol=known[VERSION_KEY],
        )


@dataclass(frozen=True)
class OutcomeRecord:
    """How finalize judged a DAG run (`_run.json`, when the run prefix is kept)."""

    outcome: str  # success or failed
    tasks: tuple[str, ...]
    incomplete: tuple[str, ...]
    finished_at: str
    protocol: str = PROTOCOL_VERSION

    def to_json(self) -> dict[str, Any]:
        """The outcome as JSON-safe data."""
        return json_of(self)

    @classmethod
    def from_bytes(cls, raw: bytes, where: str) -> OutcomeRecord:
        """An outcome record read from the run prefix.

        Raises:
            MetadataError: Not JSON, or no outcome of success or failed.
            ProtocolVersionError: A newer major protocol version.
        """
        what = f"outcome record {where}"
        known = checked(
            parse_json(raw, what),
            {"outcome": str},
            {"tasks": list, "incomplete": list, "finished_at": str},
            what,
        )
        if known["outcome"] not in {"success", "failed"}:
            raise MetadataError(f"{what} has no 'outcome' of success or failed.")
        try:
            tasks, incomplete = (
                _strings(known.get(name, [])) or () for name in ("tasks", "incomplete")
            )
        except ValueError as exc:
            raise MetadataError(f"{what} is damaged: {exc}.") from exc
        return cls(
            known["outcome"], tasks, incomplete, known.get("finished_at", "?"), known[VERSION_KEY]
        )
