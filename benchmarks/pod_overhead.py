"""What `--runner kedro_gcs_bridge.GCSRunner` adds to a pod's `kedro run`, whole process.

A throwaway Kedro project (temp folder: `pyproject.toml` with `[tool.kedro]`,
`src/<package>/{__init__,settings,pipeline_registry}.py`, empty `conf/base/catalog.yml`,
`conf/local/`) has ONE node that returns a small dict. It is run with the default runner and
with `--runner kedro_gcs_bridge.GCSRunner` (`KEDRO_GCS_BRIDGE_RUN_PREFIX=file://<temp>`),
interleaved, `--runs` times each after one untimed warm-up each; the wall time of the whole
`kedro run` process is compared by median. Target: <= 0.3 s extra. A third variant runs
GCSRunner with MLflow on (`MLFLOW_TRACKING_URI` = a SQLite store in the temp folder, one DAG
run per `kedro run`: the runner imports mlflow, creates the parent run and a child run, logs
the node's duration), to report what tracking costs a pod.

`python -X importtime -m kedro run ...` of both variants shows where import time goes (self
time summed per top-level package, and what GCSRunner adds); printed when the overhead is
above 0.1 s, always kept in the JSON. Without `MLFLOW_TRACKING_URI` the runner never imports
mlflow (the first two variants; the benchmarks unset it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import _common as common

NAME = "pod_overhead"
TARGET_S = 0.3
PRINT_IMPORTS_ABOVE_S = 0.1
PACKAGE = "podbench"
RUNNER = "kedro_gcs_bridge.GCSRunner"
MLFLOW = "GCSRunner+MLflow"

_PYPROJECT = f"""\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "{PACKAGE}"
version = "0.1.0"

[tool.kedro]
package_name = "{PACKAGE}"
project_name = "{PACKAGE}"
kedro_init_version = "1.7.0"
source_dir = "src"
"""

# Only kedro-gcs-bridge's plugin hooks are measured: another plugin that may be installed in the
# same venv (kedro-mlflow opens a tracking store in every session) is switched off.
_SETTINGS = '''\
"""Kedro defaults, without other plugins' hooks."""

DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow",)
'''

_REGISTRY = '''\
"""One node, returning a small dict."""

from kedro.pipeline import Node, Pipeline


def summarise() -> dict:
    return {"rows": 3, "ok": True, "name": "pod-overhead"}


def register_pipelines() -> dict[str, Pipeline]:
    pipeline = Pipeline([Node(summarise, None, "summary", name="summarise")])
    return {"__default__": pipeline}
