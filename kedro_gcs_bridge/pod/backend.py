"""Storage backends: what differs between GCS, local disk and other fsspec file systems.

One `Backend` is chosen once from a URL (`open_backend`); the store, and `runs list/gc`, call
it instead of branching on the scheme. Every backend offers the same few operations:

- `stat` after a write: size, crc32c and (on GCS) the generation of an object;
- `read`: the bytes of one object, the pinned generation on GCS, never through a symlink on
  local disk (one download; the caller checks the bytes it decodes); `read_checked` also
  returns their crc32c, which local disk computes while it reads the file into the one
  writable buffer a frame is decoded from (no second pass, no copy);
- `publish` (atomic replace), `create` (exclusive create) and `update` (read, decide, write
  only if nobody wrote in between) for small JSON objects such as manifests.

On GCS, large frames also cross as parts uploaded and read in parallel (`parallel_parts`).

What each guarantees: GCS uses generation preconditions (`ifGenerationMatch`); local disk
uses a temporary file renamed into place and an `flock` on the folder around `update`;
any other fsspec file system (`memory://` in tests) gets a plain check then write.
"""

from __future__ import annotations

import base64
import fcntl
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import google_crc32c

from kedro_gcs_bridge.errors import HandoffError, SymlinkError

_GCS_PROTOCOLS = ("gs", "gcs")
#: gcsfs block for handoff reads and writes through kedro-datasets' `fs.open()`.
GCS_BLOCK = 50 * 2**20
_CHUNK = 8 * 2**20
#: How often `update` re-reads after another writer won the race.
_UPDATE_ROUNDS = 8

#: What `update`'s decision returns to leave the object as it is.
KEEP = object()


def crc32c_of(data: Any) -> str:
    """The base64 crc32c of some bytes (`bytes` or a `pyarrow.Buffer`), as GCS reports it."""
    return _digest(google_crc32c.Checksum(data))


def _digest(checksum: google_crc32c.Checksum) -> str:
    """A checksum's value in base64, as GCS reports crc32c."""
    return base64.b64encode(checksum.digest()).decode()


def protocol_of(url: str) -> str:
    """The URL's scheme; `file` for a plain path."""
    return url.split("://", 1)[0] if "://" in url else "file"


def storage_options(url: str) -> dict[str, Any]:
    """fsspec options for a URL; anonymous access when a local GCS emulator is configured."""
    if protocol_of(url) in _GCS_PROTOCOLS and os.environ.get("STORAGE_EMULATOR_HOST"):
        # gcsfs reads this on import; its experimental gRPC path stalls against emulators.
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        return {"token": "anon", "project": "local-emulator"}
    return {}


@dataclass(frozen=True)
class ObjectStat:
    """What a backend knows about one stored object right after writing it."""

    size: int
    crc32c: str
    generation: int | None


