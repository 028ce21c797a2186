"""The commit protocol of a run prefix: the run marker, and the groups' manifests.

Every attempt of a group writes its values under names unique to the attempt
(`a<try>-<random>.<ext>`), so attempts never overwrite each other. The group's manifest, written
last and atomically, is the commit: for each dataset it names the object (on GCS also its
generation), its format, size and crc32c. A consumer resolves a boundary dataset only through
its producer's manifest, never by a fixed name or a listing, so it reads exactly one committed
attempt or fails clearly. A manifest is replaced only by an attempt at least as new
(`Backend.update`: a generation precondition on GCS, a locked check and rename on local disk),
so a zombie older attempt resumed late cannot replace a newer commit. A manifest of a newer
major protocol version is never replaced nor withdrawn: the attempt stops with
`ProtocolVersionError`. Objects of superseded attempts are never read; `runs gc` removes them
with the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kedro_gcs_bridge._version import __version__
from kedro_gcs_bridge.errors import (
    MetadataError,
    MissingHandoffError,
    NotCommittedError,
    SupersededAttemptError,
)
from kedro_gcs_bridge.pod.backend import KEEP, Backend, storage_errors
from kedro_gcs_bridge.pod.protocol import (
    Manifest,
    Record,
    RunLayout,
    RunMarker,
    dumps,
    now,
)

#: What a failed write of the commit leaves: nothing readers take for complete.
_RETRYABLE = "Nothing of this attempt is committed; the task can be retried."


@dataclass
class RunCommits:
    """The run marker and the manifests of one run prefix, as one attempt of one task sees them.

    Each producer's manifest is read once (`read`): a consumer uses one committed attempt
    of it for every dataset it loads.
    """

    prefix: str
    backend: Backend
    layout: RunLayout
    task: str
    attempt: int
    url_of: Callable[[str], str]
    _read: dict[str, Manifest] = field(default_factory=dict)

    def mark(self, dag_id: str | None, run_id: str | None) -> None:
        """Marks the prefix as a run prefix (once: the first group's marker stays).

        Raises:
            HandoffError: Storage failed (named, with the object).
        """
        marker = RunMarker(dag_id, run_id, package_version=__version__, created_at=now())
        path = self.layout.marker
        with storage_errors("writing", self.url_of(path), _RETRYABLE):
            self.backend.create(path, dumps(marker.to_json()))

    def _newer_commit(self, raw: bytes | None) -> Manifest | None:
        """The committed manifest, if it is a newer attempt's than this one.

        Raises:
            ProtocolVersionError: The commit is of a newer major version (never replaced).
        """
        if raw is None:
            return None
        try:
            current = Manifest.from_bytes(raw, self.url_of(self.layout.manifest(self.task)))
        except MetadataError:
            return None  # a damaged commit is no commit: this attempt may replace it
        return current if current.attempt > self.attempt else None

    def _superseded(self, newer: Manifest) -> SupersededAttemptError:
        return SupersededAttemptError(
            f"attempt {self.attempt} of task '{self.task}' is superseded: attempt "
            f"{newer.attempt} committed {self.url_of(self.layout.manifest(self.task))} "
            f"(finished {newer.finished_at}). This attempt's outputs are discarded; consumers "
            "read the newer attempt's."
        )

    def withdraw(self) -> None:
        """Withdraws this group's commit while it runs again (never a newer attempt's).

        Raises:
            SupersededAttemptError: A newer attempt of this task has committed already.
        """

        def decide(raw: bytes | None) -> bytes | object | None:
            newer = self._newer_commit(raw)
            if newer is not None:
                raise self._superseded(newer)
            return None if raw is not None else KEEP

        path = self.layout.manifest(self.task)
        with storage_errors("withdrawing", self.url_of(path), _RETRYABLE):
            self.backend.update(path, decide)

    def commit(self, manifest: Manifest) -> None:
        """Writes this attempt's manifest unless a newer attempt committed first.

        Raises:
            SupersededAttemptError: A newer attempt committed first (its manifest stays).
        """
        data = manifest.to_bytes()

        def decide(raw: bytes | None) -> bytes:
            newer = self._newer_commit(raw)
            if newer is not None:
                raise self._superseded(newer)
            return data

        path = self.layout.manifest(self.task)
        with storage_errors("committing", self.url_of(path), _RETRYABLE):
            self.backend.update(path, decide)

    def listing(self) -> list[Manifest]:
        """Every committed manifest under the prefix (for finalize and tools).

        Raises:
            MetadataError: A manifest is damaged (names the object).
            ProtocolVersionError: A manifest is of a newer major version.
        """
        folder = self.layout.manifests_dir
        self.backend.fs.invalidate_cache(folder)
        try:
            paths = self.backend.fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []
        found = []
        for path in sorted(p for p in paths if p.endswith(".json")):
            raw = self.backend.read_json(path)
            if raw is not None:
                found.append(Manifest.from_bytes(raw, self.url_of(path)))
        return found

    def read(self, task: str) -> Manifest | None:
        """A task's committed manifest, read once (one attempt only); None if it has none."""
        if task not in self._read:
            path = self.layout.manifest(task)
            raw = self.backend.read_json(path)
            if raw is None:
                return None
            self._read[task] = Manifest.from_bytes(raw, self.url_of(path))
        return self._read[task]

    def producer_task(self, dataset: str, producer_node: str | None) -> str | None:
        """The task whose manifest lists the node that makes a dataset (else the dataset)."""
        for manifest in self.listing():
            named = producer_node in manifest.nodes if producer_node else False
            if named or (producer_node is None and dataset in manifest.datasets):
                self._read.setdefault(manifest.task, manifest)
                return manifest.task
        return None

    def record(self, dataset: str, task: str | None, producer_node: str | None) -> Record:
        """The record of a dataset in its producer task's committed manifest.

        Raises:
            NotCommittedError: The producer has no committed manifest.
            MissingHandoffError: The manifest does not list the dataset.
        """
        manifest = self.read(task) if task is not None else None
        if manifest is None:
            raise NotCommittedError(self._not_committed(dataset, producer_node, task))
        if dataset not in manifest.datasets:
            raise MissingHandoffError(
                f"dataset '{dataset}' is not in the manifest of task '{manifest.task}' "
                f"(attempt {manifest.attempt}, finished {manifest.finished_at}, "
                f"{self.url_of(self.layout.manifest(manifest.task))}), which exists but does "
                "not list it; was the producer run with another pipeline or a different plan?"
            )
        return manifest.datasets[dataset]

    def _not_committed(self, dataset: str, producer_node: str | None, task: str | None) -> str:
        made_by = f", made by node '{producer_node}'," if producer_node else ""
        if task is not None:
            state = (
                f"task '{task}' has not committed: no manifest at "
                f"{self.url_of(self.layout.manifest(task))}"
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
