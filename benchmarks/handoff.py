"""Handoff throughput: a pandas frame saved by one `HandoffStore` and loaded by another.

This is the path `GCSRunner` takes for a boundary frame: `HandoffStore.save` (kedro-datasets
`pandas.FeatherDataset` writing Arrow IPC through fsspec `open(..., "wb")`, then the object's
crc32c and the record) and `HandoffStore.load` (record, crc32c check, `pd.read_feather`).
The reference ("raw") moves the same Arrow IPC bytes with the file system's own bulk calls:
encode = `df.to_feather(BytesIO)`, `pipe_file`, `cat_file`, decode = `pd.read_feather`.

Both run on `file://` (a temp folder) and on gs:// against gcp-storage-emulator in memory, side
by side in one process, interleaved, median of `--repeats`. Throughput is the frame's in-memory
size over wall time. On gs:// two variants pass a 50 MiB block to the store:
`fs_args={"block_size": 50 MiB}` (the file system's default: reads and writes) and
`fs_args={"open_args_save": {"block_size": 50 MiB}}` (kedro-datasets' save-side open only).

About the emulator versus real GCS: a write through `GCSFile` sends one resumable-upload
chunk per `block_size` (gcsfs default 5 MiB), synchronously, while the encoder waits. The
emulator appends every chunk by copying the whole upload so far (`file_content += content`),
so N chunks cost O(N^2) bytes copied: small blocks are penalised more than on GCS. On real GCS
each chunk is still a sequential HTTPS round trip (tens of ms of latency plus the transfer,
and GCS asks for chunks that are multiples of 256 KiB, recommending >= 8 MiB), so 5 MiB blocks
also cost there: about 40 sequential requests for a 200 MB object against 4-5 with 50 MiB
blocks, which is what `pipe_file` uses. Reads are the other way round on GCS: gcsfs reads
large objects with concurrent ranged requests, which the single-threaded emulator serialises.
"""

from __future__ import annotations

import functools
import gc
import inspect
import shutil
import subprocess
import sys
import tempfile
import types
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as common
from _emulator import BUCKET, emulator

NAME = "handoff"
TARGET_RATIO = 0.8
#: The store before the commit protocol and byte checksums, timed side by side with today's.
BEFORE_COMMIT = "267891e"
#: The commit protocol and byte checksums may cost at most this much end to end.
TARGET_COST = 1.05


@dataclass
class Variant:
    """One way to hand the frame over, on one backend."""

    backend: str
    name: str
    kind: str  # "ours" or "raw"
    fs_args: Mapping[str, Any] | None = None
    before: bool = False  # the store of BEFORE_COMMIT
    times: dict[str, list[float]] = field(default_factory=dict)
    encoded: int = 0

    def add(self, **seconds: float) -> None:
        for key, value in seconds.items():
            self.times.setdefault(key, []).append(value)

    def median(self, key: str) -> float:
        return common.median(self.times[key])


@functools.cache
def _store_before() -> Any:
    """The `store` module as it was at BEFORE_COMMIT (fixed names, metadata checksums)."""
    source = subprocess.run(
        ["git", "show", f"{BEFORE_COMMIT}:kedro_gcs_bridge/pod/store.py"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("_store_before")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, f"{BEFORE_COMMIT}:store.py", "exec"), module.__dict__)
    return module


def _handoff_before(variant: Variant, prefix: str, frame: Any) -> tuple[Any, float, Any, float]:
    store = _store_before().HandoffStore
    producer = store(prefix, task="producer", fs_args=variant.fs_args)
    consumer = store(prefix, task="consumer", fs_args=variant.fs_args)
    record, save = common.timed(lambda: producer.save("frame", frame))
    loaded, load = common.timed(lambda: consumer.load("frame"))
    return record, save, loaded, load


