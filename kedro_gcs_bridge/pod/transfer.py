"""Moving a frame's bytes: streamed parallel parts on GCS for large frames, no-copy decoding.

A frame whose in-memory size reaches `TransferSettings.threshold` (default 128 MiB; Arrow IPC
uncompressed is about as large encoded) is not written through one sequential gcsfs stream.
kedro-datasets' own call (`DataFrame.to_feather`, `polars.DataFrame.write_ipc`) encodes it into
a `PartWriter`, a write-only file that cuts the stream into parts of `part_size` bytes and
uploads each as one GCS media upload while the encoder goes on; at most `concurrency` parts are
in flight (the encoder waits for a free slot), so no whole-file buffer exists, and a part
holds slices of the buffers Arrow writes (immutable, kept alive by reference), not a copy of
them. The parts stay N
objects (`<object>.0000`, `.0001`, ... next to where the single object would be), listed with
their size and generation by the dataset's record: they are invisible to consumers until the
manifest commits them, like every object of an attempt. A part upload is retried by gcsfs
(408/429/5xx, dropped connections; the same name, so a retry never leaves a stray object);
when it still fails the save deletes every part it started and fails.

Parts, not one composed object: benchmarks/large.py measured both side by side (1 GiB, 65
parts, fake-gcs-server behind the network model, median of 3, 2026-11-30): parts 5.3 s save +
load (3.2 s + 2.1 s), composed 11.4 s (8.7 s + 1.7 s), 1.95x slower. Composing takes 3 more
requests (32 sources a call) and 65 deletes, and emulators copy the bytes to compose
(gcp-storage-emulator took 25-54 s for 1 GiB). GCS composes without moving bytes, so there
compose would cost its requests only; but the load, which reads 16 MiB ranges either way,
gained 0.4 s from one object against 5.5 s more to save it.

Loading reads the parts with concurrent ranged requests of the pinned generations, each
streamed as it arrives into one buffer that this load alone owns (`_read_range`), checks the
crc32c of the whole stream (computed by the producer over the bytes it encoded) over those
bytes, then decodes from that buffer: a frame is written as one Arrow record batch
(`formats.FEATHER`), so its numeric columns without nulls (ints, floats, naive datetimes,
timedeltas) become writable numpy views of the buffer instead of copies (`_own_columns`), and
string columns stay Arrow arrays over it; columns Arrow converts (nulls, booleans,
categoricals, tz-aware datetimes) are copied, as `pd.read_feather` copies them. The frame keeps
the whole buffer alive while any column of it lives. Small frames and every other value take
the store's plain path.

Memory (benchmarks/memory.py, gs://, 2026-12-07): peak RSS above the frame, 512 MiB, save
0.02x / load 1.01x (the loaded frame itself is 1x); 128 MiB 0.03x / 1.03x. Before parts held
slices of Arrow's buffers (2026-11-30) the save copied the stream into part buffers: 0.33x
at 512 MiB, 0.36x at 128 MiB, which is why `TransferSettings.sized_for` cuts parts small
enough (4-16 MiB) that those in flight span at most a quarter of the frame (copies still
made: what a writer hands over in memory it may reuse, such as polars'). A part's body goes
out in 1 MiB slices (`_PartBody`): handed whole, asyncio copied every part in flight into its
transport buffer. Before ranges were streamed into the load's buffer (`fs._cat_file`: each
range joined into `bytes`, then copied) the load was 1.08x / 1.11x.

Speed (benchmarks/large.py, network model): see its "physical limit" (encode, upload,
download and decode of the same bytes, each alone) and docs/benchmarks.md's figures.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import io
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import google_crc32c

from kedro_gcs_bridge.errors import HandoffError
from kedro_gcs_bridge.pod.backend import upload_url
from kedro_gcs_bridge.pod.context import TaskContext
from kedro_gcs_bridge.pod.formats import FEATHER, FORMATS, POLARS_IPC
from kedro_gcs_bridge.pod.protocol import Part

if TYPE_CHECKING:
    import pyarrow as pa

MIB = 2**20
#: The smallest part `TransferSettings.sized_for` cuts (a request per part must still pay off).
MIN_PART_SIZE = 4 * MIB
#: numpy dtype kinds Arrow can hand over without converting (ints, floats, datetimes, ...).
_PLAIN_KINDS = frozenset("iufmM")


@dataclass(frozen=True)
class TransferSettings:
    """When and how a frame crosses as parallel parts.

    Attributes:
        threshold: Frames at least this large in memory (bytes) take the parallel path.
        part_size: Bytes of one part object (the last one is shorter).
        range_size: Bytes of one ranged read when loading.
        concurrency: Parts uploaded, or ranges read, at once.
    """

    threshold: int = 128 * MIB
    part_size: int = 16 * MIB
    range_size: int = 16 * MIB
    concurrency: int = 8

    def sized_for(self, frame_bytes: int) -> TransferSettings:
        """These settings with parts small enough that those in flight span at most a quarter
        of the frame (never below `MIN_PART_SIZE`, never above `part_size`): what bounds the
        save's memory for frames near the threshold where a part holds copies (a writer's
        reusable memory, polars' bytes); Arrow's buffers are held uncopied."""
        fitting = max(MIN_PART_SIZE, frame_bytes // (4 * self.concurrency))
        return replace(self, part_size=min(self.part_size, fitting))

    @classmethod
    def from_context(cls, context: TaskContext) -> TransferSettings:
        """The defaults, with the threshold and concurrency the DAG set from airflow.yml."""
        values = {
            "threshold": context.parallel_threshold,
            "concurrency": context.parallel_concurrency,
        }
        return cls(**{name: value for name, value in values.items() if value is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TransferSettings:
        """The settings a pod's environment gives (`TaskContext.from_env`).

        Raises:
            ConfigError: A variable is not a whole number >= 1.
        """
        return cls.from_context(TaskContext.from_env(environ))


def _feather_write(value: Any, sink: Any) -> None:
    value.to_feather(sink, **FORMATS[FEATHER].options["save_args"])


def _polars_write(value: Any, sink: Any) -> None:
    value.write_ipc(sink, **FORMATS[POLARS_IPC].options["save_args"])


#: Formats that stream into a file object, with the call kedro-datasets makes for them.
STREAM_WRITERS: Mapping[str, Callable[[Any, Any], None]] = {
    FEATHER: _feather_write,
    POLARS_IPC: _polars_write,
}


def frame_size(value: Any) -> int:
    """A frame's in-memory size (bytes), cheap where possible: what decides the path."""
    estimated = getattr(value, "estimated_size", None)  # polars
    if callable(estimated):
        return int(estimated())
    shallow = int(value.memory_usage(index=True, deep=False).sum())
    if not any(dtype.kind == "O" for dtype in value.dtypes):
        return shallow
    return int(value.memory_usage(index=True, deep=True).sum())


