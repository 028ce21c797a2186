"""Replay: run a generated DAG's tasks on this machine, each as its own process.

The DAG file is loaded with Airflow's own `DagBag`; each task's pod is rendered as Airflow
would render it for a run (`render_template_fields`, then `build_pod_request_obj(dry_run=True)`)
and its container command runs locally, in dependency order, with the run prefix moved to a
local root. This replays what the DAG says; it does not plan again.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kedro_gcs_bridge.errors import ReplayError
from kedro_gcs_bridge.planning.naming import run_segment
from kedro_gcs_bridge.planning.plan import RUN_FAILED_TASK
from kedro_gcs_bridge.pod.context import (
    REPLAY_PARALLEL_ENV,
    REPLAY_WARM_ENV,
    RUN_PREFIX_ENV,
    TASK_START_ENV,
)
from kedro_gcs_bridge.pod.logging_format import logging_env

if TYPE_CHECKING:
    from kedro_gcs_bridge.dag.isolation import TaskDirs
    from kedro_gcs_bridge.dag.warm import WarmStarter
    from kedro_gcs_bridge.pod.protocol import Manifest


@dataclass(frozen=True)
class ReplayTask:
    """One task of the DAG as its pod would run it."""

    task_id: str
    command: tuple[str, ...]
    env: Mapping[str, str]
    upstream: frozenset[str]
    nodes: tuple[str, ...]
    trigger_rule: str = "all_success"


@dataclass
class TaskResult:
    """How one replayed task ended."""

    task_id: str
    state: str  # "success", "failed", "upstream_failed"
    seconds: float = 0.0
    returncode: int | None = None
    log: str = ""
    nodes: tuple[str, ...] = field(default_factory=tuple)
    #: Files the task left in its isolated copy of the project (lost with a pod on GKE).
    left_on_disk: tuple[str, ...] = ()
    #: When the task started (its pod start delay included) and ended, `time.time()` seconds.
    started: float | None = None
    ended: float | None = None
    #: The pod start delay slept before the task's process (part of `seconds`).
    pod_start_s: float = 0.0
    #: Seconds the task was ready (upstream done) but waited for one of `--parallel` slots;
    #: on Autopilot it would have started at once (the cost model assumes so).
    waited_s: float = 0.0
    #: "warm": forked from replay's warm server (dag/warm.py); "cold": a new process.
    start: str = "cold"
    #: Why a `kedro` task started cold ('' otherwise).
    cold_reason: str = ""


def kedro_start_seconds(
    results: Sequence[TaskResult], manifests: Mapping[str, Manifest]
) -> float | None:
    """The median of what each successful task spent outside its nodes and its pod start
    delay (`kedro run` start, handoff, exit): the model's `kedro_start_s` for this machine.
    None when no task has a manifest with node timings."""
    timed = {task: m.node_seconds for task, m in manifests.items() if m.node_seconds}
    spent = [
        r.seconds - r.pod_start_s - sum(timed[r.task_id].values())
        for r in results
        if r.state == "success" and r.task_id in timed
    ]
    return statistics.median(spent) if spent else None


def slot_waits(results: Sequence[TaskResult]) -> tuple[int, float]:
    """How many tasks waited for a free `--parallel` slot, and their seconds of waiting (more
    than 0.5 s counts: a replay that waited is slower than the model's unbounded parallelism)."""
    waited = [r.waited_s for r in results if r.waited_s > 0.5]
    return len(waited), sum(waited)


def makespan(results: Sequence[TaskResult]) -> float:
    """Wall seconds from the first task's start to the last task's end (0 with none run)."""
    ran = [r for r in results if r.started is not None and r.ended is not None]
    if not ran:
        return 0.0
    return max(r.ended or 0.0 for r in ran) - min(r.started or 0.0 for r in ran)


def left_on_disk_summary(results: Sequence[TaskResult]) -> str:
    """One line naming the files tasks left in their own copies of the project (lost with a
    pod on GKE), each with the tasks that left it (`all N tasks` when every task that ran
    did, like a project's own `info.log`); '' when none did."""
    by_file: dict[str, list[str]] = {}
    for result in results:
        for path in result.left_on_disk:
            by_file.setdefault(path, []).append(result.task_id)
    if not by_file:
        return ""
    ran = sum(result.started is not None or result.returncode is not None for result in results)
    ran = max(ran, len({task for tasks in by_file.values() for task in tasks}))
    named = [
        f"{path} (all {ran} tasks)" if len(tasks) == ran > 1 else f"{path} ({', '.join(tasks)})"
        for path, tasks in sorted(by_file.items(), key=lambda item: -len(item[1]))
    ]
    return f"left on the tasks' own disks (lost with a pod on GKE): {', '.join(named)}"


class _TryNumber:
    try_number = 1


def _nodes_of(arguments: Sequence[str]) -> tuple[str, ...]:
    args = list(arguments)
    if "--nodes" in args and args.index("--nodes") + 1 < len(args):
        return tuple(args[args.index("--nodes") + 1].split(","))
    return ()


def load_dag_tasks(
    dag_file: Path, run_id: str, local_root: str
) -> tuple[str, str, list[ReplayTask]]:
    """Reads a DAG file the way Airflow does and renders every task's pod for one run.

    Args:
        dag_file: The generated DAG file.
        run_id: The Airflow run id to render (`{{ run_id }}`).
        local_root: Local root that replaces the DAG's GCS root in the run prefix.

    Returns:
        (dag_id, local run prefix, tasks in the DAG's topological order).

    Raises:
        ReplayError: The file does not import, holds no DAG or has no pod tasks.
    """
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dag_file))
    if bag.import_errors:
        errors = "\n".join(str(error) for error in bag.import_errors.values())
        raise ReplayError(f"{dag_file} does not import in Airflow:\n{errors}")
    if len(bag.dags) != 1:
        raise ReplayError(f"{dag_file} holds {len(bag.dags)} DAGs; replay takes a file with one.")
    dag = next(iter(bag.dags.values()))
    prefix = f"{local_root.rstrip('/')}/{dag.dag_id}/{run_segment(run_id)}"
    # A replay has no trigger form: the DAG's params are their defaults.
    context: dict[str, Any] = {
        "dag": dag,
        "run_id": run_id,
        "ti": _TryNumber(),
        "params": dag.params.dump(),
    }
    tasks = []
    for task in dag.topological_sort():
        if not hasattr(task, "build_pod_request_obj"):
            if task.task_id.startswith(RUN_FAILED_TASK):
                continue  # Airflow's verdict on the run: replay reports each task's own
            raise ReplayError(
                f"task {task.task_id} is a {type(task).__name__}, not a pod task: replay runs "
                "the GKE DAG's pods. Replay the file `kedro airflow create -j "
                "templates/gcs_bridge.j2` writes without `pod_backend: local`; run a local DAG "
                "with `airflow dags test <dag_id>`."
            )
        task.render_template_fields(context)
        pod = task.build_pod_request_obj(dry_run=True)
        container = pod.spec.containers[0]
        env = {item.name: item.value for item in container.env or []}
        env[RUN_PREFIX_ENV] = prefix
        command = tuple((container.command or []) + (container.args or []))
        tasks.append(
            ReplayTask(
                task_id=task.task_id,
                command=command,
                env=env,
                upstream=frozenset(task.upstream_task_ids),
                nodes=_nodes_of(container.args or []),
                trigger_rule=str(getattr(task.trigger_rule, "value", task.trigger_rule)),
            )
        )
    return dag.dag_id, prefix, tasks


