"""The GCS backend's generation preconditions, against the emulator behind `_precondition_proxy`.

gcp-storage-emulator ignores `ifGenerationMatch`; the proxy answers 412 as GCS does, so these
tests prove the exclusive create (`_mlflow/run.json`, the run marker) and the commit protocol's
conditional writes and deletes, through real gcsfs. Races are forced, not hoped for: threads
meet at a barrier between reading an object and writing it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import gcsfs
import pytest
from _gcs_emulator import BUCKET
from _precondition_proxy import PreconditionProxy, Target, target_of
from gcsfs.retry import HttpError

from kedro_gcs_bridge.errors import SupersededAttemptError
from kedro_gcs_bridge.pod.backend import Backend, open_backend, upload_url
from kedro_gcs_bridge.pod.store import HandoffStore

#: Threads in each race (the machine has 2 cores; the race is forced by barriers, not load).
RACERS = 8
#: Every barrier gives up after this long instead of hanging a test.
BARRIER_SECONDS = 60


def fresh_prefix() -> str:
    return f"gs://{BUCKET}/preconditions/{uuid.uuid4().hex[:10]}"


def gcs() -> gcsfs.GCSFileSystem:
    fs = open_backend(fresh_prefix()).fs
    assert isinstance(fs, gcsfs.GCSFileSystem)
    return fs


def generation(fs: gcsfs.GCSFileSystem, path: str) -> int:
    fs.invalidate_cache(path)
    return int(fs.info(path)["generation"])


def upload_if(fs: gcsfs.GCSFileSystem, path: str, data: bytes, if_generation: int) -> None:
    """A media upload with `ifGenerationMatch`: the very request `GCSBackend` sends."""
    backend = open_backend(fresh_prefix())
    backend.fs = fs  # type: ignore[attr-defined]
    backend._conditional(path, data, if_generation)  # type: ignore[attr-defined]


def race(work: Callable[[int], Any], count: int = RACERS) -> dict[int, Any]:
    """Runs `work(i)` in `count` threads; i -> what it returned or raised."""
    results: dict[int, Any] = {}

    def run(index: int) -> None:
        try:
            results[index] = work(index)
        except Exception as exc:  # noqa: BLE001 - the thread's outcome, asserted by the test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=4 * BARRIER_SECONDS)
    assert len(results) == count, "a racing thread did not finish"
    return results


def pause_before_first_write(backend: Backend, barrier: threading.Barrier) -> None:
    """The backend's first conditional write waits at `barrier` (after its read and decision)."""
    real = backend._conditional  # type: ignore[attr-defined]
    calls: list[int] = []

    def conditional(path: str, data: bytes | None, generation: int) -> None:
        if not calls:
            calls.append(1)
            barrier.wait()
        real(path, data, generation)

    backend._conditional = conditional  # type: ignore[attr-defined]


def commit(prefix: str, task: str, values: dict[str, Any], attempt: int) -> HandoffStore:
    """One attempt of a group as the runner does it: withdraw, save, commit."""
    store = HandoffStore(prefix, task=task, attempt=attempt)
    store.start_attempt()
    for name, value in values.items():
        store.save(name, value)
    store.write_manifest([f"{task}_node"], started_at="t0")
    return store