def wants_parallel(fmt_name: str, value: Any, settings: TransferSettings) -> bool:
    """True if this value should cross as parallel parts (a large frame in a streamed format)."""
    return fmt_name in STREAM_WRITERS and frame_size(value) >= settings.threshold


def crc32c_text(checksum: google_crc32c.Checksum) -> str:
    """A crc32c as GCS writes it (base64 of the big-endian digest)."""
    return base64.b64encode(checksum.digest()).decode()


class PartWriter(io.RawIOBase):
    """A write-only file that uploads what is written to it as parts, several at once.

    `name_of(index)` gives each part's path; `upload(path, pieces)` is a coroutine run on the
    file system's event loop that uploads the part made of those pieces (in order) and
    returns the stored `Part`. A part is a list of pieces, not a buffer: Arrow writes a
    frame's body buffers as `pyarrow.Buffer`s, immutable and kept alive by reference, so a
    part holds slices of them (the frame's own memory, or the table Arrow converted it to,
    which lives until the write ends); `bytes` are kept as they are; other memory (a
    `bytearray`, a `memoryview`: what a writer may reuse once `write` returns) is copied. A
    part waits for a free slot (any upload in flight ending), not for the oldest part.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        upload: Callable[[str, list[memoryview]], Any],
        name_of: Callable[[int], str],
        settings: TransferSettings,
    ) -> None:
        super().__init__()
        self._loop, self._upload, self._name_of = loop, upload, name_of
        self._settings = settings
        self._pieces: list[memoryview] = []
        self._fill = 0
        #: Uploads in flight: future -> part index.
        self._pending: dict[concurrent.futures.Future[Part], int] = {}
        self._done: dict[int, Part] = {}
        self.started: list[str] = []
        self.parts: list[Part] = []
        self.checksum = google_crc32c.Checksum()
        self.size = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.size

    def write(self, data: Any) -> int:  # type: ignore[override]
        import pyarrow as pa

        view = memoryview(data).cast("B")
        written = len(view)
        self.checksum.update(pa.py_buffer(view))  # google-crc32c takes no memoryview
        self.size += written
        if not isinstance(data, pa.Buffer | bytes):
            view = memoryview(bytes(view))  # the caller may reuse its memory after this call
        while view:
            taken = min(len(view), self._settings.part_size - self._fill)
            self._pieces.append(view[:taken])
            self._fill += taken
            view = view[taken:]
            if self._fill == self._settings.part_size:
                self._send()
        return written

    def _send(self) -> None:
        while len(self._pending) >= self._settings.concurrency:
            self._collect(concurrent.futures.FIRST_COMPLETED)
        index = len(self.started)
        path = self._name_of(index)
        self.started.append(path)
        future = asyncio.run_coroutine_threadsafe(self._upload(path, self._pieces), self._loop)
        self._pending[future] = index
        self._pieces, self._fill = [], 0

    def _collect(self, when: str) -> None:
        """Waits for uploads in flight (the first to end, or all). An upload's error is raised."""
        done, _ = concurrent.futures.wait(self._pending, return_when=when)
        for future in done:
            self._done[self._pending.pop(future)] = future.result()

    def finish(self) -> list[Part]:
        """Uploads what is left and waits for every part; the parts in order."""
        if self._fill or not self.started:
            self._send()
        while self._pending:
            self._collect(concurrent.futures.ALL_COMPLETED)
        self.parts = [self._done[index] for index in range(len(self.started))]
        return self.parts

    def abandon(self) -> None:
        """Stops the uploads still running (after a failure)."""
        for future in self._pending:
            future.cancel()
        concurrent.futures.wait(self._pending, timeout=60)
        self._pending.clear()

    def close(self) -> None:  # the encoder closes its sink: finishing is the store's call
        return


