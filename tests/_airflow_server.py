"""A real local Airflow 3 deployment for tests: api-server, scheduler and dag-processor.

Three processes of this venv's `airflow` on 127.0.0.1 (a free port), sharing one environment:
their own AIRFLOW_HOME with a SQLite database (`airflow db migrate` first), LocalExecutor, one
JWT secret, the simple auth manager with one admin user, task workers reaching the API server
through its execution API, DAGs unpaused at creation. Each process runs in its own session and
is stopped by its process group, so LocalExecutor workers never outlive it. Readiness is
bounded by a count of polls; a deployment that does not come up fails with the processes' logs.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kedro_gcs_bridge.ops.emulator import free_port

AIRFLOW = Path(sys.executable).parent / "airflow"
USER = "admin"
#: The processes of a deployment, in the order they start.
COMMANDS: Mapping[str, tuple[str, ...]] = {
    "api-server": ("api-server", "--host", "127.0.0.1", "--port", "{port}"),
    "scheduler": ("scheduler",),
    "dag-processor": ("dag-processor",),
}


class AirflowNotReadyError(AssertionError):
    """The deployment did not come up within its polls (the message holds the logs)."""


@dataclass
class AirflowServer:
    """A running deployment: its URL, home, admin login and processes."""

    url: str
    home: Path
    env: dict[str, str]
    password: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _token: str | None = None

    def log_path(self, name: str) -> Path:
        return self.home / f"{name}.out"

    def logs(self, tail: int = 4000) -> str:
        """Each process's exit code (if it ended) and the tail of its output."""
        parts = []
        for name, process in self.processes.items():
            text = self.log_path(name).read_text("utf-8", errors="replace")
            parts.append(f"--- {name} (exit code {process.poll()})\n{text[-tail:]}")
        return "\n".join(parts)

    def token(self) -> str:
        """A JWT of the admin user (`POST /auth/token`), fetched once."""
        if self._token is None:
            body = {"username": USER, "password": self.password}
            self._token = str(self.request("POST", "/auth/token", body, auth=False)["access_token"])
        return self._token

    def request(
        self, method: str, path: str, body: Any = None, auth: bool = True, timeout: float = 30
    ) -> Any:
        """One JSON request to the API server; raises urllib's HTTPError on an error status."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None


def airflow_env(home: Path, dags_folder: Path, port: int, password_file: Path) -> dict[str, str]:
    """The environment every process of the deployment shares."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "COLUMNS": "400",
    }


def _start(name: str, server: AirflowServer, port: int) -> None:
    args = [arg.format(port=port) for arg in COMMANDS[name]]
    out: IO[bytes] = server.log_path(name).open("wb")
    server.processes[name] = subprocess.Popen(
        [str(AIRFLOW), *args],
        cwd=server.home,
        env={**os.environ, **server.env},
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped with its workers
    )
    out.close()


def stop_groups(processes: list[subprocess.Popen[bytes]], grace: float = 5) -> None:
    """SIGTERM to each process's group, at once; SIGKILL to whatever is left of them after
    their leaders exited (or after `grace` seconds)."""
    for process in processes:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    for process in processes:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the leader, or workers it left behind
        process.wait(timeout=grace)


def _healthy(server: AirflowServer, dag_ids: tuple[str, ...]) -> bool:
    """API answers, scheduler and dag-processor report healthy, every DAG is parsed."""
    try:
        health = server.request("GET", "/api/v2/monitor/health", auth=False, timeout=5)
        if any(
            health.get(part, {}).get("status") != "healthy"
            for part in ("metadatabase", "scheduler", "dag_processor")
        ):
            return False
        for dag_id in dag_ids:
            server.request("GET", f"/api/v2/dags/{dag_id}", timeout=5)
    except (OSError, ValueError):  # not listening yet, 404 of an unparsed DAG, a half answer
        return False
    return True


def wait_ready(server: AirflowServer, dag_ids: tuple[str, ...], polls: int, interval: float) -> int:
    """Polls until healthy with `dag_ids` parsed; returns the polls it took.

    Raises:
        AirflowNotReadyError: A process exited, or not ready after `polls` polls.
    """
    for poll in range(1, polls + 1):
        ended = [name for name, process in server.processes.items() if process.poll() is not None]
        if ended:
            raise AirflowNotReadyError(f"{ended} exited while starting\n{server.logs()}")
        if _healthy(server, dag_ids):
            return poll
        time.sleep(interval)
    raise AirflowNotReadyError(
        f"Airflow not ready after {polls} polls ({polls * interval:.0f} s): DAGs {dag_ids}\n"
        f"{server.logs()}"
    )


@contextmanager
def airflow_server(
    home: Path,
    dags_folder: Path,
    dag_ids: tuple[str, ...] = (),
    polls: int = 300,
    interval: float = 1.0,
) -> Iterator[AirflowServer]:
    """Migrates a fresh database in `home`, starts the three processes, waits until they
    serve with `dag_ids` parsed, yields the deployment; stops every process group afterwards.
    """
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    password = secrets.token_urlsafe(12)
    password_file = home / "passwords.json"
    password_file.write_text(json.dumps({USER: password}), encoding="utf-8")
    env = airflow_env(home, dags_folder, port, password_file)
    server = AirflowServer(f"http://127.0.0.1:{port}", home, env, password)
    migrated = subprocess.run(
        [str(AIRFLOW), "db", "migrate"],
        cwd=home,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if migrated.returncode != 0:
        raise AirflowNotReadyError(f"airflow db migrate failed:\n{migrated.stderr[-4000:]}")
    try:
        for name in COMMANDS:
            _start(name, server, port)
        wait_ready(server, dag_ids, polls, interval)
        yield server
    finally:
        stop_groups(list(server.processes.values()))


def http_error_text(exc: urllib.error.HTTPError) -> str:
    """An API error's status and body, for assertion messages."""
    return f"{exc.code} {exc.read().decode('utf-8', errors='replace')[:2000]}"
