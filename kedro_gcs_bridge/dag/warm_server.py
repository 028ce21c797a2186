"""The process behind replay's warm start (dag/warm.py): it imports what a task's `kedro run`
imports, then forks one child per task, and each child runs the task's command in-process.

Run as `python -m kedro_gcs_bridge.dag.warm_server REQUESTS REPLIES PROJECT [--remote]`
(file descriptors of two pipes, the Kedro project folder; `--remote`: the run prefix is on
GCS). It never imports the project's own package: a task imports that from its own copy. What
it imports (`preload_names`): Kedro's CLI, session, config, runners, the bridge's runner and
hooks, the Kedro plugins' entry points, pandas, fsspec, gcsfs with `--remote`
(`REMOTE_MODULES`), the dataset classes the project's catalogs name and the modules the
project's source files import at their top level. Requests and replies are JSON lines:
`{"id", "argv", "cwd", "env", "stdout", "stderr"}` in, `{"id", "pid"}` then
`{"id", "returncode"}` out (negative: the signal that ended it); `{"kill": id}` kills a
child. The server is single threaded (forking is safe) and ends its children when the
requests pipe closes.

A child is the task's own process, as a pod's command is (in replay's process group, as a
cold task's is, so a Ctrl-C reaches it): its own working folder and environment (exactly the
task's), stdout and stderr to the task's log files, and the state a fresh `kedro` process
would start with (`_fresh_process`).
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import gc
import inspect
import json
import os
import re
import select
import signal
import sys
import threading
import types
from collections.abc import Iterable, Mapping
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

#: What every task's `kedro run` with the bridge's runner imports.
BASE_MODULES = (
    "kedro.framework.cli",
    "kedro.framework.cli.project",
    "kedro.framework.session",
    "kedro.framework.startup",
    "kedro.config",
    "kedro.io",
    "kedro.runner",
    "kedro.pipeline",
    "kedro_datasets",
    "kedro_gcs_bridge.cli",
    "kedro_gcs_bridge.hooks",
    "kedro_gcs_bridge.pod.runner",
    "kedro_gcs_bridge.pod.logging_format",
    "pandas",
    "pyarrow.parquet",
    "fsspec",
)
#: What a task imports only when its run prefix is on GCS.
REMOTE_MODULES = ("gcsfs",)
#: The Kedro plugin entry points a `kedro` process loads.
_PLUGIN_GROUPS = ("kedro.init", "kedro.global_commands", "kedro.project_commands", "kedro.hooks")
_DATASET_TYPE = re.compile(r"^\s*type:\s*['\"]?([A-Za-z_][\w.]*)", re.MULTILINE)
_POLL_SECONDS = 0.02


def _send(fd: int, message: Mapping[str, Any]) -> None:
    os.write(fd, (json.dumps(message) + "\n").encode())


def _source_dir(project: Path) -> Path:
    metadata = project / "pyproject.toml"
    text = metadata.read_text(encoding="utf-8") if metadata.is_file() else ""
    found = re.search(r"^\s*source_dir\s*=\s*['\"]([^'\"]+)", text, re.MULTILINE)
    return project / (found.group(1) if found else "src")


def _own_names(source: Path) -> set[str]:
    """The project's own top-level modules and packages (imported by each task from its copy)."""
    if not source.is_dir():
        return set()
    return {path.stem if path.suffix == ".py" else path.name for path in source.iterdir()}