class _PartBody:
    """A part's pieces as an async iterable of slices of at most 1 MiB, a fresh iteration per
    request (gcsfs retries with the same body). Handed whole, an upload's unsent bytes are
    copied into asyncio's transport buffer (a second copy of every part in flight); slices
    are awaited until the socket takes them."""

    def __init__(self, pieces: list[memoryview]) -> None:
        self.pieces = pieces

    def __aiter__(self) -> AsyncIterator[memoryview]:
        return self._slices()

    async def _slices(self) -> AsyncIterator[memoryview]:
        for piece in self.pieces:
            for start in range(0, len(piece), MIB):
                yield piece[start : start + MIB]


async def _media_upload(fs: Any, path: str, pieces: list[memoryview]) -> Part:
    """One GCS media upload of `pieces`, in order (a single request, gcsfs retries it); the
    stored part."""
    bucket, key, _ = fs.split_path(path)
    size = sum(len(piece) for piece in pieces)
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
    # No public gcsfs call streams a body and returns the stored object (see `upload_url`).
    stored = await fs._call(
        "POST",
        upload_url(fs, bucket),
        uploadType="media",
        name=key,
        headers=headers,
        data=_PartBody(pieces),
        json_out=True,
    )
    if int(stored["size"]) != size:
        raise HandoffError(f"part {path} was stored with {stored['size']} of {size} bytes.")
    generation = stored.get("generation")
    return Part(size, int(generation) if generation else None, str(stored.get("crc32c")))


