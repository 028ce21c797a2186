"""DAG generation and DagBag parse time for synthetic pipelines of 100, 1000 and 2000 nodes.

A throwaway Kedro project registers one pipeline per size: `W` parallel chains of nodes, each
node reading its chain predecessor's output, and every 5th position also the neighbouring
chain's (fan-in). 10% of the nodes are grouped: the nodes of a chain are paired (positions
2k, 2k+1) and every 10th pair over the whole pipeline becomes a group (tag
`airflow.g<chain>_<2k>`). A group is two adjacent nodes of one chain and every edge goes from
position j to j+1, so no path can leave a group and come back: no cycle.

For each size, `kedro airflow create -p <pipeline>` runs with kedro-airflow's STOCK template
and with ours (`-j templates/gcs_bridge.j2`; `conf/base/airflow.yml` holds gcp_project_id,
gcp_region, gcp_gke_cluster_name, docker_image, gcs_bridge_root), interleaved, median of
`--repeats`, whole process. Each generated file is then parsed by Airflow's `DagBag` in a fresh
subprocess (`AIRFLOW_HOME` a temp folder): "first parse" is the first `DagBag(...)` call after
importing Airflow (it includes what the DAG file imports: kedro for the stock file, the
Google provider's GKE operator for ours); "processor parse" is the same call after importing the
file's `airflow.*` modules first, which Airflow 3's DAG processor does once in the parent of its
forked parsing processes (`parsing_pre_import_modules`, default on), so it is what every
re-parse costs; "warm" a second `DagBag(...)` in the same process.
Targets: ours <= 1.5x stock for generation and for parse.
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
TARGET = 1.5
PACKAGE = "dagscale"
SIZES = (100, 1000, 2000)
QUICK_SIZES = (20,)
CHAINS = 10
TEMPLATE = common.REPO / "templates" / "gcs_bridge.j2"

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
from airflow.dag_processing.dagbag import DagBag
from airflow.utils.file import iter_airflow_imports
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


def _create(project: Path, variant: str, size: int, target: Path) -> tuple[float, Path]:
    command = [str(common.BIN / "kedro"), "airflow", "create", "-p", f"p{size}"]
    command += ["-t", str(target)]
    if variant == "ours":
        command += ["-j", str(TEMPLATE)]
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


def main() -> None:
    args = common.parser(__doc__.splitlines()[0])
    args.add_argument("--repeats", type=int, default=None, help="default 3 (--quick: 1)")
    args.add_argument(
        "--sizes", default=None, help="comma list of node counts (default 100,1000,2000)"
    )
    options = args.parse_args()
    repeats = options.repeats or (1 if options.quick else 3)
    if options.sizes:
        sizes = tuple(int(s) for s in options.sizes.split(","))
    else:
        sizes = QUICK_SIZES if options.quick else SIZES
    root = Path(tempfile.mkdtemp(prefix="bench-dag-"))
    variants = ("stock", "ours")
    rows: list[dict[str, Any]] = []
    try:
        registry = _REGISTRY.format(chains=CHAINS, sizes=tuple(sizes))
        project = make_project(root, PACKAGE, registry)
        (project / "conf" / "base" / "airflow.yml").write_text(_AIRFLOW_YML)
        home = root / "airflow-home"
        home.mkdir()
        for variant in variants:  # warm-up: bytecode and page cache of both paths, untimed
            _parse(_create(project, variant, sizes[0], root / "dags" / f"warm-{variant}")[1], home)
        for size in sizes:
            created: dict[str, list[float]] = {v: [] for v in variants}
            parsed: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
            files: dict[str, Path] = {}
            for repeat in range(repeats):
                for variant in variants if repeat % 2 == 0 else variants[::-1]:
                    target = root / "dags" / f"{variant}-{size}-{repeat}"
                    seconds, files[variant] = _create(project, variant, size, target)
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
    metrics = ("create_s", "first_parse_s", "processor_parse_s", "warm_parse_s")
    ratios = [
        {"nodes": size} | {m: by[(size, "ours")][m] / by[(size, "stock")][m] for m in metrics}
        for size in sizes
    ]
    print()
    print(
        common.table(
            f"`kedro airflow create` (whole process) and DagBag parse, median of {repeats}",
            [
                "nodes",
                "template",
                "tasks",
                "file KiB",
                "create s",
                "first parse s",
                "pre-import s",
                "processor parse s",
                "warm parse s",
            ],
            [
                [
                    r["nodes"],
                    r["variant"],
                    r["tasks"],
                    r["file_kib"],
                    r["create_s"],
                    r["first_parse_s"],
                    r["pre_import_s"],
                    r["processor_parse_s"],
                    r["warm_parse_s"],
                ]
                for r in rows
            ],
        )
    )
    print()
    print(
        common.table(
            "Ours / stock",
            ["nodes", "create", "first parse", "processor parse", "warm parse"],
            [[r["nodes"], *(r[m] for m in metrics)] for r in ratios],
        )
    )
    targets = []
    for r in ratios:
        for metric, label in (
            ("create_s", "create"),
            ("first_parse_s", "first parse, fresh process"),
            ("processor_parse_s", "parse in Airflow's DAG processor"),
        ):
            targets.append(
                common.Target(
                    f"{r['nodes']} nodes: {label}, ours/stock",
                    f"<= {TARGET}x",
                    f"{r[metric]:.2f}x",
                    r[metric] <= TARGET,
                )
            )
    print()
    print(common.targets_table(targets))
    common.write_result(
        NAME,
        {"sizes": list(sizes), "repeats": repeats, "chains": CHAINS, "template": str(TEMPLATE)},
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
            "The stock template makes one task per node; ours one per group (10% of nodes are "
            "in 2-node groups, so ours has 5% fewer tasks).",
        ],
    )


if __name__ == "__main__":
    main()
