"""Replay's warm start (dag/warm.py): each `kedro run` task is a child forked from one server
that has imported Kedro and the project's imports, still isolated like a pod: its own process,
working folder (its copy of the project) and environment, nothing in memory from another task,
and a crash or a kill reported as a failure with its log."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from kedro_gcs_bridge.dag.isolation import task_dirs
from kedro_gcs_bridge.dag.replay import ReplayTask, TaskResult
from kedro_gcs_bridge.dag.replay import replay as replay_tasks
from kedro_gcs_bridge.dag.warm import WarmStarter, is_warm_command, shared_env
from kedro_gcs_bridge.dag.warm_server import BASE_MODULES, preload_names

PACKAGE = "warmprobe"

_NODES = '''
"""Nodes that report what their process sees, set state, fail or crash."""

import json
import os
import signal
import sys
import tempfile
import time

import email.mime.text  # a module only the project imports: preloaded by the server

#: In-memory state a task sets; another task must never see it.
STATE: list[str] = []


def _never_called() -> None:
    import tabnanny  # a lazy import: not in a task's sys.modules unless this runs


def report() -> str:
    task = os.environ["KEDRO_GCS_BRIDGE_TASK"]
    seen = list(STATE)
    STATE.append(task)
    leaked = getattr(email.mime.text, "_probe_task", None)
    email.mime.text._probe_task = task
    out = {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "tmp": tempfile.gettempdir(),
        "nodes_file": sys.modules[__name__].__file__,
        "state_before": seen,
        "leaked": leaked,
        "main": getattr(sys.modules["__main__"], "__file__", None),
        "lazy_imported": "tabnanny" in sys.modules,
    }
    with open(os.environ["PROBE_OUT"] + f".{task}.json", "w", encoding="utf-8") as file:
        json.dump(out, file)
    print(f"report ran in {task}", flush=True)
    return task


def fail() -> str:
    raise ValueError("probe failure, as a node raises it")


def exit_hard() -> str:
    print("about to os._exit", flush=True)
    os._exit(3)
    return "never"


def sleep_long() -> str:
    with open(os.environ["PROBE_OUT"] + ".pid", "w", encoding="utf-8") as file:
        file.write(str(os.getpid()))
    time.sleep(600)
    return "never"


def kill_self() -> str:
    print("about to be killed", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    return "never"
'''

_REGISTRY = """
from kedro.pipeline import Pipeline, node

from warmprobe import nodes


def register_pipelines():
    made = [node(getattr(nodes, name), None, f"{name}_done", name=name)
            for name in ("report", "fail", "exit_hard", "kill_self", "sleep_long")]
    return {"__default__": Pipeline(made)}
"""


@pytest.fixture(scope="module")
def probe_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minimal Kedro project whose nodes report their process, fail or crash."""
    project = tmp_path_factory.mktemp("warm") / "probe"
    source = project / "src" / PACKAGE
    source.mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [tool.kedro]
            package_name = "{PACKAGE}"
            project_name = "{PACKAGE}"
            kedro_init_version = "1.0.0"
            source_dir = "src"
            """
        ),
        encoding="utf-8",
    )
    (source / "__init__.py").write_text("", encoding="utf-8")
    (source / "settings.py").write_text("", encoding="utf-8")
    (source / "nodes.py").write_text(_NODES, encoding="utf-8")
    (source / "pipeline_registry.py").write_text(_REGISTRY, encoding="utf-8")
    for env in ("base", "local"):
        (project / "conf" / env).mkdir(parents=True)
    (project / "conf" / "base" / "catalog.yml").write_text("{}\n", encoding="utf-8")
    return project


def _task(
    name: str, node: str, out: Path, upstream: tuple[str, ...] = (), **env: str
) -> ReplayTask:
    own = {"KEDRO_GCS_BRIDGE_TASK": name, "PROBE_OUT": str(out), **env}
    command = ("kedro", "run", "--nodes", node)
    return ReplayTask(name, command, own, frozenset(upstream), (node,))


def _report(out: Path, task: str) -> dict[str, object]:
    return json.loads(Path(f"{out}.{task}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def replayed(
    probe_project: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, TaskResult], Path, Path]:
    """One replay of the probe's tasks, each isolated in its own copy of the project."""
    out = tmp_path_factory.mktemp("out") / "report"
    root = tmp_path_factory.mktemp("dirs")
    tasks = [
        _task("first", "report", out),
        _task("second", "report", out, ("first",)),
        _task("failing", "fail", out),
        _task("after_failing", "report", out, ("failing",)),
        _task("exiting", "exit_hard", out),
        _task("after_exiting", "report", out, ("exiting",)),
        _task("killed", "kill_self", out),
        _task("own_variable", "report", out, PROBE_EXTRA="only here"),
    ]
    sandbox = task_dirs(probe_project, (root / "runs").as_uri(), root / "tasks")
    results = replay_tasks(tasks, probe_project, parallel=2, sandbox=sandbox)
    return {result.task_id: result for result in results}, out, root / "tasks"