def upload_frame(
    fs: Any, fmt_name: str, value: Any, name_of: Callable[[int], str], settings: TransferSettings
) -> tuple[list[Part], int, str]:
    """Encodes a frame into parallel part uploads: (parts, total size, crc32c of the stream).

    On failure every part started is deleted before the error propagates.
    """

    def upload(path: str, pieces: list[memoryview]) -> Any:
        return _media_upload(fs, path, pieces)

    writer = PartWriter(fs.loop, upload, name_of, settings.sized_for(frame_size(value)))
    try:
        STREAM_WRITERS[fmt_name](value, writer)
        parts = writer.finish()
    except BaseException:
        writer.abandon()
        remove_paths(fs, writer.started)
        raise
    return parts, writer.size, crc32c_text(writer.checksum)


def remove_paths(fs: Any, paths: list[str]) -> None:
    """Deletes objects concurrently; missing ones are fine (best effort after a failure)."""

    async def remove(path: str) -> None:
        try:
            await fs._rm_file(path)  # fsspec's async API (coroutines are `_`-named)
        except FileNotFoundError:
            return

    async def remove_all() -> None:
        await asyncio.gather(*(remove(path) for path in paths), return_exceptions=True)

    if paths:
        asyncio.run_coroutine_threadsafe(remove_all(), fs.loop).result(timeout=300)


def _ranges(sizes: list[int], range_size: int) -> list[tuple[int, int, int, int]]:
    """(part index, start within the part, end, offset in the stream) of every ranged read."""
    found, offset = [], 0
    for index, size in enumerate(sizes):
        for start in range(0, size, range_size):
            end = min(size, start + range_size)
            found.append((index, start, end, offset + start))
        offset += size
    return found


def read_parts(
    fs: Any, paths: list[str], parts: list[Part], settings: TransferSettings
) -> pa.Buffer:
    """The parts' bytes (pinned generations) in one buffer, read with concurrent ranges."""
    import pyarrow as pa
    from gcsfs.retry import retry_request

    total = sum(part.size for part in parts)
    buffer = pa.allocate_buffer(total)
    target = memoryview(buffer).cast("B")  # type: ignore[arg-type]
    slots = asyncio.Semaphore(settings.concurrency)
    # gcsfs's own retries (408/429/5xx, dropped connections), as its `_cat_file` has them.
    read_range = retry_request(retries=6)(_read_range)

    async def fetch(index: int, start: int, end: int, offset: int) -> None:
        into = target[offset : offset + end - start]
        async with slots:
            await read_range(fs, paths[index], parts[index].generation, start, into)

    async def fetch_all() -> None:
        ranges = _ranges([part.size for part in parts], settings.range_size)
        await asyncio.gather(*(fetch(*where) for where in ranges))

    asyncio.run_coroutine_threadsafe(fetch_all(), fs.loop).result()
    return buffer


