"""Encode + decode time and size of one pandas frame in each candidate handoff format.

Formats: Parquet (snappy, pandas' default; zstd; none), Arrow IPC / Feather v2 (lz4, zstd,
none: what the store writes, `kedro_gcs_bridge.pod.formats`), pickle protocol 5, and
cloudpickle + bz2 (the slow reference).
Plain cloudpickle, what the store's pickle fallback writes (`pickle.PickleDataset`,
`backend: cloudpickle`, no compression), is shown too. Everything runs in memory (BytesIO),
in one process, interleaved; median of `--repeats` (cloudpickle + bz2: `--bz2-repeats`, 1 by
default, because it takes ~10x longer than the rest together).

"Safe" means loading cannot run code: Parquet and Arrow IPC are safe, pickle is not. Target:
a safe format with encode + decode within 1.5x of pickle-5 and >= 20x faster than
cloudpickle + bz2. pyarrow uses both cores for Parquet/IPC; pickle and bz2 use one.
"""

from __future__ import annotations

import bz2
import gc
import io
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import _common as common

NAME = "formats"
#: The row that stands for `kedro_gcs_bridge.formats.FEATHER` (uncompressed Arrow IPC).
STORE_FORMAT = "arrow-ipc-none"
PICKLE_FACTOR = 1.5
BZ2_FACTOR = 20.0
BZ2 = "cloudpickle+bz2"
PICKLE5 = "pickle-5"
#: Assumed throughput of one pod to/from GCS (single stream, MB/s), to rank formats by size.
GCS_MB_S = 200.0


@dataclass
class Codec:
    """One format: how to encode a frame to bytes and decode it back."""

    name: str
    family: str
    safe: bool
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    encode_s: list[float] = field(default_factory=list)
    decode_s: list[float] = field(default_factory=list)
    size: int = 0
    exact: bool | None = None


def _parquet(compression: str | None) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    import pandas as pd

    def encode(frame: Any) -> bytes:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, compression=compression)
        return buffer.getvalue()

    def decode(data: bytes) -> Any:
        return pd.read_parquet(io.BytesIO(data))

    return encode, decode


def _feather(compression: str) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    import pandas as pd

    def encode(frame: Any) -> bytes:
        buffer = io.BytesIO()
        frame.to_feather(buffer, compression=compression)
        return buffer.getvalue()

    def decode(data: bytes) -> Any:
        return pd.read_feather(io.BytesIO(data))

    return encode, decode


def _cloudpickle(compress: bool) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    import cloudpickle

    def encode(frame: Any) -> bytes:
        data = cloudpickle.dumps(frame)
        return bz2.compress(data) if compress else data

    def decode(data: bytes) -> Any:
        return pickle.loads(bz2.decompress(data) if compress else data)

    return encode, decode


def codecs() -> list[Codec]:
    """Every format measured, safe ones first."""
    made: list[Codec] = []
    for label, compression in (("snappy", "snappy"), ("zstd", "zstd"), ("none", None)):
        made.append(Codec(f"parquet-{label}", "Parquet", True, *_parquet(compression)))
    for compression in ("lz4", "zstd", "uncompressed"):
        label = "none" if compression == "uncompressed" else compression
        made.append(Codec(f"arrow-ipc-{label}", "Arrow IPC", True, *_feather(compression)))
    made.append(
        Codec(
            PICKLE5,
            "pickle",
            False,
            lambda frame: pickle.dumps(frame, protocol=5),
            pickle.loads,  # the unsafe reference, on our own bytes
        )
    )
    made.append(Codec("cloudpickle", "pickle", False, *_cloudpickle(compress=False)))
    made.append(Codec(BZ2, "pickle", False, *_cloudpickle(compress=True)))
    return made


def _decode(codec: Codec, data: bytes) -> tuple[Any, float]:
    return common.timed(lambda: codec.decode(data))


def measure(codec: Codec, frame: Any, check: bool) -> None:
    """One encode and one decode; the first time, whether the frame came back equal."""
    encoded, encode_s = common.timed(lambda: codec.encode(frame))
    codec.size = len(encoded)
    loaded, decode_s = _decode(codec, encoded)
    del encoded
    codec.encode_s.append(encode_s)
    codec.decode_s.append(decode_s)
    if check:
        codec.exact = bool(loaded.equals(frame)) and bool((loaded.dtypes == frame.dtypes).all())
    del loaded
    gc.collect()