def _handoff_now(variant: Variant, prefix: str, frame: Any) -> tuple[Any, float, Any, float]:
    from kedro_gcs_bridge.pod.store import HandoffStore

    producer = HandoffStore(prefix, task="producer", fs_args=variant.fs_args)
    consumer = HandoffStore(prefix, task="consumer", fs_args=variant.fs_args)

    def save() -> Any:
        record = producer.save("frame", frame)
        producer.write_manifest(["producer_node"], "t0")  # the commit
        return record

    record, save_s = common.timed(save)
    loaded, load_s = common.timed(lambda: consumer.load("frame", producer_task="producer"))
    return record, save_s, loaded, load_s


def _ours(variant: Variant, prefix: str, frame: Any) -> None:
    handoff = _handoff_before if variant.before else _handoff_now
    record, save, loaded, load = handoff(variant, prefix, frame)
    if len(loaded) != len(frame):
        raise AssertionError("the loaded frame lost rows")
    del loaded
    variant.encoded = record.size
    variant.add(save=save, load=load, e2e=save + load)


def _raw(variant: Variant, fs: Any, path: str, frame: Any) -> None:

    def encode() -> bytes:
        return common.encode_frame(frame)

    def pipe(data: bytes) -> float:
        return common.timed(lambda: fs.pipe_file(path, data))[1]

    def decode(data: bytes) -> tuple[int, float]:
        loaded, seconds = common.timed(lambda: common.decode_frame(data))
        return len(loaded), seconds

    encoded, encode_s = common.timed(encode)
    variant.encoded = len(encoded)
    pipe_s = pipe(encoded)
    del encoded
    fs.invalidate_cache()
    got, cat_s = common.timed(lambda: fs.cat_file(path))
    rows, decode_s = decode(got)
    del got
    if rows != len(frame):
        raise AssertionError("the loaded frame lost rows")
    save, load = encode_s + pipe_s, cat_s + decode_s
    variant.add(
        encode=encode_s,
        pipe=pipe_s,
        cat=cat_s,
        decode=decode_s,
        save=save,
        load=load,
        e2e=save + load,
    )


def _gcsfs_facts() -> dict[str, Any]:
    """Block and chunk sizes gcsfs uses, read from the installed gcsfs."""
    import gcsfs
    import gcsfs.core

    pipe = inspect.signature(gcsfs.GCSFileSystem._pipe_file).parameters["chunksize"].default
    return {
        "gcsfs_version": gcsfs.__version__,
        "default_block_size": gcsfs.core.DEFAULT_BLOCK_SIZE,
        "pipe_file_chunksize": pipe,
        "min_chunk_for_concurrent_reads": gcsfs.GCSFileSystem.MIN_CHUNK_SIZE_FOR_CONCURRENCY,
        "writes_through": "kedro-datasets FeatherDataset: fs.open(path, 'wb') -> GCSFile",
        "reads_through": "pd.read_feather(url, storage_options) -> fsspec.open(url, 'rb')",
    }


def _block_in_use(prefix: str, fs_args: Mapping[str, Any] | None) -> int:
    """The block size the store's kedro-datasets writer opens its file with, for a prefix."""
    import fsspec

    from kedro_gcs_bridge.pod.store import HandoffStore

    store = HandoffStore(prefix, task="probe", fs_args=fs_args)
    options = dict(store._fs_args)
    opened = options.pop("open_args_save", {}) or {}
    options.pop("open_args_load", None)
    if "block_size" in opened:
        return int(opened["block_size"])
    return int(fsspec.filesystem("gs", **options).default_block_size)


def _warm_up(run: Callable[[Any], None]) -> None:
    """One small handoff first: sessions, imports and dataset classes are not timed."""
    run(common.make_frame(1, seed=1))


