"""Shared fixtures: an isolated Airflow home, copies of the example project, and the real
`kedro` CLI run once per variant for the whole session.

The Kedro subprocesses dominate the suite's runtime (each imports Kedro, pandas and
scikit-learn: ~1.5 s), so every variant a module needs is run once, all at the same time, by a
session fixture; tests only read the results.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from hypothesis import strategies as st

# Airflow reads AIRFLOW_HOME when it is first imported: point it at a throwaway folder before
# any test module can import it, so nothing touches a real Airflow installation.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="kedro-gcs-bridge-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["KEDRO_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "1"

from _precondition_proxy import PreconditionProxy, precondition_proxy  # noqa: E402

from kedro_gcs_bridge.planning.grouping import NodeSpec  # noqa: E402

# Real local services, started once per session by the tests that ask for them.
pytest_plugins = ["_gcs_emulator", "_mlflow_server"]

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag
    from kubernetes.client import V1Pod

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "spaceflights"
TEMPLATE = REPO / "templates" / "gcs_bridge.j2"
KEDRO = Path(sys.executable).parent / "kedro"
RUFF = Path(sys.executable).parent / "ruff"

#: The run id Airflow gives a manual run; it holds ':' and '+', which the run prefix replaces.
RUN_ID = "manual__2026-11-24T07:11:31.230999+00:00"
#: Where the example's airflow.yml puts run prefixes.
BRIDGE_ROOT = "gs://example-bucket/kedro-gcs-bridge"
EXAMPLE_IMAGE = "europe-west1-docker.pkg.dev/example-project/kedro/spaceflights:0.1.0"
PROD_IMAGE = "europe-west1-docker.pkg.dev/example-project/kedro/spaceflights:prod"
#: What a pre-existing DAG file holds in the projects where `kedro airflow create` must fail.
SENTINEL_DAG = b"# a DAG file from an earlier, good run: it must survive a failed create\n"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "journey: the user journey end to end, as `make demo` runs it (examples/demo.sh)"
    )
    config.addinivalue_line("markers", "slow: builds or runs something real (minutes when cold)")
    config.addinivalue_line(
        "markers", "providers: the oldest and newest supported Airflow/provider sets"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


# --- The example pipeline as plain data (for the pure unit tests) ----------------------------


def _example_node_specs() -> list[NodeSpec]:
    """The example project's registered `__default__` pipeline, as `node_specs` copies it.

    Its pipeline code is imported as it is, without a Kedro session; only the node functions
    (pandas, scikit-learn) are stand-ins, since a plan reads names, inputs, outputs and tags.
    """
    import importlib
    import types

    from kedro_gcs_bridge.planning.grouping import node_specs

    def stand_in(*args: Any, **kwargs: Any) -> None:
        return None

    def nodes_module(name: str) -> types.ModuleType:
        module = types.ModuleType(name)
        module.__getattr__ = lambda attr: stand_in  # type: ignore[method-assign]
        return module

    stubs = {
        f"spaceflights.pipelines.{part}.nodes": nodes_module(part)
        for part in ("data_processing", "data_science", "reporting")
    }
    sys.path.insert(0, str(EXAMPLE / "src"))
    sys.modules.update(stubs)
    try:
        registry = importlib.import_module("spaceflights.pipeline_registry")
        return node_specs(registry.register_pipelines()["__default__"])
    finally:
        sys.path.remove(str(EXAMPLE / "src"))
        for name in [m for m in sys.modules if m.split(".")[0] == "spaceflights"]:
            del sys.modules[name]


@pytest.fixture(scope="session")
def _example_specs() -> tuple[NodeSpec, ...]:
    return tuple(_example_node_specs())


@pytest.fixture
def spaceflights_nodes(_example_specs: tuple[NodeSpec, ...]) -> list[NodeSpec]:
    """The example project's seven nodes, as `node_specs` copies them (topological order)."""
    return list(_example_specs)


