"""What a pod's `kedro run` spends importing kedro-gcs-bridge, before and after the layout.

One group of the example project (`companies`: `kedro run --runner kedro_gcs_bridge.GCSRunner
--nodes preprocess_companies_node`, file:// run prefix) runs under `python -X importtime`
through `_import_probe.py` (which lets the import timer see the modules Kedro loads by name:
the hook, the CLI plugin, the runner), `--runs` times per variant, interleaved:

- `before`: the package as of commit 40dc9f3 (`--before`), the last flat layout, extracted
  with `git archive` and put first on PYTHONPATH; its `kedro.hooks` module imported dagfile,
  plan_views, naming and python-slugify in every Kedro session;
- `now`: the package of this checkout (or `--now`, a commit or a folder holding the package).

Figures (medians, microseconds of `-X importtime`): the self time of every kedro_gcs_bridge
module; the cumulative time of the top-most kedro_gcs_bridge imports (what the bridge makes the
process import first, third-party modules included); python-slugify and kedro-airflow,
whoever imported them first. Target: the bridge's cumulative figure is lower now than before.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import _common as common

NAME = "pod_imports"
BEFORE = "40dc9f3"
PROBE = common.BENCHMARKS / "_import_probe.py"
EXAMPLE = common.REPO / "examples" / "spaceflights"
GROUP = ("companies", "preprocess_companies_node")
BRIDGE = "kedro_gcs_bridge"
#: Third-party packages reported on their own: only the DAG side needs them.
OTHERS = ("slugify", "kedro_airflow")
LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")


def parse_importtime(stderr: str) -> list[tuple[int, int, int, str]]:
    """(depth, self us, cumulative us, module) of every `-X importtime` line, in order."""
    rows = []
    for line in stderr.splitlines():
        if match := LINE.match(line):
            depth = len(match[3]) // 2
            rows.append((depth, int(match[1]), int(match[2]), match[4]))
    return rows


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def topmost(rows: list[tuple[int, int, int, str]], package: str) -> int:
    """Cumulative us of the imports of `package` not nested in another import of it.

    Children are printed before their parent, one indentation step deeper, so reading the
    lines backwards gives each line's ancestors.
    """
    total = 0
    ancestors: list[str] = []
    for depth, _, cumulative, module in reversed(rows):
        del ancestors[depth:]
        if _in(module, package) and not any(_in(a, package) for a in ancestors):
            total += cumulative
        ancestors.append(module)
    return total


def figures(stderr: str, modules: list[str]) -> dict[str, Any]:
    """The figures of one run: bridge self/cumulative, each of OTHERS, modules loaded."""
    rows = parse_importtime(stderr)
    result: dict[str, Any] = {
        "bridge_self_us": sum(s for _, s, _, m in rows if _in(m, BRIDGE)),
        "bridge_cumulative_us": topmost(rows, BRIDGE),
        "bridge_modules": sum(1 for m in modules if _in(m, BRIDGE)),
    }
    for package in OTHERS:
        result[f"{package}_us"] = topmost(rows, package)
    return result


def extract(commit: str, into: Path) -> Path:
    """The package as of `commit`, unpacked under `into` (read-only use of the repository)."""
    archive = subprocess.run(
        ["git", "-C", str(common.REPO), "archive", commit, BRIDGE],
        capture_output=True,
        check=True,
    ).stdout
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _pod_run() -> list[str]:
    return ["run", "--runner", "kedro_gcs_bridge.GCSRunner", "--nodes", GROUP[1]]


def tree_of(ref: str, into: Path) -> Path:
    """The folder holding the package `ref` names: a folder, a commit, or "" (this checkout)."""
    if not ref:
        return common.REPO
    if (Path(ref) / BRIDGE / "__init__.py").is_file():
        return Path(ref).resolve()
    return extract(ref, into.resolve())


def run_once(project: Path, tree: Path, work: Path) -> tuple[dict[str, Any], list[str]]:
    """One pod run of the group with the package of `tree`: its figures, the modules loaded."""
    record = work / f"{uuid.uuid4().hex}.json"
    env = common.child_env(
        PYTHONPATH=str(tree),
        KEDRO_GCS_BRIDGE_RUN_PREFIX=(work / "runs" / uuid.uuid4().hex).as_uri(),
        KEDRO_GCS_BRIDGE_TASK=GROUP[0],
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(PROBE), str(record), *_pod_run()],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the pod run failed with {tree}:\n{done.stderr[-3000:]}")
    loaded = json.loads(record.read_text(encoding="utf-8"))
    if not str(loaded["package"]).startswith(str(tree)):
        raise RuntimeError(f"imported {loaded['package']}, not the package under {tree}")
    return figures(done.stderr, loaded["modules"]), [m for m in loaded["modules"] if _in(m, BRIDGE)]


def measure(before: str, now: str, runs: int) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """(variant -> figures of each run, variant -> kedro_gcs_bridge modules a run loaded).

    Without the `before` commit (a shallow clone), only `now` is measured.
    """
    with tempfile.TemporaryDirectory(prefix="kedro-gcs-bridge-pod-imports-") as temp:
        work = Path(temp)
        project = work / "spaceflights"
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("airflow_dags"))
        trees = {"now": tree_of(now, work / "now")}
        try:
            trees = {"before": tree_of(before, work / "before"), **trees}
        except subprocess.CalledProcessError:
            print(f"commit {before} is not in this clone: measuring 'now' only")
        # One untimed run each first: it writes the bytecode, as `pip install` does in an image
        # (a smoke run, `runs=0` here, keeps its figures instead).
        first = {name: run_once(project, tree, work) for name, tree in trees.items()}
        loaded = {name: modules for name, (_, modules) in first.items()}
        samples: dict[str, list[Any]] = {
            name: [] if runs else [figures_] for name, (figures_, _) in first.items()
        }
        for _ in range(runs):
            for name, tree in trees.items():
                samples[name].append(run_once(project, tree, work)[0])
    return samples, loaded


def compare(samples: dict[str, list[Any]]) -> tuple[list[common.Target], float | None]:
    """The target (now below before) and the median ratio now/before of back-to-back runs."""
    if "before" not in samples:
        return [], None
    key = "bridge_cumulative_us"
    before = common.median(s[key] for s in samples["before"])
    now = common.median(s[key] for s in samples["now"])
    # The runs of a pair ran back to back: their ratio holds better on a busy machine.
    ratio = common.median(
        n[key] / b[key] for b, n in zip(samples["before"], samples["now"], strict=True)
    )
    target = common.Target(
        "kedro_gcs_bridge cumulative import time in a pod",
        f"< before ({before:,.0f} us)",
        f"{now:,.0f} us (paired ratio {ratio:.2f})",
        now < before,
    )
    return [target], ratio


def main() -> None:
    args = common.parser(__doc__.splitlines()[0])
    args.add_argument(
        "--runs", type=int, default=5, help="runs per variant (--quick: none after the first)"
    )
    args.add_argument("--before", default=BEFORE, help="commit or folder of the 'before' package")
    args.add_argument("--now", default="", help="commit or folder of 'now' (default: checkout)")
    options = args.parse_args()
    runs = 0 if options.quick else options.runs  # --quick: the first run's figures only
    samples, loaded = measure(options.before, options.now, runs)
    keys = list(samples["now"][0])
    rows = [
        [name, *(common.median(s[key] for s in figures_) for key in keys)]
        for name, figures_ in samples.items()
    ]
    print(
        common.table(
            f"Pod imports, median of {max(runs, 1)} run(s), microseconds", ["", *keys], rows
        )
    )
    targets, ratio = compare(samples)
    print(common.targets_table(targets))
    common.write_result(
        NAME,
        {"runs": runs, "before": options.before, "now": options.now, "group": GROUP[0]},
        {
            "rows": [dict(zip(["variant", *keys], row, strict=True)) for row in rows],
            "samples": samples,
            "modules": loaded,
            "paired_ratio": ratio,
        },
        targets,
        notes=[
            "slugify and kedro_airflow are imported in every variant by kedro-airflow's "
            "`kedro.project_commands` plugin, which Kedro's CLI loads for every command."
        ],
    )


if __name__ == "__main__":
    main()
