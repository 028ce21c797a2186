"""Large frames: parallel parts vs one gcsfs stream, on the emulator and under a network model.

One handoff = `HandoffStore.save` + commit in one store, `HandoffStore.load` in another, of the
benchmark frame (float, int, 32-character string, datetime; 1 GiB by default: 16 Mi rows).
Variants, run side by side and interleaved in one process, median of `--repeats`:
- "parallel parts": the store's default (frames >= 128 MiB cross as 16 MiB parts, 8 at once);
- "plain path": the same store with the threshold out of reach (today's path for small frames:
  kedro-datasets through one gcsfs file, 50 MiB blocks);
- "one gcsfs stream": the same Arrow IPC bytes with `pipe_file` and `cat_file` (one stream
  each way), plus encode and decode.
Conditions: "emulator" (gcp-storage-emulator in memory, on 127.0.0.1) and "network model"
(the same emulator behind benchmarks/_netmodel.py: 30 ms a request, 100 MB/s per connection
and direction; its docstring lists what is and is not modelled).
"""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import _common as common
from _emulator import BUCKET, emulator
from _netmodel import NetworkModel, network_model

NAME = "large"
#: Under the network model the parallel path must be this much faster than one stream.
TARGET_SPEEDUP = 3.0
#: On the plain emulator it must not be slower than the plain path by more than this.
TARGET_NO_REGRESSION = 0.95
CONDITIONS = ("emulator", "network model")
_COLUMNS = ("condition", "variant", "parts", "save_s", "load_s", "e2e_s", "e2e_mb_s")
_COLUMNS += ("speedup_vs_one_stream",)


@dataclass
class Variant:
    """One way to move the frame under one condition."""

    condition: str
    name: str
    times: dict[str, list[float]] = field(default_factory=dict)
    parts: int = 0

    def add(self, **seconds: float) -> None:
        for key, value in seconds.items():
            self.times.setdefault(key, []).append(value)

    def median(self, key: str) -> float:
        return common.median(self.times[key])


def _store_handoff(settings: Any) -> Callable[[str, Any], tuple[float, float, int]]:
    from kedro_gcs_bridge.pod.store import HandoffStore

    def run(prefix: str, frame: Any) -> tuple[float, float, int]:
        producer = HandoffStore(prefix, task="producer", transfer=settings)

        def save() -> Any:
            record = producer.save("frame", frame)
            producer.write_manifest(["producer_node"], "t0")
            return record

        record, save_s = common.timed(save)
        consumer = HandoffStore(prefix, task="consumer", transfer=settings)
        loaded, load_s = common.timed(lambda: consumer.load("frame", producer_task="producer"))
        if len(loaded) != len(frame):
            raise AssertionError("the loaded frame lost rows")
        return save_s, load_s, len(record.parts)

    return run


def _one_stream(prefix: str, frame: Any) -> tuple[float, float, int]:
    import fsspec

    fs = fsspec.filesystem("gs", token="anon", project="local-emulator")
    path = f"{prefix.split('://', 1)[1]}/raw.feather"

    def save() -> None:
        fs.pipe_file(path, common.encode_frame(frame))

    def load() -> int:
        return len(common.decode_frame(fs.cat_file(path)))

    _, save_s = common.timed(save)
    rows, load_s = common.timed(load)
    if rows != len(frame):
        raise AssertionError("the loaded frame lost rows")
    return save_s, load_s, 0


def _variants(threshold: int | None) -> dict[str, Callable[[str, Any], tuple[float, float, int]]]:
    from kedro_gcs_bridge.pod.transfer import TransferSettings

    parallel = TransferSettings() if threshold is None else TransferSettings(threshold=threshold)
    return {
        "parallel parts": _store_handoff(parallel),
        "plain path": _store_handoff(TransferSettings(threshold=2**62)),
        "one gcsfs stream": _one_stream,
    }