# --- Copies of the example project -----------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """A change to one file of a project copy.

    `old` is replaced by `new` (it must occur exactly once, so a changed example project fails
    loudly instead of silently testing something else); with `old=None`, `new` is appended,
    or replaces the whole file with `overwrite=True`.
    """

    path: str
    new: str
    old: str | None = None
    overwrite: bool = False


@dataclass(frozen=True)
class Job:
    """One `kedro` command, run in its own copy of the example project."""

    args: tuple[str, ...]
    edits: tuple[Edit, ...] = ()
    #: A DAG folder to create (with `SENTINEL_DAG` as spaceflights_dag.py) before the run.
    seed_dag_dir: str | None = None
    #: Environment variables of this run only, on top of `kedro_env()`.
    env: tuple[tuple[str, str], ...] = ()


@dataclass
class KedroRun:
    """What one `kedro` command did."""

    job: Job
    project: Path
    returncode: int
    stdout: str
    stderr: str
    files_before: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def output(self) -> str:
        """stdout and stderr, whitespace collapsed (Rich wraps long log lines)."""
        return " ".join(f"{self.stdout}\n{self.stderr}".split())

    def dag_dir(self) -> Path:
        """The `-t` folder of a `kedro airflow create` job."""
        return self.project / self.job.args[self.job.args.index("-t") + 1]

    def describe(self) -> str:
        return (
            f"`kedro {' '.join(self.job.args)}` in {self.project} exited {self.returncode}\n"
            f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}"
        )


def _ignore(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n in {".ruff_cache", "__pycache__", "airflow_dags", ".telemetry"}}


def make_project(root: Path, name: str, job: Job) -> Path:
    """Copies the example project to `root/name` and applies the job's edits."""
    project = root / name
    shutil.copytree(EXAMPLE, project, ignore=_ignore)
    for edit in job.edits:
        path = project / edit.path
        path.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if edit.overwrite:
            text = edit.new
        elif edit.old is None:
            text += edit.new
        else:
            count = text.count(edit.old)
            if count != 1:
                raise AssertionError(
                    f"the example project changed: {edit.old!r} occurs {count} times in "
                    f"{edit.path}; update the edit in tests/conftest.py"
                )
            text = text.replace(edit.old, edit.new)
        path.write_text(text, encoding="utf-8")
    if job.seed_dag_dir:
        seeded = project / job.seed_dag_dir
        seeded.mkdir(parents=True)
        (seeded / "spaceflights_dag.py").write_bytes(SENTINEL_DAG)
    return project


