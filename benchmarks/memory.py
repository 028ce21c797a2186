"""Peak memory of a process that saves a frame through `HandoffStore`, and of one that loads it.

Each side runs in its own subprocess (what a pod does). The saving process builds the frame,
warms its imports up with a tiny save, returns freed heap to the OS, then resets the kernel's
peak-RSS counter (`/proc/self/clear_refs`, 5) and saves; the loading process resets the counter
after its imports and loads. "extra" is peak RSS (`VmHWM`) minus the RSS just before the
operation, relative to the frame's in-memory size (`memory_usage(deep=True)`); the loaded
frame itself is part of the loader's extra. Target <= 2x on both sides, and <= 1.3x for a
frame on gs:// large enough for the parallel path (`pod/transfer.py`: parts read into one
buffer, numeric columns decoded without a copy).
Reference ("raw"): `to_feather(BytesIO)` + `pipe_file`, `cat_file` + `read_feather(BytesIO)`.
Backends: `file://` (temp folder) and gs:// on gcp-storage-emulator in memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import _common as common
from _emulator import BUCKET, emulator

NAME = "memory"
TARGET = 2.0
#: For a frame that takes the parallel path (gs://, at least the threshold in memory).
TARGET_PARALLEL = 1.3
#: (backend, variant, fs_args)
VARIANTS: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
    ("file", "HandoffStore", None),
    ("file", "raw", None),
    ("gs", "HandoffStore", None),
    ("gs", "HandoffStore, gcsfs default block", {"block_size": 5 * common.MIB}),
    ("gs", "raw", None),
)


def _status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in bytes."""
    found: dict[str, int] = {}
    with Path("/proc/self/status").open() as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in {"VmRSS", "VmHWM"}:
                found[key] = int(value.split()[0]) * 1024
    return found


def _settle() -> int:
    """Frees what can be freed (Python, glibc, Arrow's pool), resets the peak; the RSS now."""
    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    return _status()["VmRSS"]


def _raw_fs(backend: str) -> Any:
    import fsspec

    if backend == "gs":
        return fsspec.filesystem("gs", token="anon", project="local-emulator")
    return fsspec.filesystem("file")


def _raw_path(prefix: str) -> str:
    return f"{prefix.split('://', 1)[1]}/raw.feather"


def _put(fs: Any, backend: str, prefix: str, data: bytes) -> None:
    if backend == "file":
        Path(_raw_path(prefix)).parent.mkdir(parents=True, exist_ok=True)
    fs.pipe_file(_raw_path(prefix), data)


def _save_committed(store: Any, frame: Any) -> None:
    """Saves and commits (a consumer reads only committed datasets)."""
    store.save("frame", frame)
    store.write_manifest(["producer_node"], "t0")


def child(role: str, backend: str, variant: str, prefix: str, size_mib: float) -> dict[str, Any]:
    """Runs one side in this process and returns its measurements."""

    from kedro_gcs_bridge.pod.store import HandoffStore

    fs_args = next(v[2] for v in VARIANTS if v[0] == backend and v[1] == variant)
    raw = variant == "raw"
    fs = _raw_fs(backend)
    warm = f"{prefix}-warm"
    if role == "save":
        frame = common.make_frame(size_mib)
        tiny = common.make_frame(0.1, seed=1)
        if raw:
            _put(fs, backend, warm, common.encode_frame(tiny))
        else:
            _save_committed(HandoffStore(warm, task="warm", fs_args=fs_args), tiny)
        del tiny
        before = _settle()
        if raw:
            data = common.encode_frame(frame)
            _put(fs, backend, prefix, data)
            del data
        else:
            _save_committed(HandoffStore(prefix, task="producer", fs_args=fs_args), frame)
    else:
        if raw:
            common.decode_frame(fs.cat_file(_raw_path(warm)))
        else:
            HandoffStore(warm, task="reader", fs_args=fs_args).load("frame", producer_task="warm")
        before = _settle()
        if raw:
            frame = common.decode_frame(fs.cat_file(_raw_path(prefix)))
        else:
            consumer = HandoffStore(prefix, task="consumer", fs_args=fs_args)
            frame = consumer.load("frame", producer_task="producer")
    after = _status()
    import pyarrow as pa

    return {
        "role": role,
        "rss_before": before,
        "peak": after["VmHWM"],
        "extra": after["VmHWM"] - before,
        "frame_bytes": common.frame_bytes(frame),
        "arrow_pool_max": pa.default_memory_pool().max_memory(),
        "arrow_backend": pa.default_memory_pool().backend_name,
    }


