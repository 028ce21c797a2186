"""Shared pieces of the benchmark scripts: environment, the test frame, timing, tables, JSON.

Every script is run as `python benchmarks/<name>.py [--size-mib N] [--quick]`, prints a table and
writes `benchmarks/results/<name>.json` with the same keys (`benchmark`, `command`, `params`,
`environment`, `results`, `targets`, `notes`), which `run_all.py` and the smoke test read.
Importing this module pins the environment every benchmark needs: no gRPC path in gcsfs (it
stalls against the emulator), no Kedro telemetry.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

# Read by gcsfs when it is imported, so set before anything imports it.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
os.environ["KEDRO_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "1"
# MLflow tracking is switched on by this variable; benchmarks measure the bridge without it.
os.environ.pop("MLFLOW_TRACKING_URI", None)
# fsspec's read-ahead prefetch tasks are still pending when the interpreter exits after a
# gs:// read and asyncio logs "Task was destroyed but it is pending!" for each: noise here.
logging.getLogger("asyncio").setLevel(logging.CRITICAL)

if TYPE_CHECKING:
    import pandas as pd

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
#: Where results go; the smoke test points this elsewhere so full results stay.
RESULTS_ENV = "KEDRO_GCS_BRIDGE_BENCH_RESULTS"
RESULTS = Path(os.environ.get(RESULTS_ENV) or BENCHMARKS / "results")
PYTHON = Path(sys.executable)
BIN = PYTHON.parent
MIB = 2**20
MB = 10**6
#: Bytes per row of the test frame: float64 + int64 + datetime64 (24) + 32 chars + 8 offset.
ROW_BYTES = 64
STRING_CHARS = 32

T = TypeVar("T")

PACKAGES = (
    "kedro",
    "kedro-datasets",
    "kedro-airflow",
    "gcsfs",
    "fsspec",
    "gcp-storage-emulator",
    "apache-airflow",
    "pandas",
    "pyarrow",
    "cloudpickle",
)


def child_env(bytecode_cache: bool = True, **extra: str) -> dict[str, str]:
    """The environment for a benchmark's subprocesses (no tracking, no telemetry).

    `make install` compiles the venv's bytecode, as pip does in a pod's image
    (docker/Dockerfile). `bytecode_cache=False` measures a process that compiles every module
    from source instead (~3-4 s more for `kedro run`): its bytecode goes to an empty folder
    and is never written.
    """
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    env |= {
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PYTHONPYCACHEPREFIX", None)
    if not bytecode_cache:
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="kedro-gcs-bridge-no-pyc-")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    env |= extra
    return env


def encode_frame(frame: pd.DataFrame) -> bytes:
    """The frame in the store's frame format (Arrow IPC, as `kedro_gcs_bridge.pod.formats` sets
    it), encoded in memory: what the "raw" references move with bulk calls."""
    import io

    from kedro_gcs_bridge.pod.formats import FEATHER, FORMATS

    buffer = io.BytesIO()
    frame.to_feather(buffer, **FORMATS[FEATHER].options["save_args"])
    return buffer.getvalue()


def decode_frame(data: bytes) -> pd.DataFrame:
    """The inverse of `encode_frame`."""
    import io

    import pandas as pd

    return pd.read_feather(io.BytesIO(data))


def make_frame(size_mib: float, seed: int = 0) -> pd.DataFrame:
    """A frame of about `size_mib` MiB in memory: float64, int64, a string and a datetime column.

    256 MiB is 4 Mi rows (64 bytes a row). Floats are random (incompressible), ints lie in
    [0, 10**6), strings are 32 characters of which the first 8 are one of 36 letters repeated
    (some structure for the codecs) and the rest random, timestamps span ~30 years in seconds.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    rows = max(16, int(size_mib * MIB) // ROW_BYTES)
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789", dtype=np.uint8)
    chars = alphabet[rng.integers(0, len(alphabet), size=(rows, STRING_CHARS), dtype=np.uint8)]
    chars[:, :8] = alphabet[rng.integers(0, len(alphabet), size=(rows, 1))]
    offsets = np.arange(rows + 1, dtype=np.int64) * STRING_CHARS
    strings = pa.Array.from_buffers(
        pa.large_string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes())]
    )
    del chars
    frame = pd.DataFrame(
        {
            "price": rng.standard_normal(rows),
            "count": rng.integers(0, 10**6, rows, dtype=np.int64),
            "label": pd.Series(strings, dtype="str"),
            "at": pd.Timestamp("2000-01-01")
            + pd.to_timedelta(rng.integers(0, 10**9, rows), unit="s"),
        }
    )
    gc.collect()
    return frame


def frame_bytes(frame: pd.DataFrame) -> int:
    """The frame's in-memory size, as pandas counts it (deep)."""
    return int(frame.memory_usage(deep=True).sum())


def timed(function: Callable[[], T]) -> tuple[T, float]:
    """(result, wall seconds) of one call."""
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def median(values: Iterable[float]) -> float:
    """The median (of one value: that value)."""
    return float(statistics.median(list(values)))


def mb_per_s(size: int, seconds: float) -> float:
    """Throughput in MB/s (10**6 bytes)."""
    return size / MB / seconds if seconds > 0 else float("inf")


def parser(description: str, size_mib: float | None = None) -> argparse.ArgumentParser:
    """The arguments every benchmark takes (`--size-mib` only where a frame is involved)."""
    parsed = argparse.ArgumentParser(description=description)
    if size_mib is not None:
        parsed.add_argument(
            "--size-mib",
            type=float,
            default=None,
            help=f"in-memory size of the test frame (default {size_mib:g}; --quick: 4)",
        )
    parsed.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke test)")
    return parsed


def size_of(args: argparse.Namespace, default: float, quick: float = 4) -> float:
    """The frame size to use: `--size-mib`, else the quick or full default."""
    if args.size_mib is not None:
        return float(args.size_mib)
    return quick if args.quick else default


def environment() -> dict[str, Any]:
    """What ran the benchmark: Python, CPUs, package versions."""
    versions: dict[str, str] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "missing"
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "packages": versions,
    }


@dataclass(frozen=True)
class Target:
    """One target a benchmark checks: what is wanted, what was measured, met or not."""

    name: str
    wanted: str
    measured: str
    met: bool

    def to_json(self) -> dict[str, Any]:
        """The target as JSON data."""
        return {
            "name": self.name,
            "wanted": self.wanted,
            "measured": self.measured,
            "met": self.met,
        }


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if abs(value) >= 0.01:
            return f"{value:.3f}"
        return f"{value:.2g}"
    if value is None:
        return "-"
    return str(value)


def table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table (numbers right-aligned)."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [
        max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)
    ]
    numeric = [
        all(row[i].replace(",", "").replace(".", "").replace("-", "").isdigit() for row in cells)
        and bool(cells)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            value.rjust(width) if is_number else value.ljust(width)
            for value, width, is_number in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [title, line(headers), line(["-" * width for width in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out)


def targets_table(targets: Sequence[Target]) -> str:
    """The targets of one benchmark as a table."""
    return table(
        "Targets",
        ["target", "wanted", "measured", "met"],
        [[t.name, t.wanted, t.measured, t.met] for t in targets],
    )


def write_result(
    name: str,
    params: Mapping[str, Any],
    results: Any,
    targets: Sequence[Target],
    notes: Sequence[str] = (),
) -> Path:
    """Writes `benchmarks/results/<name>.json` and returns its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "params": dict(params),
        "environment": environment(),
        "results": results,
        "targets": [target.to_json() for target in targets],
        "notes": list(notes),
    }
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    print(f"\nwrote {path}")
    return path
