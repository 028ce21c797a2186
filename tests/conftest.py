"""Shared fixtures: an isolated Airflow home, the example pipeline as data, the `kedro` jobs of
test_dag_generation and test_cli run once per session, Airflow DAG bags and pod specs.

Helpers live beside it: tests/_kedro_jobs.py (project copies and the jobs run in them),
tests/_graphs.py (drawings and random pipelines), tests/_slow.py (the `slow` marker),
tests/_gcs_emulator.py, tests/_mlflow_server.py and tests/_tracked_replay.py (local services
and the session's tracked replay). Test modules import their names from here or from them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from filelock import FileLock

# Airflow reads AIRFLOW_HOME when it is first imported: point it at a throwaway folder before
# any test module can import it, so nothing touches a real Airflow installation.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="kedro-gcs-bridge-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["KEDRO_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "1"

import _prefetch as prefetch  # noqa: E402

# Imported from here by test modules too (`from conftest import ...`).
from _graphs import (  # noqa: E402, F401
    ancestors,
    dot_graph,
    has_cycle,
    mermaid_graph,
    random_pipelines,
)
from _kedro_jobs import (  # noqa: E402, F401
    _LOCAL_DISK_CATALOG,
    BRIDGE_ROOT,
    CREATE,
    CREATE_JOBS,
    EXAMPLE,
    EXAMPLE_IMAGE,
    KEDRO,
    LOCAL_DISK_WARN,
    PROD_IMAGE,
    PRODUCTION_KNOBS,
    REPO,
    RUFF,
    RUN_ID,
    SECRETS,
    SENTINEL_DAG,
    TEMPLATE,
    URI_PASSWORD,
    Edit,
    Job,
    KedroRun,
    kedro_env,
    make_project,
    run_jobs,
)
from _precondition_proxy import PreconditionProxy, precondition_proxy  # noqa: E402

from kedro_gcs_bridge.planning.grouping import NodeSpec  # noqa: E402

# The slow marker's check; real local services and the tracked replay, started once per
# session by the tests that ask for them; pytester for tests of the suite's own machinery.
pytest_plugins = ["_slow", "_gcs_emulator", "_mlflow_server", "_tracked_replay", "pytester"]

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag
    from kubernetes.client import V1Pod


def pytest_collection_finish(session: pytest.Session) -> None:
    prefetch.start_needed(session)


#: Under pytest-xdist (`make test`), the files that take longest go out first: each worker
#: takes whole files in the order the collection gives them (`_FileScheduling` turns off
#: xdist's reordering by test count, which sent the long files with few tests last). Then
#: every other file with a `slow` test, then the rest.
LONGEST_FIRST = (
    "tests/tracking/test_tracking.py",
    "tests/tracking/test_suggest_from_run.py",
    "tests/dag/test_replay.py",
    "tests/test_benchmarks.py",
    "tests/pod/test_runner.py",
    "tests/pod/test_faults.py",
    "tests/ops/test_finalize.py",
    "tests/dag/test_dag_generation.py",
    "tests/test_journey.py",
)
#: Files that share a costly session fixture run on one worker, so that it is made once:
#: file -> the work unit it joins.
SAME_WORKER = {
    # The session's tracked replay (tests/_tracked_replay.py, ~90 s).
    "tests/tracking/test_suggest_from_run.py": "tests/tracking/test_tracking.py",
    # The `kedro airflow create` jobs (create_runs, ~60 s).
    "tests/test_hooks.py": "tests/dag/test_dag_generation.py",
}


@pytest.hookimpl(optionalhook=True)  # without xdist (`make test WORKERS=0`) no such hook
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile` with `SAME_WORKER`'s units and the collection's order kept."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class _FileScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return SAME_WORKER.get(path, path)

    config.option.loadscopereorder = False
    return _FileScheduling(config, log)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Orders the files longest first on xdist workers (the same order on each)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    root = Path(str(config.rootpath))
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> tuple[int, int]:
        name = item.path.relative_to(root).as_posix()
        name = SAME_WORKER.get(name, name)
        if name in LONGEST_FIRST:
            return (0, LONGEST_FIRST.index(name))
        return (1, 0) if item.path in slow_files else (2, 0)

    items.sort(key=rank)  # stable: each file's tests keep their order


def pytest_unconfigure(config: pytest.Config) -> None:
    prefetch.stop()
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


# --- The example pipeline as plain data (for the pure unit tests) ----------------------------


_NODE_SPECS = """
import json, sys
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project
from kedro_gcs_bridge.planning.grouping import node_specs
bootstrap_project(sys.argv[1])
specs = node_specs(pipelines["__default__"])
print(json.dumps([[s.name, s.inputs, s.outputs, sorted(s.tags), s.namespace] for s in specs]))
"""


@pytest.fixture(scope="session")
def _example_specs() -> tuple[NodeSpec, ...]:
    """The example project's registered `__default__` pipeline, as `node_specs` copies it, read
    by Kedro in a process of its own (the example's package stays out of the test process)."""
    done = subprocess.run(
        [sys.executable, "-c", _NODE_SPECS, str(EXAMPLE)],
        env=kedro_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    return tuple(
        NodeSpec(name, tuple(inputs), tuple(outputs), frozenset(tags), namespace)
        for name, inputs, outputs, tags, namespace in rows
    )


@pytest.fixture
def spaceflights_nodes(_example_specs: tuple[NodeSpec, ...]) -> list[NodeSpec]:
    """The example project's seven nodes, as `node_specs` copies them (topological order)."""
    return list(_example_specs)


@pytest.fixture(scope="session")
def create_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KedroRun]:
    """Every job of `CREATE_JOBS`, run once per session."""
    return run_jobs(tmp_path_factory.mktemp("create"), CREATE_JOBS)


def made_once(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """A folder `make` fills once per test run, shared by the pytest-xdist workers (under a file
    lock in the run's common temp folder); a `make` that fails leaves it for the next to try."""
    root = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # pytest-N/, above each worker's popen-gwK/
    folder = root / f"once-{name}"
    with FileLock(f"{folder}.lock"):
        if not (folder / ".made").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            (folder / ".made").touch()
    return folder


def _plain_run(folder: Path) -> None:
    project = make_project(folder, "spaceflights", Job(()))
    done = subprocess.run(
        [str(KEDRO), "run"],
        cwd=project,
        env=kedro_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="session")
def reference_metrics(tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """metrics.json of one plain `kedro run` of the example: what every replay must give."""
    folder = made_once(tmp_path_factory, "reference", _plain_run)
    path = folder / "spaceflights" / "data" / "08_reporting" / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8"))


# --- Airflow: DAG bags and pod specs ---------------------------------------------------------


def _migrate(home: Path) -> None:
    env = {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    migrated = subprocess.run(
        [str(KEDRO.parent / "airflow"), "db", "migrate"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr[-3000:]


@pytest.fixture(scope="session")
def airflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Airflow metadata DB, `airflow db migrate`d once per test run (~10 s each time): a test
    that runs `airflow dags test` copies it into its own AIRFLOW_HOME (`with_airflow_db`)."""
    return made_once(tmp_path_factory, "airflow_db", _migrate) / "airflow.db"


def with_airflow_db(home: Path, airflow_db: Path) -> Path:
    """`home` as an AIRFLOW_HOME holding a copy of the session's migrated DB."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(airflow_db, home / "airflow.db")
    return home


@pytest.fixture(scope="session")
def load_dagbag() -> Callable[[Path], DagBag]:
    """Loads a DAG folder with a real Airflow DagBag, once per folder."""
    from airflow.dag_processing.dagbag import DagBag

    cache: dict[Path, DagBag] = {}

    def load(folder: Path) -> DagBag:
        if folder not in cache:
            cache[folder] = DagBag(dag_folder=str(folder))
        return cache[folder]

    return load


@pytest.fixture(scope="session")
def generated_dag(
    create_runs: dict[str, KedroRun], load_dagbag: Callable[[Path], DagBag]
) -> Callable[[str, str], Any]:
    """The DAG `dag_id` that the `CREATE_JOBS` job `job` generated, loaded by Airflow."""

    def get(job: str, dag_id: str) -> Any:
        run = create_runs[job]
        assert run.returncode == 0, run.describe()
        bag = load_dagbag(run.dag_dir())
        assert not bag.import_errors, bag.import_errors
        assert dag_id in bag.dags, f"{dag_id} not in {sorted(bag.dags)}"
        return bag.dags[dag_id]

    return get


@pytest.fixture
def render_dag_file(tmp_path: Path) -> Callable[..., Path]:
    """Renders templates/gcs_bridge.j2 in-process exactly as `kedro airflow create` does.

    For pipelines the example project cannot express; the `gcs_bridge` variable is what the
    package's hook adds to the config. Returns the written file (alone in its folder).
    """
    import jinja2
    from slugify import slugify

    from kedro_gcs_bridge.dag.dagfile import DagFileFactory

    example = yaml.safe_load((EXAMPLE / "conf/base/airflow.yml").read_text(encoding="utf-8"))

    def render(
        pipeline: Any,
        pipeline_name: str = "__default__",
        env: str = "local",
        conf_source: str = "",
        **config: Any,
    ) -> Path:
        loader = jinja2.FileSystemLoader(TEMPLATE.parent)
        jinja_env = jinja2.Environment(autoescape=True, loader=loader, lstrip_blocks=True)
        jinja_env.filters["slugify"] = slugify
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        target = folder / "pkg_dag.py"
        jinja_env.get_template(TEMPLATE.name).stream(
            dag_name="pkg",
            node_objs=pipeline.group_nodes_by(),
            env=env,
            pipeline_name=pipeline_name,
            package_name="pkg",
            pipeline=pipeline,
            conf_source=conf_source,
            **{**example["default"], **config, "gcs_bridge": DagFileFactory()},
        ).dump(str(target))
        return target

    return render


def template_context(dag: Any, run_id: str = RUN_ID) -> dict[str, Any]:
    """The part of an Airflow task context the generated operators' templates use."""
    return {
        "dag": dag,
        "run_id": run_id,
        "ti": SimpleNamespace(try_number=1),
        "params": dag.params.dump(),  # the trigger form's defaults
    }


@pytest.fixture(scope="session")
def render_pods() -> Callable[[Any], dict[str, V1Pod]]:
    """task id -> the pod Airflow would start for it, once per DAG.

    Templates are rendered with a manual run's context, then the operator builds its pod with
    `dry_run=True` (no cluster, no GCP connection).
    """
    cache: dict[int, dict[str, V1Pod]] = {}

    def render(dag: Any) -> dict[str, V1Pod]:
        if id(dag) not in cache:
            pods = {}
            for task in dag.tasks:
                task.render_template_fields(template_context(dag))
                pods[task.task_id] = task.build_pod_request_obj(dry_run=True)
            cache[id(dag)] = pods
        return cache[id(dag)]

    return render


@pytest.fixture
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Makes every attempt to open a network connection fail, and records it."""
    import socket

    attempts: list[tuple[Any, ...]] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise ConnectionRefusedError(f"network access attempted during the test: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.fixture
def gcs_preconditions(
    gcs_emulator: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PreconditionProxy]:
    """The GCS emulator behind a proxy that enforces `ifGenerationMatch` as GCS does.

    `STORAGE_EMULATOR_HOST` points at the proxy for the test (gcsfs reads it per request);
    gs:// objects live in the session's emulator, bucket `_gcs_emulator.BUCKET`.
    """
    with precondition_proxy(gcs_emulator, max_requests=20_000, max_seconds=300) as proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        yield proxy


# --- run prefixes under a root (runs list/gc, finalize) ------------------------------------


@pytest.fixture(params=["file", "gs"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A root URL for run prefixes: a local folder, then a fresh folder of the emulator bucket."""
    if request.param == "file":
        return (tmp_path / "root").as_uri()
    request.getfixturevalue("gcs_emulator")
    from _gcs_emulator import BUCKET

    return f"gs://{BUCKET}/root-{uuid.uuid4().hex[:8]}"