def default_run_id() -> str:
    """A manual run id like Airflow's (`manual__<timestamp>`)."""
    return f"manual__{dt.datetime.now(dt.UTC).isoformat()}"


def _executable(command: Sequence[str]) -> list[str]:
    """The command with `kedro` taken from this environment (the image has it on PATH)."""
    first = command[0]
    local = Path(sys.executable).parent / first
    return [str(local) if local.exists() else first, *command[1:]]


def run_task(
    task: ReplayTask,
    cwd: Path,
    extra_env: Mapping[str, str] | None,
    sandbox: TaskDirs | None = None,
    pod_start_delay: float = 0.0,
    warm: WarmStarter | None = None,
) -> TaskResult:
    """Runs one task's container command as its own process (in its own copy of the project,
    HOME and temp dir with a `sandbox`, see dag/isolation.py), after sleeping
    `pod_start_delay` seconds as a pod start would: forked from the `warm` server when it can
    start there (dag/warm.py), else a new process."""
    wall = time.time()
    # The task's start as Airflow would render it: the runner measures its pod start from it.
    start = {TASK_START_ENV: dt.datetime.fromtimestamp(wall, dt.UTC).isoformat()}
    env = {**os.environ, **task.env, **start, **(extra_env or {})}
    started = time.perf_counter()
    if pod_start_delay > 0:
        time.sleep(pod_start_delay)
    if sandbox is not None:
        cwd, own = sandbox.enter(task.task_id)
        env |= own
    env |= logging_env(cwd, env)  # one line per record, as the image logs
    cold_reason = warm.cold_reason(task.command, env) if warm is not None else ""
    if warm is not None and not cold_reason:
        returncode, log = warm.run(_executable(task.command), cwd, env | {REPLAY_WARM_ENV: "1"})
    else:
        completed = subprocess.run(
            _executable(task.command),
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        returncode, log = completed.returncode, completed.stdout + completed.stderr
    seconds = time.perf_counter() - started
    return TaskResult(
        task.task_id,
        "success" if returncode == 0 else "failed",
        seconds,
        returncode,
        log,
        task.nodes,
        sandbox.left_on_disk(task.task_id) if sandbox is not None else (),
        wall,
        wall + seconds,
        pod_start_delay,
        start="cold" if warm is None or cold_reason else "warm",
        cold_reason=cold_reason,
    )


def warm_env(
    project: Path, shared: Mapping[str, str], extra_env: Mapping[str, str] | None
) -> dict[str, str]:
    """The environment of replay's warm server: what every task's environment holds (this
    process's, the variables all tasks share, `extra_env`, the pod logging config)."""
    env = {**os.environ, **shared, **(extra_env or {})}
    return env | logging_env(project, env)


def warm_starter(
    tasks: Sequence[ReplayTask],
    project: Path,
    extra_env: Mapping[str, str] | None,
    isolated: bool,
    started: WarmStarter | None = None,
) -> WarmStarter | None:
    """The warm server for these tasks: `started` (one started before the tasks were known)
    when it has the environment every task shares, else a new one; None when no task's
    command is `kedro`."""
    from kedro_gcs_bridge.dag.warm import WarmStarter, is_remote, is_warm_command, shared_env

    warm = [task for task in tasks if is_warm_command(task.command)]
    env = warm_env(project, shared_env([task.env for task in warm]), extra_env)
    remote = any(is_remote(task.env.get(RUN_PREFIX_ENV, "")) for task in warm)
    if started is not None and (not warm or started.differs(env) or remote > started.remote):
        started.close()
        started = None
    if not warm:
        return None
    return started or WarmStarter(project, env, own_dirs=isolated, remote=remote)


def replay(
    tasks: Sequence[ReplayTask],
    cwd: Path,
    parallel: int = 1,
    extra_env: Mapping[str, str] | None = None,
    on_result: Callable[[TaskResult], None] | None = None,
    only: set[str] | None = None,
    sandbox: TaskDirs | None = None,
    pod_start_delay: float = 0.0,
    warm_start: bool | WarmStarter = True,
) -> list[TaskResult]:
    """Runs tasks in dependency order, up to `parallel` at once; a failure skips downstream.

    Args:
        tasks: Tasks from `load_dag_tasks`.
        cwd: The Kedro project folder (the image's working directory).
        parallel: How many independent tasks may run at once.
        extra_env: Environment added to every task (emulator host, tracking URI, ...).
        on_result: Called as each task ends (progress display).
        only: Run just these task ids (their upstream outputs must already be under the
            prefix: the re-run of a cleared task).
        sandbox: Run each task in its own fresh copy of the project (dag/isolation.py)
            instead of in `cwd`.
        pod_start_delay: Seconds each task sleeps before its process starts, as a pod start
            would (counted in its seconds and in the makespan).
        warm_start: Fork each `kedro` task from a server that has imported what it imports
            (dag/warm.py), or from this one, started earlier (used if it has the environment
            the tasks share, and closed at the end); False starts each as a new process
            (slower; for a project whose imports are not safe to fork).

    Returns:
        One result per task, in the order they ended.
    """
    by_id = {task.task_id: task for task in tasks}
    selected = set(by_id) if only is None else set(only)
    # Each manifest records how many tasks ran at once (suggest weighs its pod start by it).
    extra_env = {REPLAY_PARALLEL_ENV: str(max(1, parallel)), **(extra_env or {})}
    done: dict[str, TaskResult] = {}
    running: dict[Future[TaskResult], str] = {}
    results: list[TaskResult] = []
    ready_at: dict[str, float] = {}
    chosen = [task for task in tasks if task.task_id in selected]
    started = None if isinstance(warm_start, bool) else warm_start
    warm = (
        warm_starter(chosen, cwd, extra_env, sandbox is not None, started) if warm_start else None
    )

    def finish(result: TaskResult) -> None:
        done[result.task_id] = result
        results.append(result)
        if on_result is not None:
            on_result(result)

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool, _closing(warm):
        while len(done) < len(selected):
            started = set(running.values())
            for task in tasks:
                if task.task_id not in selected or task.task_id in done or task.task_id in started:
                    continue
                upstream = task.upstream & selected
                waits_for_success = task.trigger_rule != "all_done"
                failed_upstream = any(up in done and done[up].state != "success" for up in upstream)
                if waits_for_success and failed_upstream:
                    finish(TaskResult(task.task_id, "upstream_failed", nodes=task.nodes))
                    continue
                if not all(up in done for up in upstream):
                    continue
                ready_at.setdefault(task.task_id, time.time())
                if len(running) < max(1, parallel):
                    future = pool.submit(
                        run_task, task, cwd, extra_env, sandbox, pod_start_delay, warm
                    )
                    running[future] = task.task_id
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                result = future.result()
                running.pop(future)
                if result.started is not None:
                    result.waited_s = max(result.started - ready_at[result.task_id], 0.0)
                finish(result)
    return results


@contextmanager
def _closing(warm: WarmStarter | None) -> Iterator[None]:
    try:
        yield
    finally:
        if warm is not None:
            warm.close()
