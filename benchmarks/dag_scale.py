"""DAG generation and DagBag parse time for synthetic pipelines of 100, 1000 and 2000 nodes.

A throwaway Kedro project registers one pipeline per size: `W` parallel chains of nodes, each
node reading its chain predecessor's output, and every 5th position also the neighbouring
chain's (fan-in). 10% of the nodes are grouped: the nodes of a chain are paired (positions
2k, 2k+1) and every 10th pair over the whole pipeline becomes a group (tag
`airflow.g<chain>_<2k>`). A group is two adjacent nodes of one chain and every edge goes from
position j to j+1, so no path can leave a group and come back: no cycle.

For each size, `kedro airflow create -p <pipeline>` runs with three templates, interleaved,
median of `--repeats`, whole process (the bridge's bytecode written first, as a wheel install
does: see `_compile_bridge`): ours (`-j templates/gcs_bridge.j2`; `conf/base/airflow.yml`
holds gcp_project_id, gcp_region, gcp_gke_cluster_name, docker_image, gcs_bridge_root); the
ANCHOR, the original GetInData template this project grew from (getindata/kedro-airflow-gke-example
at e301ed5, `templates/gke_operator.pytpl`: one GKEStartPodOperator per node or tag group, built
in a loop over node tables, plus an MLflow init pod); and kedro-airflow's stock template (no
Google provider: a reference only). Each generated file is then parsed by Airflow's `DagBag` in a
fresh subprocess (`AIRFLOW_HOME` a temp folder): "first parse" is the first `DagBag(...)` call
after importing Airflow (it includes what the DAG file imports: kedro for the stock file, the
Google provider's GKE operator for ours and the anchor); "processor parse" is the same call after
importing the file's `airflow.*` modules first, which Airflow 3's DAG processor does once in the
parent of its forked parsing processes (`parsing_pre_import_modules`, default on), so it is what
every re-parse costs; "warm" a second `DagBag(...)` in the same process. Before either, the
parse process calls `gc.freeze()` once Airflow is imported, as the DAG processor's manager does
before it forks parsers: otherwise a full collection, which falls during one file's parse and
not another's by the luck of the allocation counters, scans all of Airflow's heap (0.6-0.8 s on
this machine kind) and the figure measures that lottery.

The anchor is adapted to Airflow 3 and today's kedro-airflow only where it would not run
(`benchmarks/original_gke_operator.pytpl`), nothing else changed:
1. `airflow.operators.python` -> `airflow.providers.standard.operators.python` (moved in 3.0);
2. `schedule_interval=` -> `schedule=` (removed in 3.0);
3. `from airflow_utils import *` -> the three helpers of the example's
   `src/spaceflights/airflow_utils/airflow_utils.py` written in the file (its own comment says
   they are "in the DAG file for demo convenience"; on a worker they are not importable);
4. `dependencies` (parent -> children), which kedro-airflow no longer passes, rebuilt at the top
   from `pipeline.node_dependencies`;
5. tag prefixes `airflow:`/`machine:` -> `airflow.`/`machine.` (Kedro 0.19+ refuses `:` in tags).

Targets (issue 28): ours / anchor <= 1.2x for create, processor parse and first parse, and the
DAG file <= 2x the anchor's, at every size measured (the issue's acceptance names 1,000 and
2,000 nodes; smaller sizes are reported the same way).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as common
from pod_overhead import make_project

NAME = "dag_scale"
TARGET = 1.2
SIZE_TARGET = 2.0
PACKAGE = "dagscale"
SIZES = (100, 1000, 2000)
QUICK_SIZES = (20,)
CHAINS = 10
TEMPLATE = common.REPO / "templates" / "gcs_bridge.j2"
#: In run order; ratios are ours / ANCHOR (and ours / stock, a reference without a target).
VARIANTS = ("stock", "original", "ours")
ANCHOR = "original"
ORIGINAL_SOURCE = (
    "getindata/kedro-airflow-gke-example@e301ed5:templates/gke_operator.pytpl "
    "(+ src/spaceflights/airflow_utils/airflow_utils.py)"
)
#: The original template, adapted as listed in the module docstring (nothing else changed).
ORIGINAL_TEMPLATE = common.BENCHMARKS / "original_gke_operator.pytpl"

_REGISTRY = '''\
"""Synthetic pipelines: CHAINS parallel chains, fan-in every 5th position, 10% grouped."""

from kedro.pipeline import Node, Pipeline

CHAINS = {chains}
SIZES = {sizes}


def step(*values):
    return len(values)


def synthetic(size: int) -> Pipeline:
    length = max(2, size // CHAINS)
    nodes = []
    for chain in range(CHAINS):
        for position in range(length):
            inputs = []
            if position:
                inputs.append(f"d_{{chain}}_{{position - 1}}")
                if position % 5 == 0:
                    inputs.append(f"d_{{(chain + 1) % CHAINS}}_{{position - 1}}")
            tags = []
            first = position - position % 2
            if ((chain * length + first) // 2) % 10 == 0 and first + 1 < length:
                tags.append(f"airflow.g{{chain}}_{{first}}")
            nodes.append(
                Node(
                    step,
                    inputs or None,
                    f"d_{{chain}}_{{position}}",
                    name=f"n_{{chain}}_{{position}}",
                    tags=tags,
                )
            )
    return Pipeline(nodes)


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = {{f"p{{size}}": synthetic(size) for size in SIZES}}
    pipelines["__default__"] = pipelines[f"p{{SIZES[0]}}"]
    return pipelines
'''

_AIRFLOW_YML = """\
default:
  gcp_project_id: bench-project
  gcp_region: europe-west1
  gcp_gke_cluster_name: bench-autopilot
  docker_image: europe-west1-docker.pkg.dev/bench-project/kedro/dagscale:0.1.0
  gcs_bridge_root: gs://bench-bucket/kedro-gcs-bridge
  start_date: [2023, 1, 1]