class Backend:
    """Any fsspec file system: plain operations, no atomicity beyond the file system's own."""

    name: ClassVar[str] = "fsspec"
    #: Large frames cross as parts uploaded and read in parallel (`pod/transfer.py`).
    parallel_parts: ClassVar[bool] = False

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.options = storage_options(self.url)
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **self.options)
        except (ValueError, ImportError) as exc:
            raise HandoffError(f"cannot open {self.url}: {exc}") from exc
        protocol = self.fs.protocol
        self.protocol = protocol if isinstance(protocol, str) else protocol[0]

    def url_of(self, path: str) -> str:
        """A path of the file system as a URL kedro-datasets can open."""
        return f"{self.protocol}://{path}"

    def dataset_fs_args(self) -> dict[str, Any]:
        """File system arguments for the kedro-datasets datasets that write objects."""
        return dict(self.options)

    def check_reachable(self) -> None:
        """Fails early when the location cannot be used (nothing to check here)."""

    def prepare(self, folder: str) -> None:
        """Makes a folder exist where the file system needs folders (local disk)."""

    def stat(self, path: str) -> ObjectStat:
        """Size and crc32c of an object just written (read back: no server checksum here)."""
        checksum, size = google_crc32c.Checksum(), 0
        with self.fs.open(path, "rb") as handle:  # streamed: no copy of the whole object
            while chunk := handle.read(_CHUNK):
                checksum.update(chunk)
                size += len(chunk)
        return ObjectStat(size, _digest(checksum), None)

    def read(self, path: str, generation: int | None) -> bytes:
        """The bytes of one object (`generation` is ignored where there are none)."""
        return bytes(self.fs.cat_file(path))

    def read_checked(self, path: str, generation: int | None) -> tuple[Any, str]:
        """The bytes of one object and their base64 crc32c (here: read, then checksummed)."""
        data = self.read(path, generation)
        return data, crc32c_of(data)

    def remove(self, path: str) -> None:
        """Deletes one object; a missing one is fine (one request, no existence check)."""
        with suppress(FileNotFoundError):
            self.fs.rm_file(path)

    def publish(self, path: str, data: bytes) -> None:
        """Writes an object so that a reader sees the old one or the new one."""
        self.fs.pipe_file(path, data)

    def create(self, path: str, data: bytes) -> bool:
        """Writes an object only if none exists; True if this call created it."""
        self.fs.invalidate_cache(_parent(path))
        if self.fs.exists(path):
            return False
        self.fs.pipe_file(path, data)
        return True

    def read_json(self, path: str) -> bytes | None:
        """The current bytes of a small object, or None."""
        self.fs.invalidate_cache(_parent(path))
        try:
            return bytes(self.fs.cat_file(path))
        except FileNotFoundError:
            return None

    def update(self, path: str, decide: Callable[[bytes | None], bytes | object | None]) -> None:
        """Reads an object, asks `decide` what to write (bytes, None = delete, KEEP), writes.

        `decide` may raise to refuse. Here: check then write, not atomic.
        """
        _apply(self, path, decide(self.read_json(path)))

    def write_object(self, path: str, data: bytes) -> None:
        """Writes or replaces an object (used by `update`)."""
        self.publish(path, data)


class LocalBackend(Backend):
    """Local disk: folders, temporary files renamed into place, `flock` for `update`."""

    name = "local"

    def url_of(self, path: str) -> str:
        return path

    def check_reachable(self) -> None:
        self.fs.makedirs(self.root, exist_ok=True)

    def prepare(self, folder: str) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)

    def read(self, path: str, generation: int | None) -> bytes:
        """The object's bytes; refuses a symlink, or a path that resolves outside its root."""
        with os.fdopen(self._open_confined(path), "rb") as handle:
            return handle.read()

    def read_checked(self, path: str, generation: int | None) -> tuple[Any, str]:
        """The object's bytes in one writable `pyarrow.Buffer`, checksummed chunk by chunk as
        they arrive (the decoder may own the buffer: frames take no copy), and their crc32c.

        The file is read to its end whatever its size was when opened, so bytes appended or
        cut meanwhile show up as a size or checksum the record does not hold.
        """
        import pyarrow as pa

        with os.fdopen(self._open_confined(path), "rb", buffering=0) as handle:
            # The system allocator: Arrow's default pool (mimalloc) takes ~2x as long to
            # fault a fresh large buffer in (benchmarks/handoff.py, a pod's one load).
            found = os.fstat(handle.fileno()).st_size
            buffer = pa.allocate_buffer(found, memory_pool=pa.system_memory_pool())
            size, checksum = _read_into(handle, buffer)
            rest = handle.read()  # it grew since it was opened: rare, and refused by the caller
        if rest:
            checksum.update(rest)
            return buffer.to_pybytes()[:size] + rest, _digest(checksum)
        return (buffer if size == buffer.size else buffer.slice(0, size)), _digest(checksum)

    def _open_confined(self, path: str) -> int:
        """A read-only descriptor of `path`; refuses a symlink, or a path outside the root."""
        real_root = os.path.realpath(self.root)
        if os.path.commonpath([os.path.realpath(path), real_root]) != real_root:
            raise SymlinkError(f"object {path} resolves outside {self.root}: refused.")
        try:
            return os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            if Path(path).is_symlink():
                raise SymlinkError(f"object {path} is a symlink: refused.") from exc
            raise

    def publish(self, path: str, data: bytes) -> None:
        self.prepare(_parent(path))
        temporary = f"{path}.tmp-{uuid.uuid4().hex}"
        Path(temporary).write_bytes(data)
        Path(temporary).replace(path)

    def create(self, path: str, data: bytes) -> bool:
        self.prepare(_parent(path))
        temporary = f"{path}.tmp-{uuid.uuid4().hex}"
        Path(temporary).write_bytes(data)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        finally:
            Path(temporary).unlink()
        return True

    def update(self, path: str, decide: Callable[[bytes | None], bytes | object | None]) -> None:
        """Check and rename under an exclusive lock of the folder (all writers take it)."""
        self.prepare(_parent(path))
        with _locked(_parent(path)):
            _apply(self, path, decide(self.read_json(path)))