class TestTargets:
    """Which object a request is about, as the proxy reads it (pure)."""

    @pytest.mark.parametrize(
        ("method", "path", "headers", "body", "expected"),
        [
            ("POST", "/upload/storage/v1/b/bk/o?uploadType=media&name=a%2Fb", {}, b"x", "a/b"),
            (
                "POST",
                "/upload/storage/v1/b/bk/o?uploadType=multipart&ifGenerationMatch=0",
                {"Content-Type": 'multipart/related; boundary="==0=="'},
                b'--==0==\nContent-Type: application/json\n\n{"name": "m/n.json"}\n--==0==\n'
                b"Content-Type: application/octet-stream\n\ndata\n--==0==--",
                "m/n.json",
            ),
            ("POST", "/upload/storage/v1/b/bk/o?uploadType=resumable", {}, b'{"name": "r"}', "r"),
            ("PUT", "/upload/storage/v1/b/bk/o?name=r&upload_id=7", {}, b"chunk", "r"),
            ("DELETE", "/storage/v1/b/bk/o/p%2Fq.json?ifGenerationMatch=3", {}, b"", "p/q.json"),
            ("PATCH", "/storage/v1/b/bk/o/p%2Fq", {}, b"{}", "p/q"),
            ("GET", "/download/storage/v1/b/bk/o/p%2Fq?alt=media", {}, b"", "p/q"),
            ("POST", "/storage/v1/b/bk/o/p%2Fq/compose", {}, b"{}", None),
            ("GET", "/storage/v1/b/bk/o?prefix=p", {}, b"", None),
            ("GET", "/storage/v1/b/bk", {}, b"", None),
        ],
        ids=lambda value: value if isinstance(value, str) and len(value) < 12 else None,
    )
    def test_the_object_of_a_request(
        self, method: str, path: str, headers: dict[str, str], body: bytes, expected: str | None
    ) -> None:
        target, _ = target_of(method, path, headers, body)
        assert target == (None if expected is None else Target("bk", expected))