def run_backend(
    backend: str, frame: Any, repeats: int, workdir: Path
) -> tuple[list[Variant], dict[str, Any]]:
    """Times every variant of one backend, interleaved (order rotated each repeat)."""
    import fsspec

    facts: dict[str, Any] = {}
    if backend == "file":
        fs = fsspec.filesystem("file")
        root = workdir / "file"
        root.mkdir(parents=True, exist_ok=True)

        def prefix() -> str:
            return (root / uuid.uuid4().hex[:8]).as_uri()

        def raw_path() -> str:
            return str(root / f"raw-{uuid.uuid4().hex[:8]}.feather")

        variants = [
            Variant(backend, "HandoffStore", "ours"),
            Variant(backend, f"HandoffStore before ({BEFORE_COMMIT})", "ours", before=True),
            Variant(backend, "raw fsspec", "raw"),
        ]
        facts["block_size"] = "n/a (local files are written directly)"
    else:
        import gcsfs

        fs = gcsfs.GCSFileSystem(token="anon", project="local-emulator")

        def prefix() -> str:
            return f"gs://{BUCKET}/bench/{uuid.uuid4().hex[:8]}"

        def raw_path() -> str:
            return f"{BUCKET}/raw/{uuid.uuid4().hex[:8]}.feather"

        # The store writes in 50 MiB blocks; the second variant is what it did with gcsfs's
        # default block, to show what that setting buys.
        small = {"block_size": gcsfs.core.DEFAULT_BLOCK_SIZE}
        variants = [
            Variant(backend, "HandoffStore", "ours"),
            Variant(backend, f"HandoffStore before ({BEFORE_COMMIT})", "ours", before=True),
            Variant(backend, "HandoffStore, gcsfs default block", "ours", small),
            Variant(backend, "raw gcsfs", "raw"),
        ]
        facts["block_size_default_store"] = _block_in_use(prefix(), None)
        facts["block_size_variant"] = _block_in_use(prefix(), small)

    def once(variant: Variant, value: Any) -> None:
        if variant.kind == "ours":
            where = prefix()
            _ours(variant, where, value)
            fs.rm(where.split("://", 1)[1] if backend == "gs" else where[7:], recursive=True)
        else:
            where = raw_path()
            _raw(variant, fs, where, value)
            fs.rm(where)
        gc.collect()

    for variant in variants:
        scratch = Variant(backend, variant.name, variant.kind, variant.fs_args, variant.before)
        _warm_up(lambda value, v=scratch: once(v, value))
    for repeat in range(repeats):
        shift = repeat % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            once(variant, frame)
    return variants, facts