class GCSBackend(Backend):
    """Google Cloud Storage through gcsfs: server checksums, generations, preconditions."""

    name = "gcs"
    parallel_parts = True

    def dataset_fs_args(self) -> dict[str, Any]:
        # kedro-datasets reads and writes through fs.open(): gcsfs then moves one block at a
        # time (default 5 MiB), each a sequential request while the codec waits. 50 MiB is the
        # chunk gcsfs's own pipe/put use (benchmarks/handoff.py has the figures).
        return {**self.options, "block_size": GCS_BLOCK}

    def check_reachable(self) -> None:
        bucket = self.root.split("/", 1)[0]
        if not self.fs.exists(bucket):
            raise HandoffError(
                f"run prefix {self.url}: bucket '{bucket}' does not exist or this pod's "
                "service account cannot see it (check gcs_bridge_root and the Workload "
                "Identity binding)."
            )

    def stat(self, path: str) -> ObjectStat:
        """The server's crc32c of the bytes it stored, and their generation: one request."""
        self.fs.invalidate_cache(path)
        info = self.fs.info(path)
        generation = info.get("generation")
        return ObjectStat(
            int(info["size"]), str(info["crc32c"]), int(generation) if generation else None
        )

    def read(self, path: str, generation: int | None) -> bytes:
        return bytes(self.fs.cat_file(path, generation=generation))

    def create(self, path: str, data: bytes) -> bool:
        try:
            self.fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return False
        return True

    def update(self, path: str, decide: Callable[[bytes | None], bytes | object | None]) -> None:
        """Read with its generation, decide, write `ifGenerationMatch` it; retry if beaten."""
        for _ in range(_UPDATE_ROUNDS):
            current, generation = self._read_versioned(path)
            choice = decide(current)
            if choice is KEEP or (choice is None and current is None):
                return
            try:
                self._conditional(path, choice, generation)  # type: ignore[arg-type]
            except FileExistsError:  # 412: another writer came in between; decide again
                continue
            except FileNotFoundError:  # 404 on the delete: another writer deleted it first
                if choice is not None:
                    raise
                continue
            return
        raise HandoffError(f"{self.url_of(path)} kept changing while it was being updated.")

    def _read_versioned(self, path: str) -> tuple[bytes | None, int]:
        """The object's bytes and generation (None, 0: missing). A generation that is gone by
        the time it is read was replaced or deleted in between: look again, never report a
        replaced object as missing (a delete decided on that would be skipped)."""
        for _ in range(_UPDATE_ROUNDS):
            self.fs.invalidate_cache(path)
            try:
                generation = int(self.fs.info(path).get("generation") or 0)
            except FileNotFoundError:
                return None, 0
            try:
                return self.read(path, generation or None), generation
            except FileNotFoundError:
                continue
        raise HandoffError(f"{self.url_of(path)} kept changing while it was being read.")

    def _conditional(self, path: str, data: bytes | None, generation: int) -> None:
        bucket, key, _ = self.fs.split_path(path)
        if data is None:
            self.fs.call("DELETE", "b/{}/o/{}", bucket, key, ifGenerationMatch=str(generation))
            return
        self.fs.call(
            "POST",
            upload_url(self.fs, bucket),
            uploadType="media",
            name=key,
            ifGenerationMatch=str(generation),
            headers={"Content-Type": "application/octet-stream"},
            data=data,
            json_out=True,
        )
        self.fs.invalidate_cache(path)