def kedro_env() -> dict[str, str]:
    """The environment of every `kedro` subprocess: no telemetry, wide lines for Rich.

    (`make install` compiles the venv's bytecode, so the processes start in ~1.5 s even where
    PYTHONDONTWRITEBYTECODE is set.)
    """
    env = dict(os.environ)
    env.update(
        {
            "KEDRO_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "1",
            "COLUMNS": "400",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


def _snapshot(folder: Path) -> dict[str, bytes]:
    if not folder.is_dir():
        return {}
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def run_jobs(root: Path, jobs: Mapping[str, Job]) -> dict[str, KedroRun]:
    """Runs every job in its own project copy, several at a time."""
    projects = {name: make_project(root, name, job) for name, job in jobs.items()}

    def run(name: str) -> KedroRun:
        job, project = jobs[name], projects[name]
        before = _snapshot(project / job.seed_dag_dir) if job.seed_dag_dir else {}
        done = subprocess.run(
            [str(KEDRO), *job.args],
            cwd=project,
            env={**kedro_env(), **dict(job.env)},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        return KedroRun(job, project, done.returncode, done.stdout, done.stderr, before)

    names = list(jobs)
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(zip(names, pool.map(run, names), strict=True))


def _yaml_edit(
    path: str, section: str, values: Mapping[str, Any], source: str | None = None
) -> Edit:
    """Writes `path`: the example's YAML file `source` (default: `path`) with `values` set
    under its top-level `section`."""
    current = yaml.safe_load((EXAMPLE / (source or path)).read_text(encoding="utf-8")) or {}
    current.setdefault(section, {}).update(values)
    return Edit(path, yaml.safe_dump(current, sort_keys=False), overwrite=True)


CREATE = ("airflow", "create", "-j", str(TEMPLATE), "-t")
#: The example keeps its data on local disk, like the Kedro starter, which a GKE DAG refuses by
#: default (`local_disk: error`; the journey moves it to GCS with `kedro gcs-bridge catalog`).
#: Jobs that test something else accept it, as a user may while trying the DAG out.
LOCAL_DISK_WARN = "local_disk=warn"
WARN = ("--params", LOCAL_DISK_WARN)

_SPOT_CONFIG = {
    "spot_retries": 2,
    "machine_classes": {"preemptible": {"cpu": "1", "memory": "4Gi", "spot": True}},
}

#: Every `kedro airflow create` (and `kedro gcs-bridge validate`) run of test_dag_generation.
CREATE_JOBS: dict[str, Job] = {
    "default": Job((*CREATE, "dags", *WARN)),
    "ungrouped": Job((*CREATE, "dags", "--params", f"grouping=false,{LOCAL_DISK_WARN}")),
    "two_pipelines": Job((*CREATE, "dags", "-p", "data_processing,data_science", *WARN)),
    "prod": Job(
        (*CREATE, "dags", "-e", "prod", *WARN),
        # Kedro replaces a top-level key of base with the env's (and drops `__default__:`
        # keys), so the prod file repeats `default:` with another image.
        edits=(
            _yaml_edit(
                "conf/prod/airflow.yml",
                "default",
                {"docker_image": PROD_IMAGE},
                source="conf/base/airflow.yml",
            ),
        ),
    ),
    # A project-defined Spot machine class on train_model_node, and deferrable operators.
    "custom": Job(
        (*CREATE, "dags", "--params", f"deferrable=true,{LOCAL_DISK_WARN}"),
        edits=(
            _yaml_edit("conf/base/airflow.yml", "default", _SPOT_CONFIG),
            Edit(
                "src/spaceflights/pipelines/data_science/pipeline.py",
                old='name="train_model_node",\n                tags=["machine.medium"],',
                new='name="train_model_node",\n                tags=["machine.preemptible"],',
            ),
        ),
    ),
    "hooks_disabled": Job(
        (*CREATE, "dags", *WARN),
        edits=(
            Edit(
                "src/spaceflights/settings.py",
                '\nDISABLE_HOOKS_FOR_PLUGINS = ("kedro-gcs-bridge",)\n',
            ),
        ),
    ),
    # Broken projects: `kedro airflow create` must stop before writing anything.
    "two_group_tags": Job(
        (*CREATE, "dags", *WARN),
        seed_dag_dir="dags",
        edits=(
            Edit(
                "src/spaceflights/pipelines/data_processing/pipeline.py",
                old='tags=["airflow.companies"]',
                new='tags=["airflow.companies", "airflow.shuttles"]',
            ),
        ),
    ),
    # A tag prefix from the Kedro 0.18 setup, which Kedro 1.x tags can never match.
    "colon_prefix": Job(
        (*CREATE, "dags", *WARN),
        seed_dag_dir="dags",
        edits=(_yaml_edit("conf/base/airflow.yml", "default", {"grouping_prefix": "airflow:"}),),
    ),
    # split_data_node joins group `shuttles`: shuttles -> split (preprocessed_shuttles) and
    # split -> shuttles (model_input_table), so each group waits for the other.
    "cycle": Job(
        (*CREATE, "dags", *WARN),
        seed_dag_dir="dags",
        edits=(
            Edit(
                "src/spaceflights/pipelines/data_science/pipeline.py",
                old='tags=["airflow.split", "machine.medium"]',
                new='tags=["airflow.shuttles", "machine.medium"]',
            ),
        ),
    ),
}
for _broken in ("two_group_tags", "colon_prefix", "cycle"):
    _job = CREATE_JOBS[_broken]
    CREATE_JOBS[f"validate_{_broken}"] = Job(("gcs-bridge", "validate", *WARN), edits=_job.edits)
# The example as it is (local disk refused), and with `local_disk: warn`.
CREATE_JOBS["validate_example"] = Job(("gcs-bridge", "validate"))
CREATE_JOBS["validate_example_warn"] = Job(("gcs-bridge", "validate", *WARN))

#: Secrets on the machine that writes the DAG, each a value that must never reach a DAG file.
SECRETS = {
    "MLFLOW_TRACKING_TOKEN": "tok-sentinel-4711",
    "MLFLOW_TRACKING_PASSWORD": "pw-sentinel-4712",
    "GOOGLE_APPLICATION_CREDENTIALS": "/home/alice/sa-key-sentinel-4713.json",
}
#: A password inside the tracking URI (basic auth in front of an MLflow server).
URI_PASSWORD = "s3cr3t-pw-4714"
# Tracking on (where the pods' environment is written), with secrets in the environment.
CREATE_JOBS["secrets_in_env"] = Job(
    (
        *CREATE,
        "dags",
        "--params",
        f"mlflow_tracking_uri=https://mlflow.example.com,{LOCAL_DISK_WARN}",
    ),
    env=tuple(SECRETS.items()),
)
CREATE_JOBS["secret_in_uri"] = Job(
    (
        *CREATE,
        "dags",
        "--params",
        f"mlflow_tracking_uri=https://alice:{URI_PASSWORD}@example.com,{LOCAL_DISK_WARN}",
    ),
)

#: Issue 15: every production knob at once (callbacks are tested in-process: the DAG file
#: imports them, and the example project ships none), two of them given as `--params`.
PRODUCTION_KNOBS: dict[str, Any] = {
    "execution_timeout": 30,
    "pool_slots": 2,
    "priority_weight": 5,
    "weight_rule": "absolute",
    "on_finish_action": "keep_pod",
    "image_pull_policy": "IfNotPresent",
    "security_context": {"container": {"readOnlyRootFilesystem": True}},
    "pod_labels": {"team": "data"},
    "pod_annotations": {"example.com/owner": "Data team"},
    "node_selector": {"cloud.google.com/gke-nodepool": "batch"},
    "env_vars": {"LOG_LEVEL": "INFO"},
    "env_from_secrets": ["bulk-env"],
    "secret_env": {"MLFLOW_TRACKING_TOKEN": "mlflow-auth:token"},
    "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {}},
    "pod_override": {"spec": {"priorityClassName": "batch-low"}},
    "doc_md": "Nightly spaceflights.",
    "params": {"model_options.test_size": 0.2},
    "deadline": {"minutes": 300, "callback": "team_alerts.late_run"},
    "machine_classes": {"medium": {"execution_timeout": 90}},
}
CREATE_JOBS["production"] = Job(
    (*CREATE, "dags", "--params", f"pool=kedro,dagrun_timeout=240,{LOCAL_DISK_WARN}"),
    edits=(_yaml_edit("conf/base/airflow.yml", "default", PRODUCTION_KNOBS),),
)

#: The example's local-disk entry that crosses pods (companies -> split). As an edit that
#: changes nothing, it fails loudly if the example ever stops keeping it on local disk.
_LOCAL_DISK_ENTRY = (
    "\npreprocessed_companies:\n  type: pandas.ParquetDataset\n"
    "  filepath: data/02_intermediate/preprocessed_companies.parquet\n"
)
_LOCAL_DISK_CATALOG = Edit("conf/base/catalog.yml", _LOCAL_DISK_ENTRY, old=_LOCAL_DISK_ENTRY)

#: Every `kedro gcs-bridge` run of test_cli.
CLI_JOBS: dict[str, Job] = {
    "plan_text": Job(("gcs-bridge", "plan", *WARN), edits=(_LOCAL_DISK_CATALOG,)),
    "validate_local_disk": Job(
        ("gcs-bridge", "validate", "--params", f"local_handoff=false,{LOCAL_DISK_WARN}"),
        edits=(_LOCAL_DISK_CATALOG,),
    ),
    "plan_mermaid": Job(("gcs-bridge", "plan", "--format", "mermaid", *WARN)),
    "plan_dot": Job(("gcs-bridge", "plan", "--format", "dot", *WARN)),
    "plan_dot_file": Job(("gcs-bridge", "plan", "--format", "dot", "-o", "plan.dot", *WARN)),
    "plan_mermaid_ungrouped": Job(
        (
            "gcs-bridge",
            "plan",
            "--format",
            "mermaid",
            "--params",
            f"grouping=false,{LOCAL_DISK_WARN}",
        )
    ),
    "init": Job(("gcs-bridge", "init")),
    "init_force": Job(("gcs-bridge", "init", "--force")),
}


@pytest.fixture(scope="session")
def create_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KedroRun]:
    """Every job of `CREATE_JOBS`, run once per session."""
    return run_jobs(tmp_path_factory.mktemp("create"), CREATE_JOBS)


@pytest.fixture(scope="session")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KedroRun]:
    """Every job of `CLI_JOBS`, run once per session."""
    return run_jobs(tmp_path_factory.mktemp("cli"), CLI_JOBS)


# --- Airflow: DAG bags and pod specs ---------------------------------------------------------


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


# --- Drawings of a plan ----------------------------------------------------------------------

MERMAID_BOX = re.compile(r'^    (t\d+)\["(.*)"\]$')
#: A solid edge, or a dotted one (`-. "label" .->`) for data on local disk.
MERMAID_EDGE = re.compile(r'^    (t\d+) (?:--|-\.) "(.*)" (?:-->|\.->) (t\d+)$')
DOT_BOX = re.compile(r'^  "(.+?)" \[label="(.*)"\];$')
DOT_EDGE = re.compile(r'^  "(.+?)" -> "(.+?)" \[label="(.*?)"(?:, style=dashed, color=red)?\];$')


def mermaid_graph(text: str) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """(task id -> box text, (up task, down task) -> edge label) of a Mermaid flowchart."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    boxes = {m[1]: m[2] for line in lines if (m := MERMAID_BOX.match(line))}
    names = {key: re.match(r"<b>(.*?)</b>", body)[1] for key, body in boxes.items()}
    edges = {(names[m[1]], names[m[3]]): m[2] for line in lines if (m := MERMAID_EDGE.match(line))}
    assert len(boxes) + len(edges) == len(lines) - 1, text
    return {names[key]: body for key, body in boxes.items()}, edges


def dot_graph(text: str) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """(task id -> label, (up, down) -> edge label) of a Graphviz digraph."""
    lines = text.splitlines()
    edges = {(m[1], m[2]): m[3] for line in lines if (m := DOT_EDGE.match(line))}
    boxes = {
        m[1]: m[2] for line in lines if (m := DOT_BOX.match(line)) and not DOT_EDGE.match(line)
    }
    assert lines[0].startswith("digraph ") and lines[-1] == "}"
    assert len(boxes) + len(edges) + 4 == len(lines), text
    return boxes, edges


# --- Random pipelines (hypothesis) -----------------------------------------------------------

GROUP_POOL = ("g0", "g1", "g2", "g3")


@st.composite
def random_pipelines(draw: st.DrawFn) -> list[NodeSpec]:
    """DAG-shaped pipelines in topological order: each node reads raw inputs, parameters or
    outputs of earlier nodes; some nodes carry a group tag from a small pool, some a machine
    tag. Group names never equal node names (name clashes have their own tests)."""
    available = ["raw_a", "raw_b"]
    nodes = []
    for index in range(draw(st.integers(min_value=1, max_value=10))):
        inputs = draw(st.lists(st.sampled_from(available), max_size=3, unique=True))
        if draw(st.integers(0, 4)) == 0:
            inputs.append("params:alpha")
        outputs = [f"d{index}_{j}" for j in range(draw(st.integers(1, 2)))]
        tags = set()
        group = draw(st.none() | st.sampled_from(GROUP_POOL))
        if group is not None:
            tags.add(f"airflow.{group}")
        machine = draw(st.none() | st.sampled_from(("small", "medium")))
        if machine is not None:
            tags.add(f"machine.{machine}")
        nodes.append(NodeSpec(f"n{index}", tuple(inputs), tuple(outputs), frozenset(tags)))
        available += outputs
    return nodes


def has_cycle(vertices: Iterable[str], edges: Iterable[tuple[str, str]]) -> bool:
    """Plain three-colour DFS, independent of the package's Tarjan implementation."""
    successors: dict[str, set[str]] = {vertex: set() for vertex in vertices}
    for up, down in edges:
        successors.setdefault(up, set()).add(down)
        successors.setdefault(down, set())
    state: dict[str, int] = dict.fromkeys(successors, 0)  # 0 new, 1 on path, 2 done

    def visit(vertex: str) -> bool:
        state[vertex] = 1
        for child in successors[vertex]:
            if state[child] == 1 or (state[child] == 0 and visit(child)):
                return True
        state[vertex] = 2
        return False

    return any(state[vertex] == 0 and visit(vertex) for vertex in successors)


def ancestors(edges: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """Vertex -> every vertex with a path to it (for acyclic graphs)."""
    parents: dict[str, set[str]] = {}
    for up, down in edges:
        parents.setdefault(down, set()).add(up)
        parents.setdefault(up, set())
    found: dict[str, set[str]] = {}

    def collect(vertex: str) -> set[str]:
        if vertex not in found:
            found[vertex] = set()
            for parent in parents.get(vertex, ()):
                found[vertex] |= {parent, *collect(parent)}
        return found[vertex]

    for vertex in parents:
        collect(vertex)
    return found


# --- run prefixes under a root (runs list/gc, finalize) ------------------------------------


@pytest.fixture(params=["file", "gs"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A root URL for run prefixes: a local folder, then a fresh folder of the emulator bucket."""
    if request.param == "file":
        return (tmp_path / "root").as_uri()
    request.getfixturevalue("gcs_emulator")
    from _gcs_emulator import BUCKET

    return f"gs://{BUCKET}/root-{uuid.uuid4().hex[:8]}"