"""

_PARSE = """\
import importlib, json, os, sys, time
from pathlib import Path
start = time.perf_counter()
import gc
from airflow.dag_processing.dagbag import DagBag
from airflow.utils.file import iter_airflow_imports
# Airflow 3's DAG processor manager freezes what it imported (gc.freeze() in before_run) so that
# its forked parsers never scan it: a full collection here would scan all of Airflow's heap.
gc.freeze()
imported = time.perf_counter()
# What Airflow 3's DAG processor does once, in the parent of its parsing processes
# ([dag_processor] parsing_pre_import_modules, default True): import the file's airflow.* modules.
for path in Path(sys.argv[1]).glob("*.py"):
    for module in iter_airflow_imports(str(path)):
        importlib.import_module(module)
pre_imported = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
parsed = time.perf_counter()
again = DagBag(dag_folder=sys.argv[1])
warm = time.perf_counter()
dags = list(bag.dags.values())
print(json.dumps({
    "import_airflow_s": imported - start,
    "pre_import_s": pre_imported - imported,
    "parse_s": parsed - pre_imported,
    "first_parse_s": parsed - imported,
    "warm_s": warm - parsed,
    "errors": {str(k): str(v)[-2000:] for k, v in bag.import_errors.items()},
    "dags": len(dags),
    "tasks": sum(len(d.tasks) for d in dags),
}))
"""


def _compile_bridge() -> None:
    """Writes kedro-gcs-bridge's bytecode, as installing its wheel does. The editable install
    leaves the package's source uncompiled, and where PYTHONDONTWRITEBYTECODE is set (as on the
    machines these figures come from) the untimed warm-up cannot write it: every timed create
    would then compile the ~30 modules of the bridge's hook (~0.06 s of CPU) that no installed
    copy compiles, while the anchor and the stock template import none of them."""
    import compileall

    compileall.compile_dir(str(common.REPO / "kedro_gcs_bridge"), quiet=1)


def _templates(ours: Path = TEMPLATE) -> dict[str, list[str]]:
    """Variant -> its `-j` arguments."""
    return {"stock": [], "original": ["-j", str(ORIGINAL_TEMPLATE)], "ours": ["-j", str(ours)]}


def _create(
    project: Path, variant: str, size: int, target: Path, ours: Path = TEMPLATE
) -> tuple[float, Path]:
    command = [str(common.BIN / "kedro"), "airflow", "create", "-p", f"p{size}"]
    command += ["-t", str(target), *_templates(ours)[variant]]
    start = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=project,
        env=common.child_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"kedro airflow create ({variant}, {size}) failed:\n{done.stderr[-3000:]}"
        )
    files = sorted(target.glob("*.py"))
    if len(files) != 1:
        raise RuntimeError(f"expected one DAG file in {target}, found {files}")
    return seconds, files[0]


def _parse(dag_file: Path, airflow_home: Path) -> dict[str, Any]:
    folder = dag_file.parent
    env = common.child_env(
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(folder),
    )
    done = subprocess.run(
        [sys.executable, "-c", _PARSE, str(folder)],
        cwd=airflow_home,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"DagBag parse of {dag_file} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["errors"] or result["dags"] != 1:
        raise RuntimeError(f"DagBag could not load {dag_file}: {result['errors']}")
    return result


def _row(
    size: int, variant: str, created: list[float], parsed: list[dict[str, Any]], file: Path
) -> dict[str, Any]:
    def median(key: str) -> float:
        return common.median(p[key] for p in parsed)

    return {
        "nodes": size,
        "variant": variant,
        "tasks": parsed[0]["tasks"],
        "file_kib": file.stat().st_size / 1024,
        "create_s": common.median(created),
        "first_parse_s": median("first_parse_s"),
        "pre_import_s": median("pre_import_s"),
        "processor_parse_s": median("parse_s"),
        "warm_parse_s": median("warm_s"),
        "import_airflow_s": median("import_airflow_s"),
        "create_samples": created,
        "parse_samples": parsed,
    }


_METRICS = ("create_s", "first_parse_s", "processor_parse_s", "warm_parse_s", "file_kib")
_TARGETS = (
    ("create_s", "create", TARGET),
    ("processor_parse_s", "parse in Airflow's DAG processor", TARGET),
    ("first_parse_s", "first parse, fresh process", TARGET),
    ("file_kib", "DAG file size", SIZE_TARGET),
)


def _print_tables(rows: list[dict[str, Any]], ratios: list[dict[str, Any]], repeats: int) -> None:
    columns = ("tasks", "file_kib", "create_s", "first_parse_s", "pre_import_s")
    columns += ("processor_parse_s", "warm_parse_s")
    print()
    print(
        common.table(
            f"`kedro airflow create` (whole process) and DagBag parse, median of {repeats}",
            [
                *("nodes", "template", "tasks", "file KiB", "create s", "first parse s"),
                *("pre-import s", "processor parse s", "warm parse s"),
            ],
            [[r["nodes"], r["variant"], *(r[c] for c in columns)] for r in rows],
        )
    )
    print()
    print(
        common.table(
            "Ours / anchor (the original GetInData template) and ours / stock kedro-airflow",
            ["nodes", "versus", "create", "first parse", "processor parse", "warm parse", "file"],
            [[r["nodes"], r["versus"], *(r[m] for m in _METRICS)] for r in ratios],
        )
    )


def _targets(ratios: list[dict[str, Any]]) -> list[common.Target]:
    return [
        common.Target(
            f"{r['nodes']} nodes: {label}, ours/original template",
            f"<= {limit}x",
            f"{r[metric]:.2f}x",
            r[metric] <= limit,
        )
        for r in ratios
        if r["versus"] == ANCHOR
        for metric, label, limit in _TARGETS
    ]


def main() -> None:
    args = common.parser(__doc__.splitlines()[0])
    args.add_argument("--repeats", type=int, default=None, help="default 3 (--quick: 1)")
    args.add_argument(
        "--sizes", default=None, help="comma list of node counts (default 100,1000,2000)"
    )
    args.add_argument(
        "--ours", default=str(TEMPLATE), help="our template (another version, to compare)"
    )
    options = args.parse_args()
    repeats = options.repeats or (1 if options.quick else 3)
    if options.sizes:
        sizes = tuple(int(s) for s in options.sizes.split(","))
    else:
        sizes = QUICK_SIZES if options.quick else SIZES
    ours = Path(options.ours).resolve()
    root = Path(tempfile.mkdtemp(prefix="bench-dag-"))
    variants = VARIANTS
    rows: list[dict[str, Any]] = []
    try:
        registry = _REGISTRY.format(chains=CHAINS, sizes=tuple(sizes))
        project = make_project(root, PACKAGE, registry)
        (project / "conf" / "base" / "airflow.yml").write_text(_AIRFLOW_YML)
        home = root / "airflow-home"
        home.mkdir()
        _compile_bridge()
        # Warm-up (not with --quick): bytecode and page cache of every path, untimed.
        for variant in variants if not options.quick else ():
            warm = root / "dags" / f"warm-{variant}"
            _parse(_create(project, variant, sizes[0], warm, ours)[1], home)
        for size in sizes:
            created: dict[str, list[float]] = {v: [] for v in variants}
            parsed: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
            files: dict[str, Path] = {}
            for repeat in range(repeats):
                for variant in variants if repeat % 2 == 0 else variants[::-1]:
                    target = root / "dags" / f"{variant}-{size}-{repeat}"
                    seconds, files[variant] = _create(project, variant, size, target, ours)
                    created[variant].append(seconds)
            for repeat in range(repeats):
                for variant in variants if repeat % 2 == 0 else variants[::-1]:
                    parsed[variant].append(_parse(files[variant], home))
            for variant in variants:
                row = _row(size, variant, created[variant], parsed[variant], files[variant])
                rows.append(row)
                print(
                    f"{size:5} nodes {variant:5}: {row['tasks']} tasks, "
                    f"create {row['create_s']:.2f} s, first parse {row['first_parse_s']:.2f} s, "
                    f"processor parse {row['processor_parse_s']:.2f} s",
                    flush=True,
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    by = {(r["nodes"], r["variant"]): r for r in rows}
    ratios = [
        {"nodes": size, "versus": versus}
        | {m: by[(size, "ours")][m] / by[(size, versus)][m] for m in _METRICS}
        for size in sizes
        for versus in (ANCHOR, "stock")
    ]
    _print_tables(rows, ratios, repeats)
    targets = _targets(ratios)
    print()
    print(common.targets_table(targets))
    common.write_result(
        NAME,
        {
            "sizes": list(sizes),
            "repeats": repeats,
            "chains": CHAINS,
            "template": str(ours),
            "anchor": ORIGINAL_SOURCE,
        },
        {"rows": rows, "ratios": ratios},
        targets,
        [
            "create = wall time of the whole `kedro airflow create` process.",
            "first parse = first DagBag(dag_folder) call in a fresh process after importing "
            "Airflow: includes the DAG file's imports (kedro for stock, the Google provider's "
            "GKE operator for ours).",
            "processor parse = the same after importing the file's airflow.* modules first, as "
            "Airflow 3's DAG processor does once in the parent of its forked parsing processes "
            "(parsing_pre_import_modules, default True): the cost paid on every re-parse. "
            "Non-airflow imports (kedro in the stock file) are still paid per parse.",
            "warm parse = a second DagBag call in the same process (everything imported).",
            "The stock template makes one task per node; ours and the anchor one per group (10% "
            "of nodes are in 2-node groups, so 5% fewer tasks); the anchor adds an MLflow init "
            "task, ours none (tracking is off in the benchmark's config).",
            f"Anchor: {ORIGINAL_SOURCE}, adapted to Airflow 3 as listed in dag_scale.py's "
            "docstring. Ratios are ours / anchor (targets) and ours / stock (reference).",
        ],
    )


if __name__ == "__main__":
    main()
