"""Issue 22 item 4, the stated provider range: DAGs generated here (the newest set, this venv)
import and build every pod in a venv of the OLDEST supported set too
(constraints/airflow-oldest.txt: Airflow 3.1.0, cncf-kubernetes 10.8.2, google 18.0.0).

The old venv is built once with uv and cached under ~/.cache/kedro-gcs-bridge/venvs/, in a
folder named by the hash of the constraints file and the Python version: a changed pin builds
a new one. `make test-providers` runs this module alone.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from _kedro_jobs import CREATE, LOCAL_DISK_WARN, REPO, WARN, Job, run_jobs

from kedro_gcs_bridge.dag import providers
from kedro_gcs_bridge.dag.pod_spec import LOGGING_INTERVAL_SECONDS

pytestmark = [pytest.mark.slow, pytest.mark.providers]

OLDEST = REPO / "constraints" / "airflow-oldest.txt"
NEWEST = REPO / "constraints" / "airflow-newest.txt"
CACHE = Path(os.environ.get("KEDRO_GCS_BRIDGE_CACHE", Path.home() / ".cache" / "kedro-gcs-bridge"))
#: What a DAG's operators must hold, read in each venv (None where the operator lacks it).
OPTIONS = (
    "deferrable",
    "logging_interval",
    "use_dns_endpoint",
    "use_internal_ip",
    "durable",
    "termination_message_policy",
)
#: The example as it is, and the same with the lifecycle knobs of issue 22 item 5.
JOBS = {
    "example": Job((*CREATE, "dags", *WARN)),
    "lifecycle": Job(
        (
            *CREATE,
            "dags",
            "--params",
            "pod.deferrable=true,default_args.execution_timeout=30,handoff.cleanup=on_success,"
            "pod.use_internal_ip=true," + LOCAL_DISK_WARN,
        )
    ),
}
#: Kubernetes minors the pods are validated against (GKE's channels: the oldest and newest).
SCHEMA_VERSIONS = ("1.31", "1.37")

#: Run in each venv: loads each DAG folder with a real DagBag, renders every pod task's
#: templates for a manual run and builds its pod (dry run: no cluster, no connection).
PROBE = """
import inspect, json, sys, warnings
from importlib.metadata import version
from types import SimpleNamespace
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow < 3.3
    from airflow.models.dagbag import DagBag
from kubernetes.client import ApiClient

RUN_ID = "manual__2026-11-24T07:11:31.230999+00:00"
result = {"versions": {d: version(d) for d in sys.argv[2].split(",")}, "dags": {}}
for folder in sys.argv[3:]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=folder)
    if bag.import_errors:
        errors = {str(path): error for path, error in bag.import_errors.items()}
        result["dags"][folder] = {"import_errors": errors}
        continue
    (dag,) = bag.dags.values()
    tasks = {}
    for task in dag.tasks:
        if not hasattr(task, "build_pod_request_obj"):
            continue
        context = {"dag": dag, "run_id": RUN_ID, "ti": SimpleNamespace(try_number=1),
                   "params": dag.params.dump()}
        task.render_template_fields(context)
        # dry_run skips the cluster connection; older providers ask their hook only for the
        # in-cluster label, so a stand-in hook answers that (GKE's would call GCP first)
        dry = "dry_run" in inspect.signature(task.build_pod_request_obj).parameters
        if not dry:
            task.__dict__["hook"] = SimpleNamespace(is_in_cluster=False)
        pod = task.build_pod_request_obj(**({"dry_run": True} if dry else {}))
        options = {name: getattr(task, name, None) for name in sys.argv[1].split(",")}
        tasks[task.task_id] = {"pod": ApiClient().sanitize_for_serialization(pod),
                               "options": options}
    messages = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    result["dags"][folder] = {"dag_id": dag.dag_id, "tasks": tasks, "warnings": messages}
print(json.dumps(result, default=str))
"""


def _pins(path: Path) -> dict[str, str]:
    """name -> version of a constraints file's `name==version` lines."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;#]+)", line)
        if match:
            pins[match[1].lower()] = match[2]
    return pins


def _uv() -> str:
    local = Path(sys.executable).parent / "uv"
    found = str(local) if local.exists() else shutil.which("uv")
    if not found:
        pytest.fail("uv is needed to build the oldest provider venv: `pip install uv`")
    return found


def provider_venv(constraints: Path) -> Path:
    """The Python of a venv with exactly `constraints` installed, built once and cached by the
    file's hash (a lock keeps two sessions from building it at the same time)."""
    text = constraints.read_bytes() + sys.version.encode()
    key = hashlib.sha256(text).hexdigest()[:16]
    venv = CACHE / "venvs" / f"{constraints.stem}-{key}"
    python = venv / "bin" / "python"
    done = venv / ".complete"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(venv, ignore_errors=True)
            start = time.perf_counter()
            uv = _uv()
            subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
            install = [uv, "pip", "install", "-q", "--python", str(python), "-r", str(constraints)]
            subprocess.run(install, check=True, timeout=1800)
            done.write_text(f"built in {time.perf_counter() - start:.1f} s\n", encoding="utf-8")
        print(f"{constraints.name}: {venv} ({done.read_text(encoding='utf-8').strip()})")
    return python


