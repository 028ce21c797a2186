"""Smoke test of the benchmark scripts: each runs with its smallest settings and writes its JSON.

No timing is asserted. Marked `bench`: `make test-bench` runs them, as a CI job of its own
(they check the benchmark scripts, not the package, and take ~2 min of CPU). The scripts run
one after the other in one session fixture, started in the background once collection is done
(tests/_prefetch.py), with their results redirected to a temporary folder so that full-size
results in `benchmarks/results/` are left alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import _prefetch as prefetch
import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
RESULTS_ENV = "KEDRO_GCS_BRIDGE_BENCH_RESULTS"

#: Script -> the smallest arguments it accepts.
SMOKE: Mapping[str, tuple[str, ...]] = {
    "handoff": ("--quick", "--size-mib", "1"),
    "large": ("--quick",),
    "formats": ("--quick", "--size-mib", "1"),
    "memory": ("--quick", "--size-mib", "1", "--backends", "file"),
    "pod_overhead": ("--quick",),
    "pod_imports": ("--quick",),
    "runid_handoff": ("--quick",),
    "dag_scale": ("--quick",),
    "critical_path": ("--quick",),
    "suggest": ("--quick",),
    "tracking": ("--quick",),
    "replay": ("--quick",),
}
COMMON_KEYS = {"benchmark", "command", "params", "environment", "results", "targets", "notes"}
RESULT_KEYS: Mapping[str, set[str]] = {
    "handoff": {"rows", "facts"},
    "large": {"rows"},
    "formats": {"rows", "recommendation"},
    "memory": {"rows"},
    "pod_overhead": {"rows", "extra_s", "imports", "mlflow_imported"},
    "pod_imports": {"rows", "samples", "modules", "paired_ratio"},
    "runid_handoff": {"rows", "totals", "asked_operations"},
    "dag_scale": {"rows", "ratios"},
    "critical_path": {"tasks", "node_compute_s", "estimates", "single_pod_s"},
    "suggest": {"rows"},
    "tracking": {"rows", "extra_s", "recorded_runs"},
    "replay": {"rows", "ratio", "replay_breakdown"},
}
TARGET_KEYS = {"name", "wanted", "measured", "met"}


def _env(results: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    env |= {
        RESULTS_ENV: str(results),
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _smoke(root: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    """Every benchmark run once with its smallest settings: name -> (process, results dir)."""

    def run(name: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        # critical_path finds no runid_handoff.json here and uses its stated defaults.
        results = root / name
        results.mkdir()
        done = subprocess.run(
            [sys.executable, str(BENCHMARKS / f"{name}.py"), *SMOKE[name]],
            cwd=REPO,
            env=_env(results, environ),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return done, results

    # Started early, beside the unit tests (tests/_prefetch.py): one at a time, so that they
    # take the core the unit tests leave idle.
    return {name: run(name) for name in sorted(SMOKE) if not prefetch.stopping.is_set()}


prefetch.register("smoke_runs", _smoke)


@pytest.fixture(scope="session")
def smoke_runs() -> dict[str, Any]:
    """Every benchmark run once with its smallest settings (tests/_prefetch.py)."""
    return prefetch.result("smoke_runs")


@pytest.mark.slow
@pytest.mark.bench
@pytest.mark.parametrize("name", sorted(SMOKE))
def test_benchmark_runs_and_writes_its_json(name: str, smoke_runs: dict[str, Any]) -> None:
    done, results = smoke_runs[name]
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    written = json.loads((results / f"{name}.json").read_text())
    assert set(written) >= COMMON_KEYS
    assert written["benchmark"] == name
    assert set(written["results"]) >= RESULT_KEYS[name]
    for target in written["targets"]:
        assert set(target) >= TARGET_KEYS
        assert isinstance(target["met"], bool)


def test_scripts_are_all_covered() -> None:
    scripts = {p.stem for p in BENCHMARKS.glob("*.py") if not p.stem.startswith("_")}
    assert scripts - {"run_all"} == set(SMOKE)


@pytest.mark.slow
@pytest.mark.bench
def test_run_all_summarises_what_it_ran(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run_all.py"), "--quick", "--only", "runid_handoff"],
        cwd=REPO,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Summary" in done.stdout
    summary = json.loads((tmp_path / "run_all.json").read_text())
    assert summary["failed"] == []
    assert "runid_handoff" in summary["runs"]


@pytest.mark.slow
@pytest.mark.bench
def test_dag_scale_measures_ours_against_the_original_template(
    smoke_runs: dict[str, Any],
) -> None:
    """Issue 28: the anchor is the original GetInData template, side by side in the same run;
    create, both parses and the file size each have a target, ours / original."""
    done, results = smoke_runs["dag_scale"]
    assert done.returncode == 0, done.stderr[-4000:]
    written = json.loads((results / "dag_scale.json").read_text())["results"]
    sizes = {row["nodes"] for row in written["rows"]}
    assert {(row["nodes"], row["variant"]) for row in written["rows"]} == {
        (size, variant) for size in sizes for variant in ("stock", "original", "ours")
    }
    assert {(r["nodes"], r["versus"]) for r in written["ratios"]} == {
        (size, versus) for size in sizes for versus in ("original", "stock")
    }
    targets = json.loads((results / "dag_scale.json").read_text())["targets"]
    for label in ("create", "DAG processor", "first parse", "file size"):
        assert sum(label in t["name"] and "ours/original" in t["name"] for t in targets) == len(
            sizes
        )