def _spawn(role: str, backend: str, variant: str, prefix: str, size_mib: float) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", role, "--backend", backend]
    command += ["--variant", variant, "--prefix", prefix, "--size-mib", str(size_mib)]
    done = subprocess.run(
        command, capture_output=True, text=True, env=common.child_env(), timeout=900, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{role} {backend} {variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    args = common.parser(__doc__.splitlines()[0], size_mib=256)
    args.add_argument("--child", choices=["save", "load"], help="(internal) run one side here")
    args.add_argument("--backend", default="file", help="(child) file or gs")
    args.add_argument("--variant", default="HandoffStore", help="(child)")
    args.add_argument("--prefix", default="", help="(child) run prefix")
    args.add_argument("--backends", default="file,gs", help="comma list of file,gs")
    options = args.parse_args()
    size_mib = common.size_of(options, 256)
    if options.child:
        result = child(options.child, options.backend, options.variant, options.prefix, size_mib)
        print(json.dumps(result))
        return

    backends = [b.strip() for b in options.backends.split(",") if b.strip()]
    # --quick: the store's own variants only (each side is a ~4 s subprocess).
    variants = [v for v in VARIANTS if not options.quick or v[1] == "HandoffStore"]
    workdir = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    rows: list[dict[str, Any]] = []
    try:
        for backend in backends:
            chosen = [v for v in variants if v[0] == backend]
            if backend == "gs":
                with emulator():
                    rows += _measure(chosen, size_mib, workdir)
            else:
                rows += _measure(chosen, size_mib, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    targets = [_target(r) for r in rows if r["variant"] != "raw"]
    print()
    print(
        common.table(
            f"Peak RSS above the RSS before the operation, {size_mib:g} MiB frame "
            "(the loader's extra includes the loaded frame)",
            [
                "backend",
                "variant",
                "side",
                "frame MiB",
                "RSS before MiB",
                "extra MiB",
                "x frame",
                "arrow pool max MiB",
            ],
            [
                [
                    r["backend"],
                    r["variant"],
                    r["role"],
                    r["frame_bytes"] / common.MIB,
                    r["rss_before"] / common.MIB,
                    r["extra"] / common.MIB,
                    r["ratio"],
                    r["arrow_pool_max"] / common.MIB,
                ]
                for r in rows
            ],
        )
    )
    print()
    print(common.targets_table(targets))
    common.write_result(
        NAME,
        {"size_mib": size_mib, "backends": backends},
        {"rows": rows},
        targets,
        [
            "Peak from the kernel's VmHWM after resetting it (clear_refs 5) just before the "
            "operation; freed heap returned with gc, malloc_trim(0) and Arrow's "
            "release_unused() first.",
            "The saver's frame exists before the reset (not in extra); the loader's result is "
            "in extra, so 1x of the loader's figure is the frame itself.",
        ],
    )


def _target(row: dict[str, Any]) -> common.Target:
    from kedro_gcs_bridge.pod.transfer import TransferSettings

    parallel = row["backend"] == "gs" and row["frame_bytes"] >= TransferSettings().threshold
    wanted = TARGET_PARALLEL if parallel else TARGET
    path = " (parallel path)" if parallel else ""
    return common.Target(
        f"{row['backend']}: {row['variant']} {row['role']} peak extra{path}",
        f"<= {wanted:g}x frame",
        f"{row['ratio']:.2f}x",
        row["ratio"] <= wanted,
    )


def _measure(
    chosen: list[tuple[str, str, dict[str, Any] | None]], size_mib: float, workdir: Path
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for backend, variant, _ in chosen:
        run = uuid.uuid4().hex[:8]
        prefix = (
            f"gs://{BUCKET}/mem/{run}" if backend == "gs" else (workdir / run).resolve().as_uri()
        )
        for role in ("save", "load"):
            measured = _spawn(role, backend, variant, prefix, size_mib)
            measured |= {
                "backend": backend,
                "variant": variant,
                "ratio": measured["extra"] / measured["frame_bytes"],
            }
            rows.append(measured)
            print(
                f"{backend:5} {variant:32} {role}: extra {measured['extra'] / common.MIB:7.0f} "
                f"MiB = {measured['ratio']:.2f}x frame",
                flush=True,
            )
    return rows


if __name__ == "__main__":
    main()