def probe(python: Path | str, folders: list[Path], home: Path) -> dict[str, Any]:
    """What the probe saw in one venv: versions, and per DAG folder its pods and options."""
    dists = ",".join(providers.OLDEST)
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    env.pop("PYTHONPATH", None)  # the old venv must not see this venv's packages
    done = subprocess.run(
        [str(python), "-c", PROBE, ",".join(OPTIONS), dists, *map(str, folders)],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dag_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example's DAGs, generated here by the real `kedro airflow create` (newest set)."""
    runs = run_jobs(tmp_path_factory.mktemp("providers"), JOBS)
    for run in runs.values():
        assert run.returncode == 0, run.describe()
    return {name: run.dag_dir() for name, run in runs.items()}


@pytest.fixture(scope="module")
def seen(
    dag_folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """'oldest' / 'newest' -> what the probe saw in that venv."""
    pythons = {"oldest": provider_venv(OLDEST), "newest": sys.executable}
    return {
        side: probe(python, list(dag_folders.values()), tmp_path_factory.mktemp(f"home-{side}"))
        for side, python in pythons.items()
    }


def dags(seen: dict[str, Any], folders: dict[str, Path]) -> dict[str, dict[str, Any]]:
    return {name: seen["dags"][str(folder)] for name, folder in folders.items()}


class TestTheRange:
    def test_the_old_venv_is_the_oldest_set(self, seen: dict[str, Any]) -> None:
        pins = _pins(OLDEST)
        assert seen["oldest"]["versions"] == {dist: pins[dist] for dist in providers.OLDEST}
        assert seen["oldest"]["versions"] == dict(providers.OLDEST)

    def test_this_venv_is_the_newest_set(self) -> None:
        pins, installed = _pins(NEWEST), {dist: version(dist) for dist in providers.NEWEST}
        assert installed == {dist: pins[dist] for dist in providers.NEWEST}
        assert installed == dict(providers.NEWEST)

    def test_the_newest_file_agrees_with_make_installs_constraints(self) -> None:
        newest, project = _pins(NEWEST), _pins(REPO / "constraints.txt")
        assert {name: project[name] for name in newest if name in project} == {
            name: newest[name] for name in newest if name in project
        }


@pytest.mark.parametrize("side", ["oldest", "newest"])
class TestEverySide:
    def test_every_dag_imports_and_builds_every_pod(
        self, side: str, seen: dict[str, Any], dag_folders: dict[str, Path]
    ) -> None:
        for name, dag in dags(seen[side], dag_folders).items():
            assert "import_errors" not in dag, (name, dag)
            assert len(dag["tasks"]) >= 4, name  # the example's groups and finalize
            for pod in (task["pod"] for task in dag["tasks"].values()):
                assert pod["spec"]["containers"][0]["image"].endswith("spaceflights:0.1.0")

    def test_the_lifecycle_reaches_the_pods(
        self, side: str, seen: dict[str, Any], dag_folders: dict[str, Path]
    ) -> None:
        for task in dags(seen[side], dag_folders)["lifecycle"]["tasks"].values():
            spec, options = task["pod"]["spec"], task["options"]
            assert spec["activeDeadlineSeconds"] == 1800
            assert spec["containers"][0]["terminationMessagePolicy"] == "FallbackToLogsOnError"
            assert (options["deferrable"], options["use_internal_ip"]) == (True, True)
            assert options["logging_interval"] == LOGGING_INTERVAL_SECONDS
            # An operator that lacks durable has no such attribute: the DAG never passed it.
            assert options["durable"] is (True if side == "newest" else None)

    def test_no_warning_about_an_option_the_dag_passes(
        self, side: str, seen: dict[str, Any], dag_folders: dict[str, Path]
    ) -> None:
        for dag in dags(seen[side], dag_folders).values():
            about = [text for text in dag["warnings"] if re.search(r"durable|reattach", text)]
            assert about == []

    def test_pods_meet_the_kubernetes_schema(
        self, side: str, seen: dict[str, Any], dag_folders: dict[str, Path]
    ) -> None:
        validate = pytest.importorskip("kubernetes_validate")
        for name, dag in dags(seen[side], dag_folders).items():
            for task_id, task in dag["tasks"].items():
                for k8s in SCHEMA_VERSIONS:
                    try:
                        validate.validate(task["pod"], k8s, strict=True)
                    except validate.ValidationError as error:
                        pytest.fail(f"{name}/{task_id} on {k8s}: {error.json_path}: {error}")


def test_both_sides_build_the_same_pods(seen: dict[str, Any], dag_folders: dict[str, Path]) -> None:
    """The provider version changes nothing the bridge asked for: the same containers,
    resources, placement and deadlines (the providers' own labels may differ)."""

    def ours(pod: dict[str, Any]) -> dict[str, Any]:
        spec = {key: value for key, value in pod["spec"].items() if key != "containers"}
        return {"spec": spec, "container": pod["spec"]["containers"][0]}

    old, new = dags(seen["oldest"], dag_folders), dags(seen["newest"], dag_folders)
    for name in dag_folders:
        assert old[name]["tasks"].keys() == new[name]["tasks"].keys()
        for task_id in new[name]["tasks"]:
            pods = (ours(side[name]["tasks"][task_id]["pod"]) for side in (old, new))
            assert next(pods) == next(pods), (name, task_id)
