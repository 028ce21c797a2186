"""Runs every benchmark, one after the other, and prints one summary table of their targets.

`python benchmarks/run_all.py [--quick] [--size-mib N] [--only a,b]`: each script runs in its
own process (sequentially: the machine is small and timings must not overlap), prints its own
tables, and writes `benchmarks/results/<name>.json`; this script then reads those files, prints
every target (met or not) plus the headline figures of the benchmarks that have no target,
and writes `benchmarks/results/run_all.json`. It exits 1 if a benchmark failed to run, not
when a target is missed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import _common as common

#: In run order: critical_path reads runid_handoff's request counts.
BENCHMARKS = (
    "handoff",
    "formats",
    "memory",
    "pod_overhead",
    "pod_imports",
    "runid_handoff",
    "dag_scale",
    "critical_path",
    "suggest",
    "tracking",
    "large",
    "replay",
)
#: Benchmarks that take `--size-mib`.
FRAME_BENCHMARKS = {"handoff", "formats", "memory"}


def _runid_rows(data: dict[str, Any]) -> list[list[Any]]:
    return [
        [
            "runid_handoff",
            f"{row['who']} {row['operation']}",
            "-",
            f"{row['requests']} requests / {row['round_trips']} round trips, "
            f"{row['median_ms']:.1f} ms",
            "-",
        ]
        for row in data["rows"]
        if row["operation"] in set(data["asked_operations"])
    ]


def _critical_rows(data: dict[str, Any]) -> list[list[Any]]:
    return [
        [
            "critical_path",
            f"grouping {row['grouping']}, {row['pod_start']}, {row['handoff']}",
            "-",
            f"{row['seconds']:.0f} s ({row['vs_gcs']:.2f}x GCS)",
            "-",
        ]
        for row in data["estimates"]
        if row["pod_start"] == "warm node"
    ]


def _dag_scale_rows(data: dict[str, Any]) -> list[list[Any]]:
    """Ours / stock kedro-airflow: a reference beside the targets (ours / original template)."""
    return [
        [
            "dag_scale",
            f"{row['nodes']} nodes: ours/stock kedro-airflow (reference, no Google provider)",
            "-",
            f"create {row['create_s']:.2f}x, processor parse {row['processor_parse_s']:.2f}x, "
            f"first parse {row['first_parse_s']:.2f}x, file {row['file_kib']:.2f}x",
            "-",
        ]
        for row in data["ratios"]
        if row.get("versus") == "stock"
    ]


#: Benchmark -> the summary rows of its figures beyond its targets.
_HEADLINES = {
    "runid_handoff": _runid_rows,
    "critical_path": _critical_rows,
    "dag_scale": _dag_scale_rows,
}


def _headline(name: str, result: dict[str, Any]) -> list[list[Any]]:
    """Summary rows for figures without targets."""
    rows = _HEADLINES.get(name)
    return rows(result["results"]) if rows else []


def main() -> None:
    args = common.parser(__doc__.splitlines()[0], size_mib=256)
    args.add_argument("--only", default="", help="comma list of benchmarks to run")
    options = args.parse_args()
    chosen = [b for b in BENCHMARKS if not options.only or b in options.only.split(",")]
    summary: list[list[Any]] = []
    failed: list[str] = []
    runs: dict[str, Any] = {}
    for name in chosen:
        command = [sys.executable, str(common.BENCHMARKS / f"{name}.py")]
        if options.quick:
            command.append("--quick")
        if options.size_mib is not None and name in FRAME_BENCHMARKS:
            command += ["--size-mib", str(options.size_mib)]
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        done = subprocess.run(command, env=common.child_env(), check=False)
        seconds = time.perf_counter() - start
        path = common.RESULTS / f"{name}.json"
        if done.returncode != 0 or not path.exists():
            failed.append(name)
            summary.append([name, "benchmark ran", "exit 0", f"exit {done.returncode}", False])
            continue
        result = json.loads(path.read_text())
        runs[name] = {"seconds": seconds, "command": command[1:], "targets": result["targets"]}
        summary += [
            [name, t["name"], t["wanted"], t["measured"], t["met"]] for t in result["targets"]
        ]
        summary += _headline(name, result)
    print()
    print(
        common.table(
            "Summary", ["benchmark", "target / figure", "wanted", "measured", "met"], summary
        )
    )
    met = sum(1 for row in summary if row[4] is True)
    missed = sum(1 for row in summary if row[4] is False)
    print(f"\n{met} target(s) met, {missed} missed; {len(failed)} benchmark(s) failed to run")
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    (common.RESULTS / "run_all.json").write_text(
        json.dumps(
            {
                "benchmark": "run_all",
                "quick": options.quick,
                "runs": runs,
                "failed": failed,
                "summary": summary,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