'''


def make_project(root: Path, package: str = PACKAGE, registry: str = _REGISTRY) -> Path:
    """Writes a minimal Kedro project under `root` and returns its folder."""
    project = root / package
    source = project / "src" / package
    source.mkdir(parents=True)
    (project / "pyproject.toml").write_text(_PYPROJECT.replace(PACKAGE, package))
    (source / "__init__.py").write_text('"""Benchmark project."""\n')
    (source / "settings.py").write_text(_SETTINGS)
    (source / "pipeline_registry.py").write_text(registry)
    (project / "conf" / "base").mkdir(parents=True)
    (project / "conf" / "local").mkdir(parents=True)
    (project / "conf" / "base" / "catalog.yml").write_text("{}\n")
    return project


def _command(variant: str, importtime: bool = False) -> list[str]:
    words = [sys.executable]
    if importtime:
        words += ["-X", "importtime"]
    words += ["-m", "kedro", "run"]
    if variant.startswith("GCSRunner"):
        words += ["--runner", RUNNER]
    return words


def run_once(
    project: Path, variant: str, prefix: str, importtime: bool = False, bytecode: bool = True
) -> tuple[float, str]:
    """(wall seconds, stderr) of one `kedro run` process."""
    env = common.child_env(bytecode, KEDRO_GCS_BRIDGE_RUN_PREFIX=prefix)
    if variant == MLFLOW:
        # One SQLite store beside the run prefixes (created by the warm-up run).
        runs = Path(prefix.removeprefix("file://")).parent
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{runs / 'mlflow.db'}"
        env["KEDRO_GCS_BRIDGE_RUN_ID"] = Path(prefix).name
    start = time.perf_counter()
    done = subprocess.run(
        _command(variant, importtime),
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"kedro run ({variant}) failed:\n{done.stderr[-3000:]}")
    return seconds, done.stderr


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def import_profile(stderr: str) -> dict[str, Any]:
    """Self import time per top-level package, and the largest single modules (seconds)."""
    per_package: dict[str, float] = defaultdict(float)
    modules: list[tuple[str, float, float]] = []
    for line in stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if not match:
            continue
        own, cumulative, name = int(match[1]) / 1e6, int(match[2]) / 1e6, match[4]
        per_package[name.split(".", 1)[0]] += own
        modules.append((name, own, cumulative))
    return {
        "total_s": sum(per_package.values()),
        "per_package_s": dict(sorted(per_package.items(), key=lambda kv: -kv[1])),
        "top_modules": sorted(modules, key=lambda m: -m[1])[:25],
        "modules": {name for name, _, _ in modules},
        "all": modules,
    }


def main() -> None:
    args = common.parser(__doc__.splitlines()[0])
    args.add_argument("--runs", type=int, default=None, help="timed runs each (default 7)")
    args.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="compile every module in every run (this venv's state; pods have .pyc files)",
    )
    options = args.parse_args()
    bytecode = not options.no_bytecode_cache
    runs = options.runs or (1 if options.quick else 7)
    root = Path(tempfile.mkdtemp(prefix="bench-pod-"))
    variants = ["default", "GCSRunner", MLFLOW]
    times: dict[str, list[float]] = {v: [] for v in variants}
    try:
        project = make_project(root)

        def prefix() -> str:
            return (root / "runs" / f"r{time.perf_counter_ns()}").as_uri()

        for variant in variants if not options.quick else ():  # warm-up: page cache, bytecode
            run_once(project, variant, prefix(), bytecode=bytecode)
        for i in range(0 if options.quick else runs):
            for variant in variants if i % 2 == 0 else variants[::-1]:
                times[variant].append(run_once(project, variant, prefix(), bytecode=bytecode)[0])
        profiles = {}
        for variant in variants:
            seconds, stderr = run_once(
                project, variant, prefix(), importtime=True, bytecode=bytecode
            )
            profiles[variant] = import_profile(stderr)
            if options.quick:  # a smoke run: its one timed run is the profiled one
                times[variant].append(seconds)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    medians = {v: common.median(times[v]) for v in variants}
    extra = medians["GCSRunner"] - medians["default"]
    mlflow_extra = medians[MLFLOW] - medians["default"]
    paired = [g - d for d, g in zip(times["default"], times["GCSRunner"], strict=True)]
    rows = [
        {
            "variant": v,
            "median_s": medians[v],
            "min_s": min(times[v]),
            "max_s": max(times[v]),
            "import_total_s": profiles[v]["total_s"],
            "runs": times[v],
        }
        for v in variants
    ]
    print(
        common.table(
            f"`kedro run` of a one-node project, whole process, {runs} run(s) each, interleaved"
            + ("" if bytecode else ", no bytecode cache"),
            ["runner", "median s", "min s", "max s", "import time s (-X importtime)"],
            [
                [r["variant"], r["median_s"], r["min_s"], r["max_s"], r["import_total_s"]]
                for r in rows
            ],
        )
    )
    print(
        f"\nGCSRunner extra: {extra:+.3f} s (median of medians); paired differences: "
        + ", ".join(f"{d:+.2f}" for d in paired)
        + f"\nGCSRunner with MLflow on (SQLite store): {mlflow_extra:+.3f} s over the default "
        "runner (reported, no target)"
    )
    base, ours = profiles["default"], profiles["GCSRunner"]
    added = sorted(ours["modules"] - base["modules"])
    added_packages: dict[str, float] = defaultdict(float)
    for name, own, _ in ours["all"]:
        if name in set(added):
            added_packages[name.split(".", 1)[0]] += own
    packages = sorted(
        set(base["per_package_s"]) | set(ours["per_package_s"]),
        key=lambda p: -(ours["per_package_s"].get(p, 0.0)),
    )
    package_rows = [
        [
            p,
            base["per_package_s"].get(p, 0.0),
            ours["per_package_s"].get(p, 0.0),
            ours["per_package_s"].get(p, 0.0) - base["per_package_s"].get(p, 0.0),
        ]
        for p in packages[:15]
    ]
    bridge_default = base["per_package_s"].get("kedro_gcs_bridge", 0.0)
    mlflow_imported = any(m.startswith("mlflow") for m in ours["modules"])
    if extra > PRINT_IMPORTS_ABOVE_S:
        print()
        print(
            common.table(
                "Import self time per top-level package (s), one -X importtime run each",
                ["package", "default", "GCSRunner", "difference"],
                package_rows,
            )
        )
        biggest = sorted(added_packages.items(), key=lambda kv: -kv[1])[:8]
        print(
            f"\nmodules only the GCSRunner run imports: {len(added)} "
            f"({', '.join(f'{p} {s:.3f} s' for p, s in biggest)})"
        )
    print(
        f"kedro_gcs_bridge modules imported by the DEFAULT run too (plugin hook + CLI entry "
        f"points): {bridge_default:.3f} s self time; mlflow imported: {mlflow_imported}"
    )
    targets = [
        common.Target(
            "GCSRunner extra wall time, one-node `kedro run`",
            f"<= {TARGET_S} s",
            f"{extra:+.3f} s",
            extra <= TARGET_S,
        )
    ]
    print()
    print(common.targets_table(targets))
    common.write_result(
        NAME,
        {"runs": runs, "runner": RUNNER, "bytecode_cache": bytecode},
        {
            "rows": rows,
            "extra_s": extra,
            "mlflow_extra_s": mlflow_extra,
            "paired_differences_s": paired,
            "imports": {
                v: {
                    "total_s": profiles[v]["total_s"],
                    "per_package_s": profiles[v]["per_package_s"],
                    "top_modules": profiles[v]["top_modules"],
                }
                for v in variants
            },
            "modules_only_in_gcsrunner": added,
            "packages_only_in_gcsrunner_s": dict(added_packages),
            "kedro_gcs_bridge_in_default_run_s": bridge_default,
            "mlflow_imported": mlflow_imported,
        },
        targets,
        [
            "Whole `kedro run` process wall time (interpreter start to exit), median.",
            "default and GCSRunner: MLFLOW_TRACKING_URI unset, so the runner does not import "
            "mlflow. GCSRunner+MLflow: a SQLite tracking store in the temp folder.",
            "Both variants load kedro-gcs-bridge's hook and CLI entry points (installed plugin).",
        ],
    )


if __name__ == "__main__":
    main()