@pytest.mark.slow
class TestWarmStart:
    def test_kedro_tasks_are_forked_from_the_warm_server(
        self, replayed: tuple[dict[str, TaskResult], Path, Path]
    ) -> None:
        results, out, _ = replayed
        assert results["first"].state == "success", results["first"].log[-3000:]
        assert results["first"].start == "warm"
        first, second = _report(out, "first"), _report(out, "second")
        # Each task its own process, both children of the same server (not of replay).
        assert first["pid"] != second["pid"]
        assert first["ppid"] == second["ppid"] != os.getpid()
        # The process looks like `kedro`'s own, not like the server's.
        assert str(first["main"]).endswith("kedro")
        assert first["lazy_imported"] is False  # the server imports no function's imports
        assert "report ran in first" in results["first"].log

    def test_each_task_has_its_own_folder_and_environment(
        self, replayed: tuple[dict[str, TaskResult], Path, Path]
    ) -> None:
        _, out, dirs = replayed
        for task in ("first", "second"):
            seen = _report(out, task)
            own = dirs / task
            assert seen["cwd"] == str(own / "project")
            env = seen["env"]
            assert isinstance(env, dict)
            assert env["KEDRO_GCS_BRIDGE_TASK"] == task
            assert env["HOME"] == str(own / "home")
            assert env["TMPDIR"] == str(own / "tmp") == seen["tmp"]
            assert env["PWD"] == str(own / "project")
            assert "PROBE_EXTRA" not in env  # another task's variable
            # The project's code is imported from the task's own copy.
            assert seen["nodes_file"] == str(own / "project" / "src" / PACKAGE / "nodes.py")

    def test_a_task_never_sees_another_tasks_memory(
        self, replayed: tuple[dict[str, TaskResult], Path, Path]
    ) -> None:
        _, out, _ = replayed
        second = _report(out, "second")  # ran after first, which set both
        assert second["state_before"] == []
        assert second["leaked"] is None

    def test_a_task_with_a_variable_of_its_own_starts_cold(
        self, replayed: tuple[dict[str, TaskResult], Path, Path]
    ) -> None:
        """A variable the server was not started with could change what an import does."""
        results, out, _ = replayed
        result = results["own_variable"]
        assert result.state == "success", result.log[-3000:]
        assert result.start == "cold"
        assert "PROBE_EXTRA" in result.cold_reason
        assert _report(out, "own_variable")["env"]["PROBE_EXTRA"] == "only here"  # type: ignore[index]

    def test_cold_start_runs_each_task_as_a_new_process(
        self, probe_project: Path, tmp_path: Path
    ) -> None:
        out = tmp_path / "report"
        sandbox = task_dirs(probe_project, (tmp_path / "runs").as_uri(), tmp_path / "tasks")
        tasks = [_task("alone", "report", out)]
        (result,) = replay_tasks(tasks, probe_project, sandbox=sandbox, warm_start=False)
        assert result.state == "success", result.log[-3000:]
        assert (result.start, result.cold_reason) == ("cold", "")
        assert _report(out, "alone")["ppid"] == os.getpid()  # started by replay itself

    @pytest.mark.parametrize(
        ("task", "returncode", "said"),
        [
            pytest.param("failing", 1, "probe failure, as a node raises it", id="exception"),
            pytest.param("exiting", 3, "about to os._exit", id="os-exit"),
            pytest.param("killed", -9, "about to be killed", id="kill-9"),
        ],
    )
    def test_a_failed_or_crashed_task_fails_with_its_log_and_skips_downstream(
        self,
        replayed: tuple[dict[str, TaskResult], Path, Path],
        task: str,
        returncode: int,
        said: str,
    ) -> None:
        results, _, _ = replayed
        result = results[task]
        assert result.start == "warm"
        assert result.state == "failed"
        assert result.returncode == returncode
        assert said in result.log
        for downstream in (f"after_{task}",):
            if downstream in results:
                assert results[downstream].state == "upstream_failed"