async def _read_range(
    fs: Any, path: str, generation: int | None, start: int, target: memoryview
) -> None:
    """Bytes `start` to `start + len(target)` of one object into `target`, as they arrive.

    `fs._cat_file` would hold each range twice more (aiohttp's chunks joined into one `bytes`,
    then copied here); a retry writes the range again from its start.

    Raises:
        HandoffError: The object answered fewer or more bytes than asked.
    """
    from gcsfs.retry import validate_response

    await fs._set_session()
    headers = fs._get_headers({"Range": f"bytes={start}-{start + len(target) - 1}"})
    url = fs.url(path, generation=generation)
    async with fs.session.get(url, headers=headers, timeout=fs.requests_timeout) as response:
        if response.status >= 400:
            validate_response(response.status, await response.read(), path)
        filled = 0
        while chunk := await response.content.readany():
            if filled + len(chunk) > len(target):
                raise HandoffError(f"{path} answered more than the {len(target)} bytes asked.")
            target[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
    if filled != len(target):
        raise HandoffError(f"{path} is shorter than its record ({len(target)} bytes).")


def _arrow_to_pandas(table: pa.Table) -> Any:
    """What `pd.read_feather` makes of a table, one block per column (`split_blocks`): a
    column of one chunk without nulls then stays in the table's memory instead of being
    copied into a 2-D block. None on a pandas whose helper takes no such argument."""
    try:
        from pandas.io._util import arrow_table_to_pandas

        return arrow_table_to_pandas(table, to_pandas_kwargs={"split_blocks": True})
    except (ImportError, TypeError):
        return None


def _writable_view(values: Any, whole: Any, start: int) -> Any:
    """`values` as a writable view of `whole` (the bytes at address `start`), if it lies there."""
    import numpy as np

    if not isinstance(values, np.ndarray) or values.dtype.kind not in _PLAIN_KINDS:
        return None
    offset = values.__array_interface__["data"][0] - start
    aligned = offset % values.dtype.itemsize == 0 and values.flags.c_contiguous
    if values.flags.writeable or not aligned or not 0 <= offset <= len(whole) - values.nbytes:
        return None
    return whole[offset : offset + values.nbytes].view(values.dtype)


def _copied_dtypes(pd: Any) -> tuple[type, ...]:
    """Extension dtypes whose arrays Arrow may hand over read-only (categorical codes,
    tz-aware datetimes, periods): setting a value in one fails, so they are copied (small,
    or what `pd.read_feather` copied anyway)."""
    return (pd.CategoricalDtype, pd.DatetimeTZDtype, pd.PeriodDtype, pd.IntervalDtype)


def _own_columns(frame: Any, data: pa.Buffer) -> Any:
    """The frame with every column writable, numeric ones still in `data`.

    Arrow hands zero-copy columns over read-only, and pandas refuses to set values in them
    (`df.loc[i, c] = x`: "assignment destination is read-only"); copying them would hold the
    frame twice at the peak. The verified bytes belong to this load alone, so the frame takes
    writable views of them instead: same dtypes, labels and index, no copy.
    """
    import numpy as np
    import pandas as pd

    whole = np.frombuffer(data, dtype=np.uint8)
    copied = _copied_dtypes(pd)
    columns: dict[int, Any] = {}
    for position in range(frame.shape[1]):
        series = frame.iloc[:, position]
        values = series.array
        if isinstance(series.dtype, copied):
            values = values.copy()
        elif not isinstance(series.dtype, pd.api.extensions.ExtensionDtype):
            view = _writable_view(series.to_numpy(copy=False), whole, data.address)
            values = values if view is None else view
        columns[position] = values
    owned = pd.DataFrame(columns, index=frame.index, copy=False)
    owned.columns = frame.columns
    owned.attrs = frame.attrs
    return owned


def _writable_categories(frame: Any) -> Any:
    """`pd.read_feather`'s frame with writable categorical codes (Arrow's are read-only)."""
    import pandas as pd

    for position, dtype in enumerate(frame.dtypes):
        if isinstance(dtype, pd.CategoricalDtype):
            frame.isetitem(position, frame.iloc[:, position].array.copy())
    return frame


def _feather_read(data: Any) -> Any:
    import pandas as pd
    import pyarrow as pa
    from pyarrow import ipc

    # What pandas.FeatherDataset.load does (`pd.read_feather`), from memory. Bytes the loader
    # owns (the parallel path's buffer) keep the numeric columns of a one-batch file (what
    # formats.FEATHER writes) without a copy; immutable bytes are copied into writable
    # columns, as `pd.read_feather` does.
    if isinstance(data, pa.Buffer) and data.is_mutable:
        frame = _arrow_to_pandas(ipc.open_file(pa.BufferReader(data)).read_all())
        if frame is not None:
            return _own_columns(frame, data)
    return _writable_categories(pd.read_feather(pa.BufferReader(data)))


def _polars_read(data: Any) -> Any:
    import polars as pl
    import pyarrow as pa

    return pl.read_ipc(pa.BufferReader(data))


#: Formats decoded straight from verified bytes in memory (the others go through kedro-datasets).
FRAME_READERS: Mapping[str, Callable[[Any], Any]] = {
    FEATHER: _feather_read,
    POLARS_IPC: _polars_read,
}