def run_condition(
    condition: str, frame: Any, repeats: int, threshold: int | None, model: NetworkModel
) -> list[Variant]:
    """Times every variant under one condition, interleaved (order rotated each repeat)."""
    import fsspec

    runs = _variants(threshold)
    variants = [Variant(condition, name) for name in runs]
    with ExitStack() as stack:
        url = stack.enter_context(emulator())
        if condition == "network model":
            os.environ["STORAGE_EMULATOR_HOST"] = stack.enter_context(network_model(url, model))
        fs = fsspec.filesystem("gs", token="anon", project="local-emulator")
        small = common.make_frame(0.1, seed=1)
        for run in runs.values():  # warm up: sessions, imports, dataset classes
            run(f"gs://{BUCKET}/warm/{uuid.uuid4().hex[:8]}", small)
        for repeat in range(repeats):
            shift = repeat % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                prefix = f"gs://{BUCKET}/large/{uuid.uuid4().hex[:8]}"
                save_s, load_s, parts = runs[variant.name](prefix, frame)
                variant.parts = parts
                variant.add(save=save_s, load=load_s, e2e=save_s + load_s)
                fs.rm(prefix.split("://", 1)[1], recursive=True)
                gc.collect()
    return variants


def _ratio(slow: Variant, fast: Variant) -> float:
    pairs = zip(slow.times["e2e"], fast.times["e2e"], strict=True)
    return common.median(s / f for s, f in pairs)


def main() -> None:
    args = common.parser(__doc__.splitlines()[0], size_mib=1024)
    args.add_argument("--repeats", type=int, default=None, help="default 3 (--quick: 1)")
    args.add_argument("--conditions", default=",".join(CONDITIONS), help="comma list")
    args.add_argument("--latency-ms", type=float, default=30.0)
    args.add_argument("--rate-mb-s", type=float, default=100.0)
    options = args.parse_args()
    size_mib = common.size_of(options, 1024, quick=1)
    repeats = options.repeats or (1 if options.quick else 3)
    threshold = 256 * 2**10 if options.quick else None  # --quick: small frames take parts too
    model = NetworkModel(options.latency_ms / 1000, options.rate_mb_s * 10**6)
    conditions = [c.strip() for c in options.conditions.split(",") if c.strip()]

    frame = common.make_frame(size_mib)
    size = common.frame_bytes(frame)
    print(f"frame: {len(frame):,} rows, {size / common.MIB:.0f} MiB in memory; {repeats} repeat(s)")
    print(f"network model: {model.describe()}")
    variants: list[Variant] = []
    for condition in conditions:
        variants += run_condition(condition, frame, repeats, threshold, model)

    rows, targets = _summarise(variants, size, conditions)
    print()
    print(
        common.table(
            f"Handoff of a {size / common.MIB:.0f} MiB frame (median of {repeats})",
            ["condition", "variant", "parts", "save s", "load s", "e2e s", "e2e MB/s", "speed-up"],
            [[r[key] for key in _COLUMNS] for r in rows],
        )
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
            "conditions": conditions,
            "network_model": model.describe(),
        },
        {"rows": rows},
        targets,
        [
            "speed-up = one-stream e2e seconds / variant e2e seconds per repeat, median.",
            "network model: a loopback TCP proxy in its own process (benchmarks/_netmodel.py) "
            "in front of gcp-storage-emulator; the emulator's own CPU cost is still in.",
        ],
    )


def _summarise(
    variants: list[Variant], size: int, conditions: list[str]
) -> tuple[list[dict[str, Any]], list[common.Target]]:
    rows, targets = [], []
    for condition in conditions:
        chosen = {v.name: v for v in variants if v.condition == condition}
        stream, parallel = chosen["one gcsfs stream"], chosen["parallel parts"]
        for variant in chosen.values():
            rows.append(
                {
                    "condition": condition,
                    "variant": variant.name,
                    "parts": variant.parts,
                    "save_s": variant.median("save"),
                    "load_s": variant.median("load"),
                    "e2e_s": variant.median("e2e"),
                    "e2e_mb_s": common.mb_per_s(size, variant.median("e2e")),
                    "speedup_vs_one_stream": _ratio(stream, variant),
                    "samples": variant.times,
                }
            )
        speedup = _ratio(stream, parallel)
        vs_plain = _ratio(chosen["plain path"], parallel)
        if condition == "network model":
            targets.append(
                common.Target(
                    "network model: parallel parts e2e vs one gcsfs stream",
                    f">= {TARGET_SPEEDUP:g}x faster",
                    f"{speedup:.2f}x",
                    speedup >= TARGET_SPEEDUP,
                )
            )
        else:
            targets.append(
                common.Target(
                    "emulator: parallel parts e2e vs the plain path",
                    f">= {TARGET_NO_REGRESSION:g}x (no regression)",
                    f"{vs_plain:.2f}x",
                    vs_plain >= TARGET_NO_REGRESSION,
                )
            )
    return rows, targets


if __name__ == "__main__":
    main()
