"""Copies of the example project and the `kedro` commands the tests run in them, as real
processes: every job in its own copy, several at a time (conftest.py's session fixtures run
`CREATE_JOBS` and `CLI_JOBS` once; other modules call `run_jobs` for their own).

Real processes on purpose: each copy's edits may change the project's own code (pipelines,
settings), which Kedro imports as the package `spaceflights`; one process per copy keeps one
copy's modules from answering for another's. A batch of three or more starts warm: each
process forked from one server that has imported Kedro and the example's third-party imports,
never the project's own package (tests/_processes.py; `KEDRO_GCS_BRIDGE_TEST_COLD=1`: cold).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml
from _processes import run_in, warm_server

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
    #: Run through Click's CliRunner in this process instead of a `kedro` process: only for
    #: commands that import none of the project's code (`gcs-bridge init`).
    in_process: bool = False


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


def kedro_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every `kedro` subprocess (`environ`, default this process's): no
    telemetry, wide lines for Rich.

    (`make install` compiles the venv's bytecode, so the processes start in ~1.5 s even where
    PYTHONDONTWRITEBYTECODE is set.)
    """
    env = dict(os.environ if environ is None else environ)
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


def run_jobs(
    root: Path, jobs: Mapping[str, Job], environ: Mapping[str, str] | None = None
) -> dict[str, KedroRun]:
    """Runs every job in its own project copy: processes several at a time (in `environ`,
    default this process's environment as it is now), then the `in_process` jobs in this
    thread (Click's CliRunner swaps sys.stdout while it runs)."""
    projects = {name: make_project(root, name, job) for name, job in jobs.items()}
    base = kedro_env(environ)
    names = [name for name, job in jobs.items() if not job.in_process]
    warm_in = projects[names[0]] if names else root
    with warm_server(warm_in, base, sum(not jobs[n].env for n in names)) as warm:

        def run(name: str) -> KedroRun:
            job, project = jobs[name], projects[name]
            before = _snapshot(project / job.seed_dag_dir) if job.seed_dag_dir else {}
            env = {**base, **dict(job.env)}
            done = run_in(env, [str(KEDRO), *job.args], project, 600, warm)
            return KedroRun(job, project, done.returncode, done.stdout, done.stderr, before)

        workers = max(2, os.cpu_count() or 2)
        # Named after the calling thread, so that prefetched work stays recognisable.
        prefix = f"{threading.current_thread().name}-jobs"
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=prefix) as pool:
            done = dict(zip(names, pool.map(run, names), strict=True))
    in_process = {name: job for name, job in jobs.items() if job.in_process}
    return done | {name: run_in_process(job, projects[name]) for name, job in in_process.items()}


def run_in_process(job: Job, project: Path) -> KedroRun:
    """A `kedro` project command of the bridge through Click's CliRunner, as `kedro` runs it:
    the command group of the package's `kedro.project_commands` entry point, the project's
    metadata (read from its pyproject.toml) as the context object."""
    from click.testing import CliRunner
    from kedro.framework.startup import _get_project_metadata

    (entry,) = entry_points(group="kedro.project_commands", name="gcs_bridge")
    done = CliRunner().invoke(entry.load(), list(job.args), obj=_get_project_metadata(project))
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return KedroRun(job, project, done.exit_code, done.stdout, done.stderr)


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