def main() -> None:
    args = common.parser(__doc__.splitlines()[0], size_mib=256)
    args.add_argument("--repeats", type=int, default=None, help="default 3 (--quick: 1)")
    args.add_argument("--bz2-repeats", type=int, default=1, help="default 1")
    args.add_argument(
        "--bz2-size-mib",
        type=float,
        default=None,
        help="run cloudpickle+bz2 on a smaller frame (stated in the output); default: same",
    )
    options = args.parse_args()
    size_mib = common.size_of(options, 256)
    repeats = options.repeats or (1 if options.quick else 3)
    frame = common.make_frame(size_mib)
    size = common.frame_bytes(frame)
    bz2_size_mib = options.bz2_size_mib or size_mib
    bz2_frame = frame if bz2_size_mib == size_mib else common.make_frame(bz2_size_mib)
    bz2_scale = common.frame_bytes(frame) / common.frame_bytes(bz2_frame)
    print(f"frame: {len(frame):,} rows, {size / common.MIB:.0f} MiB in memory; {repeats} repeat(s)")

    measured = codecs()
    measure(measured[0], common.make_frame(1, seed=1), check=False)  # warm-up: imports
    measured[0].encode_s.clear()
    measured[0].decode_s.clear()
    for repeat in range(repeats):
        shift = repeat % len(measured)
        for codec in measured[shift:] + measured[:shift]:
            if codec.name == BZ2:
                if repeat < options.bz2_repeats:
                    measure(codec, bz2_frame, check=repeat == 0)
                continue
            measure(codec, frame, check=repeat == 0)
    for repeat in range(repeats, options.bz2_repeats):
        measure(next(c for c in measured if c.name == BZ2), bz2_frame, check=repeat == 0)

    def total(codec: Codec) -> float:
        seconds = common.median(codec.encode_s) + common.median(codec.decode_s)
        return seconds * (bz2_scale if codec.name == BZ2 else 1.0)

    pickle_total = total(next(c for c in measured if c.name == PICKLE5))
    bz2_total = total(next(c for c in measured if c.name == BZ2))
    rows: list[dict[str, Any]] = []
    for codec in measured:
        scale = bz2_scale if codec.name == BZ2 else 1.0
        seconds = total(codec)
        rows.append(
            {
                "format": codec.name,
                "family": codec.family,
                "safe": codec.safe,
                "encode_s": common.median(codec.encode_s) * scale,
                "decode_s": common.median(codec.decode_s) * scale,
                "total_s": seconds,
                "size_mb": codec.size * scale / common.MB,
                "size_ratio": codec.size * scale / size,
                "vs_pickle5": seconds / pickle_total,
                "faster_than_bz2": bz2_total / seconds,
                "exact_round_trip": codec.exact,
                "repeats": len(codec.encode_s),
                # The object crosses the network twice (upload, download): winners are ranked
                # by encode + decode + 2 x size / an assumed GCS throughput of one pod.
                "with_transfer_s": seconds + 2 * codec.size * scale / common.MB / GCS_MB_S,
                "meets_target": codec.safe
                and seconds <= PICKLE_FACTOR * pickle_total
                and bz2_total / seconds >= BZ2_FACTOR,
            }
        )
    print()
    scaled = f" (bz2 run on {bz2_size_mib:g} MiB, scaled x{bz2_scale:g})" if bz2_scale != 1 else ""
    print(
        common.table(
            f"Formats for a {size / common.MIB:.0f} MiB frame, in memory, median{scaled}",
            [
                "format",
                "safe",
                "encode s",
                "decode s",
                "enc+dec s",
                "MB",
                "size/mem",
                "x pickle-5",
                "faster than bz2",
                "exact",
                "n",
                "+2 transfers s",
                "meets",
            ],
            [
                [
                    r["format"],
                    r["safe"],
                    r["encode_s"],
                    r["decode_s"],
                    r["total_s"],
                    r["size_mb"],
                    r["size_ratio"],
                    r["vs_pickle5"],
                    r["faster_than_bz2"],
                    r["exact_round_trip"],
                    r["repeats"],
                    r["with_transfer_s"],
                    r["meets_target"],
                ]
                for r in rows
            ],
        )
    )
    winners = [r for r in rows if r["meets_target"]]
    best = min(winners, key=lambda r: r["with_transfer_s"], default=None)
    store_format = next(r for r in rows if r["format"] == STORE_FORMAT)
    targets = [
        common.Target(
            "a safe format within 1.5x pickle-5 and >= 20x faster than cloudpickle+bz2",
            "at least one",
            ", ".join(r["format"] for r in winners) or "none",
            bool(winners),
        ),
        common.Target(
            f"{STORE_FORMAT} (what the store writes)",
            "<= 1.5x pickle-5, >= 20x bz2",
            f"{store_format['vs_pickle5']:.2f}x pickle-5, "
            f"{store_format['faster_than_bz2']:.0f}x faster than bz2",
            store_format["meets_target"],
        ),
    ]
    recommendation = (
        f"meets the target: {best['format']}: {best['total_s']:.2f} s encode+decode "
        f"({best['vs_pickle5']:.2f}x pickle-5, {best['faster_than_bz2']:.0f}x faster than "
        f"cloudpickle+bz2), {best['size_mb']:.0f} MB; with 2 transfers at {GCS_MB_S:g} MB/s "
        f"{best['with_transfer_s']:.2f} s"
        if best
        else "no safe format meets the target"
    )
    # Across the network the CPU target is not the whole story: the smallest safe objects
    # can win once the upload and download are counted.
    moved = min((r for r in rows if r["safe"]), key=lambda r: r["with_transfer_s"])
    recommendation += (
        f"\nfastest safe format with 2 transfers at {GCS_MB_S:g} MB/s (assumed): "
        f"{moved['format']} {moved['with_transfer_s']:.2f} s (encode+decode "
        f"{moved['total_s']:.2f} s, {moved['size_mb']:.0f} MB) vs {STORE_FORMAT} "
        f"{store_format['with_transfer_s']:.2f} s"
    )
    print(f"\n{recommendation}")
    print()
    print(common.targets_table(targets))
    common.write_result(
        NAME,
        {
            "size_mib": size_mib,
            "rows": len(frame),
            "frame_bytes": size,
            "repeats": repeats,
            "bz2_repeats": options.bz2_repeats,
            "bz2_size_mib": bz2_size_mib,
        },
        {"rows": rows, "recommendation": recommendation},
        targets,
        [
            "In memory (BytesIO); no storage involved. Sizes and times of cloudpickle+bz2 are "
            "scaled linearly when it ran on a smaller frame.",
            "exact = DataFrame.equals and identical dtypes after the round trip.",
        ],
    )


if __name__ == "__main__":
    main()