class TestPreconditionProxy:
    """The proxy answers `ifGenerationMatch` as GCS does, through gcsfs."""

    def test_the_emulator_alone_ignores_preconditions(
        self, gcs_emulator: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Why the proxy exists: if this fails, the emulator enforces them itself now."""
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
        fs, path = gcs(), f"{fresh_prefix()}/x.json"
        fs.pipe_file(path, b"first", mode="create")
        fs.pipe_file(path, b"second", mode="create")  # GCS: 412
        assert fs.cat_file(path) == b"second"

    @pytest.mark.parametrize("size", [10, 600 * 1024], ids=["multipart", "resumable"])
    def test_create_of_an_existing_object_is_refused(
        self, gcs_preconditions: PreconditionProxy, size: int
    ) -> None:
        fs, path = gcs(), f"{fresh_prefix()}/x.bin"
        first, second = b"1" * size, b"2" * size
        fs.pipe_file(path, first, mode="create", chunksize=256 * 1024)
        with pytest.raises(FileExistsError):
            fs.pipe_file(path, second, mode="create", chunksize=256 * 1024)
        assert fs.cat_file(path) == first
        assert gcs_preconditions.counts["412"] == 1

    def test_a_matching_generation_passes_a_stale_one_is_refused(
        self, gcs_preconditions: PreconditionProxy
    ) -> None:
        fs, path = gcs(), f"{fresh_prefix()}/m.json"
        fs.pipe_file(path, b"v1")
        stale = generation(fs, path)
        upload_if(fs, path, b"v2", stale)
        assert fs.cat_file(path) == b"v2"
        assert generation(fs, path) != stale
        with pytest.raises(FileExistsError):
            upload_if(fs, path, b"v3", stale)
        with pytest.raises(FileExistsError):
            upload_if(fs, f"{path}.missing", b"v3", stale)  # no object has that generation
        assert fs.cat_file(path) == b"v2"
        assert gcs_preconditions.counts["412"] == 2

    def test_a_conditional_delete_and_patch_need_the_current_generation(
        self, gcs_preconditions: PreconditionProxy
    ) -> None:
        fs, path = gcs(), f"{fresh_prefix()}/d.json"
        fs.pipe_file(path, b"v1")
        stale = generation(fs, path)
        fs.pipe_file(path, b"v2")
        bucket, key, _ = fs.split_path(path)
        with pytest.raises(FileExistsError):
            fs.call("DELETE", "b/{}/o/{}", bucket, key, ifGenerationMatch=str(stale))
        with pytest.raises(FileExistsError):
            fs.call(
                "PATCH", "b/{}/o/{}", bucket, key, ifGenerationMatch=str(stale), json={"a": "b"}
            )
        assert fs.cat_file(path) == b"v2"
        fs.call("DELETE", "b/{}/o/{}", bucket, key, ifGenerationMatch=str(generation(fs, path)))
        fs.invalidate_cache()
        assert not fs.exists(path)

    def test_a_read_of_a_replaced_generation_is_not_found(
        self, gcs_preconditions: PreconditionProxy
    ) -> None:
        """GCS keeps no old generation in a bucket without versioning: reading one is a 404."""
        fs, path = gcs(), f"{fresh_prefix()}/g.json"
        fs.pipe_file(path, b"v1")
        old = generation(fs, path)
        assert fs.cat_file(path, generation=old) == b"v1"
        fs.pipe_file(path, b"v2")
        with pytest.raises(FileNotFoundError):
            fs.cat_file(path, generation=old)
        assert fs.cat_file(path, generation=generation(fs, path)) == b"v2"
        assert gcs_preconditions.counts["404 generation"] == 1

    def test_a_precondition_it_does_not_enforce_is_refused_not_ignored(
        self, gcs_preconditions: PreconditionProxy
    ) -> None:
        fs, path = gcs(), f"{fresh_prefix()}/u.json"
        fs.pipe_file(path, b"v1")
        bucket, key, _ = fs.split_path(path)
        with pytest.raises(HttpError) as caught:
            fs.call("DELETE", "b/{}/o/{}", bucket, key, ifMetagenerationMatch="5")
        assert "does not enforce ifMetagenerationMatch" in str(caught.value)
        assert fs.cat_file(path) == b"v1"


@pytest.mark.usefixtures("gcs_emulator")
def test_the_upload_endpoint_comes_from_gcsfs_public_base() -> None:
    """What gcsfs's own uploads use (its private `_location`), from its public `base`."""
    fs = gcs()
    assert upload_url(fs, "b") == f"{fs._location}/upload/storage/v1/b/b/o"


class TestExclusiveCreate:
    """`create_json` / `create_run_object` (the marker, `_mlflow/run.json`) on gs://."""

    @pytest.mark.parametrize("how", ["create_json", "create_run_object"])
    def test_one_of_many_racing_creators_wins_and_its_payload_stays(
        self, gcs_preconditions: PreconditionProxy, how: str
    ) -> None:
        prefix = fresh_prefix()
        barrier = threading.Barrier(RACERS, timeout=BARRIER_SECONDS)

        def create(index: int) -> bool:
            store = HandoffStore(prefix, task=f"t{index}")
            payload = {"run_id": f"run-{index}"}
            barrier.wait()
            if how == "create_json":
                return store.create_json(store.layout.run_object("_mlflow/run.json"), payload)
            return store.create_run_object("_mlflow/run.json", payload)

        results = race(create)
        winners = [index for index, created in results.items() if created is True]
        assert len(winners) == 1, results
        assert all(created is False for index, created in results.items() if index != winners[0])
        stored = HandoffStore(prefix, task="reader").read_run_object("_mlflow/run.json")
        assert stored == {"run_id": f"run-{winners[0]}"}
        assert gcs_preconditions.counts["412"] == RACERS - 1


class TestCommitProtocol:
    """`Backend.update` on GCS: read with the generation, decide, write only if unchanged."""

    def test_a_newer_commit_between_read_and_write_is_never_replaced(
        self, gcs_preconditions: PreconditionProxy
    ) -> None:
        """A zombie attempt 1 decided to commit; attempt 2 commits before its write lands."""
        prefix = fresh_prefix()
        zombie = HandoffStore(prefix, task="split", attempt=1)
        zombie.start_attempt()
        zombie.save("d", {"attempt": 1})
        real = zombie.backend._conditional  # type: ignore[attr-defined]

        def newer_commits_first(path: str, data: bytes | None, generation: int) -> None:
            if not gcs_preconditions.counts["412"]:  # only before the zombie's first write
                commit(prefix, "split", {"d": {"attempt": 2}}, attempt=2)
            real(path, data, generation)

        zombie.backend._conditional = newer_commits_first  # type: ignore[attr-defined]
        with pytest.raises(SupersededAttemptError, match="attempt 1 of task 'split'"):
            zombie.write_manifest(["split_node"], "t0")
        assert gcs_preconditions.counts["412"] == 1  # the zombie's stale write was refused
        consumer = HandoffStore(prefix, task="c", upstream={"d": "split"})
        assert consumer.load("d") == {"attempt": 2}

    def test_racing_attempts_end_with_the_newest_committed(
        self, gcs_preconditions: PreconditionProxy
    ) -> None:
        """Every attempt has read "no manifest" and decided to commit when all write at once."""
        prefix = fresh_prefix()
        barrier = threading.Barrier(RACERS, timeout=BARRIER_SECONDS)

        def attempt(index: int) -> str:
            store = HandoffStore(prefix, task="split", attempt=index + 1)
            store.start_attempt()
            store.save("d", {"attempt": index + 1})
            pause_before_first_write(store.backend, barrier)
            try:
                store.write_manifest(["split_node"], "t0")
            except SupersededAttemptError:
                return "superseded"
            return "committed"

        outcomes = race(attempt)
        assert set(outcomes.values()) <= {"committed", "superseded"}, outcomes
        assert outcomes[RACERS - 1] == "committed"
        assert gcs_preconditions.counts["412"] >= RACERS - 1
        manifest = HandoffStore(prefix, task="c").read_run_object("manifests/split.json")
        assert manifest is not None and manifest["attempt"] == RACERS
        consumer = HandoffStore(prefix, task="c", upstream={"d": "split"})
        assert consumer.load("d") == {"attempt": RACERS}

    def test_an_object_replaced_between_stat_and_read_is_read_again(
        self, gcs_preconditions: PreconditionProxy
    ) -> None:
        """`update` learns the generation, then reads it: a writer in between must not make
        the object look missing (a delete would then be skipped and the object stay)."""
        backend = open_backend(fresh_prefix())
        path = f"{backend.url}/manifests/split.json"
        backend.fs.pipe_file(path, b"attempt 1")
        real_read, calls = backend.read, []

        def replaced_first(path: str, generation: int | None) -> bytes:
            if not calls:
                calls.append(1)
                backend.fs.pipe_file(path, b"attempt 2")  # lands after the generation was read
            return real_read(path, generation)

        backend.read = replaced_first  # type: ignore[method-assign]
        seen: list[bytes | None] = []

        def withdraw(current: bytes | None) -> None:
            seen.append(current)

        backend.update(path, withdraw)
        backend.fs.invalidate_cache()
        assert seen[-1] == b"attempt 2"
        assert not backend.fs.exists(path)

    def test_racing_withdrawals_of_one_commit_all_succeed(
        self, gcs_preconditions: PreconditionProxy
    ) -> None:
        """Retries starting together each withdraw attempt 1's commit: one deletes it, the
        others find it gone (a conditional delete of a missing object is a 404 on GCS)."""
        prefix = fresh_prefix()
        commit(prefix, "split", {"d": {"attempt": 1}}, attempt=1)
        barrier = threading.Barrier(RACERS, timeout=BARRIER_SECONDS)

        def withdraw(index: int) -> None:
            store = HandoffStore(prefix, task="split", attempt=2)
            pause_before_first_write(store.backend, barrier)
            store.start_attempt()

        outcomes = race(withdraw)
        assert list(outcomes.values()) == [None] * RACERS, outcomes
        assert HandoffStore(prefix, task="c").read_run_object("manifests/split.json") is None