def upload_url(fs: Any, bucket: str) -> str:
    """GCS's media-upload endpoint of a bucket, from gcsfs's public JSON API base (which
    follows `STORAGE_EMULATOR_HOST` and custom endpoints).

    gcsfs has no public call for a conditional upload with a given generation, nor one that
    returns the stored object's metadata for a streamed body: those requests go through
    `GCSFileSystem.call`/`_call` (gcsfs's request helper, retries included).
    """
    return f"{fs.base.removesuffix('storage/v1/')}upload/storage/v1/b/{bucket}/o"


_BACKENDS: dict[str, type[Backend]] = {
    "gs": GCSBackend,
    "gcs": GCSBackend,
    "file": LocalBackend,
    "local": LocalBackend,
}


def open_backend(url: str) -> Backend:
    """The backend for a URL (`gs://`, `file://` or a path, any other fsspec protocol).

    Raises:
        HandoffError: fsspec cannot open the URL (unknown protocol, missing driver).
    """
    return _BACKENDS.get(protocol_of(url), Backend)(url)


def _apply(backend: Backend, path: str, choice: bytes | object | None) -> None:
    if choice is KEEP:
        return
    if choice is None:
        backend.remove(path)
    else:
        backend.write_object(path, choice)  # type: ignore[arg-type]


def _read_into(handle: Any, buffer: Any) -> tuple[int, google_crc32c.Checksum]:
    """Fills a writable `pyarrow.Buffer` from an unbuffered file, chunk by chunk, updating a
    crc32c over each chunk while it is hot (a slice of the buffer: the checksum takes read-only
    bytes). Returns how many bytes were read (fewer than the buffer if the file was cut)."""
    target, checksum, size = memoryview(buffer).cast("B"), google_crc32c.Checksum(), 0
    while size < len(target):
        read = handle.readinto(target[size : size + _CHUNK])
        if not read:
            break
        checksum.update(buffer.slice(size, read))
        size += read
    return size, checksum


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0]


@contextmanager
def _locked(folder: str) -> Iterator[None]:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


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


def storage_error(
    exc: BaseException, doing: str, url: str, then: str = "", any_error: bool = False
) -> HandoffError | None:
    """The one wording of a storage failure: a HandoffError naming what was being done to
    which object, or None when `exc` is not a storage failure (unless `any_error`)."""
    if isinstance(exc, HandoffError):
        return exc
    cause = storage_cause(exc) or (exc if any_error else None)
    if cause is None:
        return None
    tail = f" {then}" if then else ""
    return HandoffError(
        f"storage error while {doing} {url}: {type(cause).__name__}: {cause}.{tail}"
    )


@contextmanager
def storage_errors(doing: str, url: str, then: str = "", any_error: bool = False) -> Iterator[None]:
    """Turns a storage failure (network, HTTP, I/O) into a HandoffError naming the object;
    other errors pass through unchanged (all of them become one with `any_error`)."""
    try:
        yield
    except Exception as exc:
        error = storage_error(exc, doing, url, then, any_error)
        if error is None or error is exc:
            raise
        raise error from exc
