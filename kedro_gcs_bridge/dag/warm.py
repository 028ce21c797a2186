"""Replay's warm start: each task's `kedro run` is a child forked from one server process that
has imported Kedro, the bridge's runner, pandas, gcsfs, the catalog's dataset classes and what
the project's code imports (dag/warm_server.py), instead of a new Python process that imports
them all again: a task starts in a fraction of a second instead of seconds.

The isolation stays a pod's: each task is its own process (forked) with its own working
folder (its copy of the project), exactly its own environment, its stdout and stderr in its
own log and its exit status as its return code (a signal's as a negative one, as
`subprocess` reports it). Nothing in memory passes between tasks: every child is forked
from the server, never from another task, and the server never imports the project's own
package (each task imports it from its copy) nor runs a task itself.

A task starts cold (a new process, as before) when its command is not `kedro` or its
environment differs from the server's beyond what is each task's own (`PER_TASK_VARIABLES`,
`KEDRO_GCS_BRIDGE_*`): another value could change what an import does (`gcsfs` reads
`GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT` when imported). All tasks start cold when the server did
not start, or has other threads running after its imports (forking is unsafe then).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import locale
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Variables that are each task's own (its folders), besides `KEDRO_GCS_BRIDGE_*`.
PER_TASK_VARIABLES = frozenset({"HOME", "TMPDIR", "TMP", "TEMP", "PWD"})
_OWN_PREFIX = "KEDRO_GCS_BRIDGE_"
#: The console scripts whose commands start warm.
WARM_COMMANDS = frozenset({"kedro"})


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    pid: int | None = None
    returncode: int | None = None


class WarmStarter:
    """The fork server of one replay; `run` starts a task in it.

    Args:
        project: The Kedro project folder (what the server imports is read from it).
        env: The server's environment: what every task's environment shares.
        own_dirs: Give the server a HOME and temp dir of its own (as each isolated task has),
            so that what an import reads or writes there is not the user's.
        remote: The run prefix is on GCS (the server imports gcsfs too).
    """

    def __init__(
        self, project: Path, env: Mapping[str, str], own_dirs: bool = True, remote: bool = False
    ) -> None:
        self._scratch = Path(tempfile.mkdtemp(prefix="kedro-gcs-bridge-warm-"))
        self.env = dict(env)
        self.remote = remote
        if own_dirs:
            for name in ("home", "tmp"):
                (self._scratch / name).mkdir()
            tmp = str(self._scratch / "tmp")
            self.env |= {"HOME": str(self._scratch / "home"), "TMPDIR": tmp, "TMP": tmp}
            self.env["TEMP"] = tmp
        self._ids = itertools.count()
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._ready = threading.Event()
        self._usable = False
        self._closed = False
        self.note = ""
        requests_r, self._requests = os.pipe()
        self._replies, replies_w = os.pipe()
        with (self._scratch / "server.log").open("wb") as log:
            self._server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kedro_gcs_bridge.dag.warm_server",
                    str(requests_r),
                    str(replies_w),
                    str(project),
                    *(["--remote"] if remote else []),
                ],
                cwd=self._scratch,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(requests_r, replies_w),
            )
        os.close(requests_r)
        os.close(replies_w)
        self._reader = threading.Thread(target=self._read, name="warm-start", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with os.fdopen(self._replies, "rb") as replies:
            for line in replies:
                message = json.loads(line)
                if "ready" in message:
                    self._usable = message["threads"] == 1
                    if not self._usable:
                        self.note = (
                            f"{message['threads']} threads running after its imports "
                            "(forking is unsafe)"
                        )
                    self._ready.set()
                    continue
                with self._lock:
                    pending = self._pending.get(message["id"])
                if pending is None:
                    continue
                if "pid" in message:
                    pending.pid = message["pid"]
                else:
                    pending.returncode = message["returncode"]
                    pending.done.set()
        # The server is gone: every task still running in it has failed.
        if not self._ready.is_set():
            self.note = f"its server ended while importing (see {self._scratch}/server.log)"
        self._ready.set()
        self._usable = False
        with self._lock:
            for pending in self._pending.values():
                pending.done.set()

    def differs(self, env: Mapping[str, str]) -> list[str]:
        """The variables `env` has otherwise than the server (each task's own aside)."""
        return sorted(
            name
            for name in set(env) | set(self.env)
            if env.get(name) != self.env.get(name)
            and name not in PER_TASK_VARIABLES
            and not name.startswith(_OWN_PREFIX)
        )

    def cold_reason(self, command: Sequence[str], env: Mapping[str, str]) -> str:
        """Why a task with this command and environment starts cold ('' when it starts warm).
        Waits for the server's imports the first time."""
        if not is_warm_command(command):
            return f"{Path(command[0]).name} is not kedro"
        self._ready.wait()
        if not self._usable:
            return f"no warm start: {self.note}"
        differ = self.differs(env)
        if differ:
            return f"its environment differs from the warm server's: {', '.join(differ)}"
        return ""

    def run(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> tuple[int, str]:
        """Runs one task as a child of the server; its return code and log (stdout, then
        stderr, as `subprocess.run(capture_output=True)` gives them)."""
        returncode, stdout, stderr = self.run_captured(argv, cwd, env)
        return returncode, stdout + stderr

    def run_captured(
        self,
        argv: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        timeout: float | None = None,
    ) -> tuple[int, str, str]:
        """Runs a command as a child of the server: its return code, stdout and stderr.

        Raises:
            subprocess.TimeoutExpired: It ran longer than `timeout` seconds (it is killed).
        """
        task = next(self._ids)
        pending = _Pending()
        with self._lock:
            self._pending[task] = pending
        logs = (self._scratch / f"{task}.stdout", self._scratch / f"{task}.stderr")
        request = {
            "id": task,
            "argv": list(argv),
            "cwd": str(cwd),
            "env": dict(env),
            "stdout": str(logs[0]),
            "stderr": str(logs[1]),
        }
        try:
            self._write(request)
            if not pending.done.wait(timeout):
                raise subprocess.TimeoutExpired(list(argv), timeout or 0.0)
        except BaseException:
            self._write({"kill": task})
            raise
        finally:
            with self._lock:
                self._pending.pop(task, None)
        stdout, stderr = (_read_text(path) for path in logs)
        for path in logs:
            path.unlink(missing_ok=True)
        if pending.returncode is None:
            ended = f"\nthe warm start's server ended before this task did ({self.note})"
            return 1, stdout, stderr + ended
        return pending.returncode, stdout, stderr

    def _write(self, message: Mapping[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        try:
            with self._write_lock:  # a request (an environment) can outgrow an atomic write
                _write_all(self._requests, data)
        except OSError:
            with self._lock:
                for pending in self._pending.values():
                    pending.done.set()

    def close(self) -> None:
        """Ends the server (and any task still running in it) and removes its files; again
        does nothing."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.close(self._requests)
        try:
            self._server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._server.kill()
            self._server.wait()
        self._reader.join(timeout=10)
        shutil.rmtree(self._scratch, ignore_errors=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding=locale.getpreferredencoding(False), errors="replace")
    except FileNotFoundError:
        return ""


def shared_env(envs: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The variables every one of `envs` has with the same value."""
    if not envs:
        return {}
    first, *rest = envs
    return {name: value for name, value in first.items() if all(e.get(name) == value for e in rest)}


def is_warm_command(command: Sequence[str]) -> bool:
    """Whether a task's command can start warm (`kedro ...`)."""
    return bool(command) and Path(command[0]).name in WARM_COMMANDS


def is_remote(prefix: str) -> bool:
    """Whether a run prefix (or its root) is on GCS."""
    return prefix.startswith(("gs://", "gcs://"))