class TestWhatTheServerImports:
    def test_the_projects_imports_but_never_its_own_package(self, tmp_path: Path) -> None:
        source = tmp_path / "src" / "proj"
        (source / "pipelines").mkdir(parents=True)
        (tmp_path / "pyproject.toml").write_text("[tool.kedro]\nsource_dir = 'src'\n")
        (source / "__init__.py").write_text("")
        (source / "pipelines" / "nodes.py").write_text(
            textwrap.dedent(
                """
                from typing import TYPE_CHECKING
                import numpy as np
                from sklearn.metrics import r2_score
                from . import other
                from proj.pipelines import x
                import proj
                try:
                    import polars
                except ImportError:
                    import csv
                if TYPE_CHECKING:
                    import typing_only
                class Kind:
                    import enum


                def f():
                    import mlflow  # lazy: only when the node runs
                """
            )
        )
        names = preload_names(tmp_path)
        assert names[: len(BASE_MODULES)] == list(BASE_MODULES)
        project = ["csv", "enum", "numpy", "polars", "sklearn.metrics", "typing"]
        assert names[len(BASE_MODULES) :] == project

    def test_a_project_without_sources_gets_the_base_modules(self, tmp_path: Path) -> None:
        assert preload_names(tmp_path) == list(BASE_MODULES)


def test_the_server_env_is_what_every_task_shares() -> None:
    envs = [{"A": "1", "B": "2", "T": "x"}, {"A": "1", "B": "3", "T": "y"}, {"A": "1"}]
    assert shared_env(envs) == {"A": "1"}
    assert shared_env([]) == {}


@pytest.mark.parametrize(
    ("command", "warm"),
    [
        (("kedro", "run"), True),
        (("/venv/bin/kedro", "run"), True),
        (("python", "-c", "pass"), False),
        ((), False),
    ],
)
def test_only_kedro_commands_start_warm(command: tuple[str, ...], warm: bool) -> None:
    assert is_warm_command(command) is warm


@pytest.mark.slow
def test_a_command_run_captured_keeps_its_streams_apart_and_is_killed_at_its_timeout(
    probe_project: Path, tmp_path: Path
) -> None:
    """`run_captured` (what the tests' own `kedro` commands use, tests/_processes.py): stdout
    and stderr as `subprocess.run` gives them, and a command past its timeout is killed."""
    out = tmp_path / "report"
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "PROBE_OUT": str(out)}
    env["KEDRO_GCS_BRIDGE_TASK"] = "captured"
    warm = WarmStarter(probe_project, env, own_dirs=False)
    try:
        assert warm.cold_reason(("kedro", "run"), env) == ""
        code, stdout, stderr = warm.run_captured(("kedro", "nosuch"), probe_project, env)
        assert code == 2 and "No such command" in stderr and "No such command" not in stdout
        with pytest.raises(subprocess.TimeoutExpired):
            warm.run_captured(("kedro", "run", "--nodes", "sleep_long"), probe_project, env, 20)
        pid = int(Path(f"{out}.pid").read_text(encoding="utf-8"))
        for _ in range(100):  # killed: gone (reaped by the server) within 10 s
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
        assert not Path(f"/proc/{pid}").exists()
        code, stdout, _ = warm.run_captured(
            ("kedro", "run", "--nodes", "report"), probe_project, env
        )
        assert code == 0 and "report ran in captured" in stdout  # the server still serves
    finally:
        warm.close()
