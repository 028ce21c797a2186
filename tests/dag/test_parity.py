"""kedro-airflow parity: `--group-by` is refused with what to use, `--tags` reaches the pods'
boundaries, `--conf-source` and `-e` reach the pod command (real `kedro airflow create`,
a real DagBag and a real replay)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import KEDRO, RUN_ID, TEMPLATE, Job, kedro_env, make_project

from kedro_gcs_bridge.dag.replay import load_dag_tasks
from kedro_gcs_bridge.planning.naming import run_segment
from kedro_gcs_bridge.pod.context import KEDRO_ENV_ENV, TAGS_ENV
from kedro_gcs_bridge.pod.store import HandoffStore

TAGS = "airflow.companies,airflow.shuttles,airflow.split"


def _kedro(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KEDRO), *args],
        cwd=project,
        env=kedro_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _create(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _kedro(project, "airflow", "create", "-j", str(TEMPLATE), "-t", "dags", *args)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("parity"), "spaceflights", Job(()))


@pytest.mark.parametrize("group_by", ["memory", "namespace"])
def test_group_by_is_refused_with_what_to_use(project: Path, group_by: str) -> None:
    result = _create(project, "--group-by", group_by)
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2, out
    assert f"`--group-by {group_by}` is kedro-airflow's grouping for its own template" in out
    assert "Drop `--group-by` and use `groups:` in conf/base/airflow.yml" in out
    if group_by == "namespace":
        assert '`groups: {<ns>: ["namespace:<ns>"]}`' in out
    assert not (project / "dags").exists()


def test_an_absolute_conf_source_is_refused(project: Path) -> None:
    result = _create(project, "--conf-source", str(project / "conf"))
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1, out
    assert "is an absolute path on this machine: pods run the image's copy" in out
    assert not (project / "dags").exists()


@pytest.mark.slow
def test_tags_conf_source_and_env_reach_the_pods(project: Path) -> None:
    """`--tags`: the pods cut boundaries from the filtered pipeline, so `split` hands nothing
    to the excluded training nodes. `--conf-source conf_alt -e staging`: the pods read that
    folder (the project's `conf/` is gone before the replay)."""
    shutil.copytree(project / "conf", project / "conf_alt")
    for conf in ("conf", "conf_alt"):
        (project / conf / "staging").mkdir()
    # The example keeps its data on local disk, which the GKE DAG refuses by default.
    args = ("--tags", TAGS, "--conf-source", "conf_alt", "-e", "staging")
    args += ("--params", "local_disk=warn")
    created = _create(project, *args)
    assert created.returncode == 0, created.stderr[-3000:]
    dag = project / "dags" / "spaceflights_staging_dag.py"
    text = dag.read_text("utf-8")
    assert f"--tags {TAGS} --conf-source conf_alt" in text  # the regenerate line
    root = (project / "runs").as_uri()
    dag_id, prefix, tasks = load_dag_tasks(dag, RUN_ID, root)
    assert dag_id == "spaceflights__default__staging"
    assert [task.task_id for task in tasks] == ["companies", "shuttles", "split"]
    for task in tasks:
        command = " ".join(task.command)
        assert "--env staging" in command and "--conf-source conf_alt" in command
        assert task.env[TAGS_ENV] == TAGS and task.env[KEDRO_ENV_ENV] == "staging"

    shutil.rmtree(project / "conf")
    replayed = _kedro(
        project, "gcs-bridge", "replay", str(dag), "--run-id", RUN_ID, "--prefix", root
    )
    assert replayed.returncode == 0, replayed.stdout[-3000:] + replayed.stderr[-3000:]
    assert prefix == f"{root}/{dag_id}/{run_segment(RUN_ID)}"
    saved = {m.task: set(m.datasets) for m in HandoffStore(prefix, task="x").manifests()}
    # The whole registered pipeline would make X_train, ... boundaries of `split`.
    assert saved["split"] == set()
    assert saved["companies"] == {"preprocessed_companies"}