def _imported(path: Path) -> Iterable[str]:
    """The modules a file imports when it is imported: its top-level statements (inside `if`,
    `try`, `with` and class bodies too), not a function's lazy imports (`import mlflow` in a
    node only when tracking is on: importing it here would change what `sys.modules` says),
    nor what `if TYPE_CHECKING:` guards."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        item = pending.pop(0)
        if isinstance(item, ast.Import):
            yield from (alias.name for alias in item.names)
        elif isinstance(item, ast.ImportFrom) and item.module and not item.level:
            yield item.module
        elif isinstance(item, ast.If) and "TYPE_CHECKING" not in ast.unparse(item.test):
            pending += [*item.body, *item.orelse]
        elif isinstance(item, ast.Try):
            pending += [*item.body, *item.orelse, *item.finalbody]
            pending += [statement for handler in item.handlers for statement in handler.body]
        elif isinstance(item, ast.With | ast.ClassDef):
            pending += item.body


def preload_names(project: Path) -> list[str]:
    """The modules the server imports for `project`, in order (never the project's own)."""
    source = _source_dir(project)
    own = _own_names(source) | {"__future__"}
    project_imports = sorted(
        {
            name
            for path in sorted(source.rglob("*.py"))
            if source.is_dir()
            for name in _imported(path)
            if name.partition(".")[0] not in own
        }
    )
    return [*BASE_MODULES, *project_imports]


def _dataset_types(project: Path) -> list[str]:
    conf = project / "conf"
    found: set[str] = set()
    for path in sorted(conf.rglob("*.yml")) + sorted(conf.rglob("*.yaml")):
        try:
            found.update(_DATASET_TYPE.findall(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
    return sorted(found)


def preload(project: Path, remote: bool = False) -> tuple[int, list[str]]:
    """Imports what a task imports (`REMOTE_MODULES` too when its run prefix is on GCS);
    (modules imported, names that failed)."""
    failed: list[str] = []
    for name in [*preload_names(project), *(REMOTE_MODULES if remote else ())]:
        try:
            import_module(name)
        except (Exception, SystemExit):  # noqa: BLE001 - a task imports it (or fails) itself
            failed.append(name)
    for group in _PLUGIN_GROUPS:
        for entry in entry_points(group=group):
            try:
                import_module(entry.module)
            except (Exception, SystemExit):  # noqa: BLE001
                failed.append(entry.module)
    from kedro.io.core import parse_dataset_definition

    for kind in _dataset_types(project):
        try:
            parse_dataset_definition({"type": kind})
        except (Exception, SystemExit):  # noqa: BLE001 - not a dataset type, or not installed
            failed.append(kind)
    _forget_project(project)
    _console_entry("kedro")
    # `inspect.getmodule` (dynaconf calls it reading settings.py) maps every loaded module's
    # file, thousands here: mapped once in the server, a child maps only the modules it adds.
    inspect.getmodule(compile("", "<kedro-gcs-bridge warm start>", "exec"))
    # Objects made so far are never collected: children do not copy their pages to count them.
    gc.freeze()
    return len(sys.modules), failed


def _forget_project(project: Path) -> None:
    """Nothing of the project's own folder stays imported or on the path."""
    root = project.resolve()
    sys.path[:] = [
        entry for entry in sys.path if not Path(entry or ".").resolve().is_relative_to(root)
    ]
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve().is_relative_to(root):
            del sys.modules[name]


_ENTRIES: dict[str, Any] = {}


def _console_entry(name: str) -> Any:
    """The function the console script `name` calls (`kedro` -> kedro.framework.cli:main)."""
    script = Path(name).name
    if script not in _ENTRIES:
        (entry,) = (e for e in entry_points(group="console_scripts") if e.name == script)
        _ENTRIES[script] = entry.load()
    return _ENTRIES[script]


def _exit_code(code: object) -> int:
    """The exit status Python gives `sys.exit(code)`."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _redirect(stdout: str, stderr: str) -> None:
    """stdin from /dev/null, stdout and stderr to the task's log files, Python's streams anew."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, stdout), (2, stderr)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    os.close(null)
    encoding, errors = sys.stdout.encoding, sys.stdout.errors
    sys.stdin = sys.__stdin__ = open(0, encoding=encoding, closefd=False)  # noqa: SIM115
    sys.stdout = sys.__stdout__ = open(1, "w", encoding=encoding, errors=errors, closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(  # noqa: SIM115
        2, "w", encoding=encoding, errors="backslashreplace", buffering=1, closefd=False
    )


def _fresh_process(script: str) -> None:
    """The state a new `kedro` process starts with, where the server's could differ: its
    `__main__`, path, temp dir, warnings shown once, Rich's console, random seeds and Kedro's
    logging config (read from the task's environment and folder)."""
    main = types.ModuleType("__main__")
    main.__file__ = script
    sys.modules["__main__"] = main
    sys.argv[0] = script
    sys.path[0] = str(Path(script).parent)
    import tempfile

    tempfile.tempdir = None
    mutated = getattr(sys.modules["warnings"], "_filters_mutated", None)
    if mutated is not None:
        mutated()  # warnings shown "once" in the server are shown again
    if "rich" in sys.modules:
        sys.modules["rich"]._console = None
    if "numpy.random" in sys.modules:
        sys.modules["numpy.random"].seed()
    project = sys.modules.get("kedro.framework.project")
    if project is not None:
        project.LOGGING.__init__()  # type: ignore[misc]


def _child(request: Mapping[str, Any], control: tuple[int, ...]) -> int:
    """Runs the task's command in this forked process; its exit status."""
    # Ctrl-C reaches the task as it reaches a cold one (same process group as replay).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for fd in control:
        os.close(fd)
    _redirect(request["stdout"], request["stderr"])
    try:
        argv = list(request["argv"])
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        _fresh_process(argv[0])
        sys.argv[:] = argv
        code = _exit_code(_console_entry(argv[0])())
    except SystemExit as exit_:
        code = _exit_code(exit_.code)
    except BaseException:  # noqa: BLE001 - an uncaught exception, reported as Python does
        sys.excepthook(*sys.exc_info())
        code = 1
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()  # non-daemon threads finish, as at interpreter exit
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    return code


def _fork(request: Mapping[str, Any], control: tuple[int, ...]) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = _child(request, control)
        finally:
            os._exit(code)
    return pid


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def serve(requests: int, replies: int) -> None:
    """Forks a child per request and reports its pid and exit status, until the requests
    pipe closes and the children have ended (they are killed then)."""
    children: dict[int, int] = {}
    by_id: dict[int, int] = {}
    buffer = b""
    open_ = True
    while open_ or children:
        readable, _, _ = select.select([requests] if open_ else [], [], [], _POLL_SECONDS)
        if readable:
            chunk = os.read(requests, 1 << 16)
            if not chunk:
                open_ = False
                for pid in children:
                    _kill(pid)
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                if "kill" in request:
                    if request["kill"] in by_id:
                        _kill(by_id[request["kill"]])
                    continue
                pid = _fork(request, (requests, replies))
                children[pid] = request["id"]
                by_id[request["id"]] = pid
                _send(replies, {"id": request["id"], "pid": pid})
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            task = children.pop(pid, None)
            if task is not None:
                by_id.pop(task, None)
                returncode = os.waitstatus_to_exitcode(status)
                _send(replies, {"id": task, "returncode": returncode})


def main(argv: list[str]) -> None:
    requests, replies, project = int(argv[0]), int(argv[1]), Path(argv[2])
    modules, failed = preload(project, remote="--remote" in argv[3:])
    threads = threading.active_count()
    _send(replies, {"ready": True, "modules": modules, "failed": failed, "threads": threads})
    if threads == 1:  # forking with other threads running is unsafe: replay starts tasks cold
        # Replay ends the server (closing the requests pipe), not a Ctrl-C meant for it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        serve(requests, replies)
    # Nothing to tear down: the children are reaped, and finalizing thousands of modules
    # would only delay replay's end.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