def main() -> None:
    args = common.parser(__doc__.splitlines()[0], size_mib=256)
    args.add_argument("--repeats", type=int, default=None, help="default 3 (--quick: 1)")
    args.add_argument("--backends", default="file,gs", help="comma list of file,gs")
    options = args.parse_args()
    size_mib = common.size_of(options, 256)
    repeats = options.repeats or (1 if options.quick else 3)
    backends = [b.strip() for b in options.backends.split(",") if b.strip()]

    frame = common.make_frame(size_mib)
    size = common.frame_bytes(frame)
    print(f"frame: {len(frame):,} rows, {size / common.MIB:.0f} MiB in memory; {repeats} repeat(s)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-handoff-"))
    all_variants: list[Variant] = []
    facts: dict[str, Any] = {"gcsfs": _gcsfs_facts()}
    try:
        for backend in backends:
            if backend == "gs":
                with emulator():
                    variants, found = run_backend(backend, frame, repeats, workdir)
            else:
                variants, found = run_backend(backend, frame, repeats, workdir)
            all_variants += variants
            facts[backend] = found
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    rows: list[dict[str, Any]] = []
    targets: list[common.Target] = []
    for backend in backends:
        variants = [v for v in all_variants if v.backend == backend]
        raw = next(v for v in variants if v.kind == "raw")
        before = next(v for v in variants if v.before)
        now = next(v for v in variants if v.kind == "ours" and not v.before)
        cost = common.median(
            [n / b for n, b in zip(now.times["e2e"], before.times["e2e"], strict=True)]
        )
        targets.append(
            common.Target(
                f"{backend}: commit protocol + byte checksums, e2e vs {BEFORE_COMMIT}",
                f"<= {TARGET_COST}x",
                f"{cost:.3f}x",
                cost <= TARGET_COST,
            )
        )
        for variant in variants:
            # Ratio of throughputs per repeat (ours and raw ran side by side), then the median.
            ratios = [r / o for r, o in zip(raw.times["e2e"], variant.times["e2e"], strict=True)]
            row = {
                "backend": backend,
                "variant": variant.name,
                "encoded_mb": variant.encoded / common.MB,
                "save_s": variant.median("save"),
                "load_s": variant.median("load"),
                "e2e_s": variant.median("e2e"),
                "save_mb_s": common.mb_per_s(size, variant.median("save")),
                "load_mb_s": common.mb_per_s(size, variant.median("load")),
                "e2e_mb_s": common.mb_per_s(size, variant.median("e2e")),
                "ratio_vs_raw": common.median(ratios),
                "samples": {key: values for key, values in variant.times.items()},
            }
            if variant.kind == "raw":
                row |= {
                    f"{key}_s": variant.median(key) for key in ("encode", "pipe", "cat", "decode")
                }
            rows.append(row)
            if variant.kind == "ours":
                targets.append(
                    common.Target(
                        f"{backend}: {variant.name} e2e vs raw",
                        f">= {TARGET_RATIO}x raw throughput",
                        f"{row['ratio_vs_raw']:.2f}x",
                        row["ratio_vs_raw"] >= TARGET_RATIO,
                    )
                )

    print()
    print(
        common.table(
            f"Handoff of a {size / common.MIB:.0f} MiB frame (median of {repeats}; "
            "MB/s = in-memory MB / s)",
            [
                "backend",
                "variant",
                "encoded MB",
                "save s",
                "load s",
                "e2e s",
                "save MB/s",
                "load MB/s",
                "e2e MB/s",
                "ours/raw",
            ],
            [
                [
                    r["backend"],
                    r["variant"],
                    r["encoded_mb"],
                    r["save_s"],
                    r["load_s"],
                    r["e2e_s"],
                    r["save_mb_s"],
                    r["load_mb_s"],
                    r["e2e_mb_s"],
                    r["ratio_vs_raw"],
                ]
                for r in rows
            ],
        )
    )
    print()
    print(
        common.table(
            "Raw breakdown (s)",
            ["backend", "encode", "pipe", "cat", "decode"],
            [
                [r["backend"], r["encode_s"], r["pipe_s"], r["cat_s"], r["decode_s"]]
                for r in rows
                if "encode_s" in r
            ],
        )
    )
    gcs = facts["gcsfs"]
    print(
        f"\ngcsfs {gcs['gcsfs_version']}: GCSFile block_size default "
        f"{gcs['default_block_size'] / common.MIB:g} MiB (what the store's writer uses: "
        f"{facts.get('gs', {}).get('block_size_default_store', 0) / common.MIB:g} MiB); "
        f"pipe_file chunks {gcs['pipe_file_chunksize'] / common.MIB:g} MiB; variant "
        f"{facts.get('gs', {}).get('block_size_variant', 0) / common.MIB:g} MiB."
    )
    print()
    print(common.targets_table(targets))
    common.write_result(
        NAME,
        {
            "size_mib": size_mib,
            "rows": len(frame),
            "frame_bytes": size,
            "repeats": repeats,
            "backends": backends,
        },
        {"rows": rows, "facts": facts},
        targets,
        [
            "ours = HandoffStore.save in one store + HandoffStore.load in another (record, "
            "crc32c check and all); raw = to_feather(BytesIO) + pipe_file, cat_file + "
            "read_feather(BytesIO) of the same frame.",
            "gs runs against gcp-storage-emulator -M (in memory), which appends resumable "
            "chunks in O(n^2); see the module docstring for real GCS.",
            "ratio = raw e2e seconds / ours e2e seconds per repeat (side by side), median.",
        ],
    )


if __name__ == "__main__":
    main()
