"""`trigger`: start a DAG run through Airflow 3's REST API and follow its task states.

Authentication, one of (`resolve_token`): a bearer token from an environment variable (any
Airflow), a user and password exchanged for a token at `POST /auth/token` (Airflow's simple or
FAB auth manager), or, with neither, Google's default credentials (Cloud Composer, whose
web server accepts an OAuth token of the caller's identity). The run starts with
`POST /api/v2/dags/{dag_id}/dagRuns`; `watch` polls the run and its task instances and reports
each task state as it changes, until the run ends. The exit code is the run's state.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kedro_gcs_bridge.errors import AirflowApiError, AirflowAuthError, AirflowUnavailableError

#: Exit code of each final state of a DAG run.
EXIT_CODES: Mapping[str, int] = {"success": 0, "failed": 1}
GOOGLE_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_PASSWORD_ENV = "AIRFLOW_PASSWORD"
#: Polls in a row `watch` asks again after a transient error before it gives up.
MISSES = 5
#: Error statuses worth asking again (any 5xx too), and how.
_ERROR_KINDS: Mapping[int, type[AirflowApiError]] = {
    401: AirflowAuthError,
    429: AirflowUnavailableError,
}


def _error_kind(status: int) -> type[AirflowApiError]:
    """What asking again needs after an error status: a 5xx server is failing."""
    return AirflowUnavailableError if status >= 500 else _ERROR_KINDS.get(status, AirflowApiError)


@dataclass(frozen=True)
class AirflowApi:
    """Airflow's REST API at `url` (the web server's base URL), with a bearer token."""

    url: str
    token: str | None
    timeout: float = 30

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One JSON request; its decoded answer.

        Raises:
            AirflowUnavailableError: No answer, or a busy or failing server (HTTP 429, 5xx).
            AirflowAuthError: The token was refused (HTTP 401).
            AirflowApiError: Any other error status (with Airflow's detail).
        """
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        target = self.url.rstrip("/") + path
        request = urllib.request.Request(target, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace")[:1000]
            kind = _error_kind(exc.code)
            raise kind(f"{method} {target}: HTTP {exc.code} {detail}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise AirflowUnavailableError(f"{method} {target}: no answer ({exc})") from exc
        try:
            return json.loads(raw) if raw else None
        except ValueError as exc:
            raise AirflowApiError(f"{method} {target}: not JSON: {raw[:200]!r}") from exc


def login_token(url: str, username: str, password: str) -> str:
    """A token for a user of Airflow's auth manager (`POST /auth/token`)."""
    answer = AirflowApi(url, None).call(
        "POST", "/auth/token", {"username": username, "password": password}
    )
    if not isinstance(answer, dict) or "access_token" not in answer:
        raise AirflowApiError(f"{url}/auth/token gave no access_token: {answer!r}")
    return str(answer["access_token"])


def google_token() -> str:
    """An OAuth token of Google's default credentials (Cloud Composer)."""
    try:
        import google.auth
        import google.auth.transport.requests
        from google.auth.exceptions import GoogleAuthError
    except ImportError as exc:
        raise AirflowApiError(
            "no --token-env or --username given, and google-auth is not installed for "
            "Composer's default credentials: `pip install google-auth requests`."
        ) from exc
    try:
        credentials, _ = google.auth.default(scopes=[GOOGLE_SCOPE])
        credentials.refresh(google.auth.transport.requests.Request())
    except GoogleAuthError as exc:
        raise AirflowApiError(
            f"no Google credentials for Composer ({exc}): run `gcloud auth application-default "
            "login`, or give --token-env / --username for another Airflow."
        ) from exc
    return str(credentials.token)


def resolve_token(
    url: str,
    environ: Mapping[str, str],
    token_env: str | None = None,
    username: str | None = None,
    password_env: str = DEFAULT_PASSWORD_ENV,
    google: Callable[[], str] = google_token,
) -> str:
    """The bearer token: from `token_env`, else a login of `username`, else Google's.

    Raises:
        AirflowApiError: The named environment variable is not set, or the login fails.
    """
    if token_env is not None and username is not None:
        raise AirflowApiError("give --token-env or --username, not both.")
    if token_env is not None:
        return _required(environ, token_env, "--token-env")
    if username is not None:
        return login_token(url, username, _required(environ, password_env, "--password-env"))
    return google()


def _required(environ: Mapping[str, str], name: str, option: str) -> str:
    value = environ.get(name)
    if not value:
        raise AirflowApiError(f"{option} names ${name}, which is not set (or empty).")
    return value


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def start_run(
    api: AirflowApi, dag_id: str, conf: Mapping[str, Any] | None = None, unpause: bool = False
) -> tuple[str, bool]:
    """Starts a run of `dag_id` now; its run id, and whether the DAG is paused.

    A paused DAG's run stays queued: `unpause` unpauses it first.

    Raises:
        AirflowApiError: Airflow refused, or did not answer the start (the run may exist).
    """
    dag = api.call("GET", f"/api/v2/dags/{_quote(dag_id)}")
    paused = bool(dag.get("is_paused"))
    if paused and unpause:
        api.call("PATCH", f"/api/v2/dags/{_quote(dag_id)}", {"is_paused": False})
        paused = False
    body = {"logical_date": None, "conf": dict(conf or {})}
    try:
        run = api.call("POST", f"/api/v2/dags/{_quote(dag_id)}/dagRuns", body)
    except AirflowUnavailableError as exc:  # never sent twice: that could start two runs
        raise AirflowApiError(
            f"{exc}. The run may have started anyway: look at {dag_id}'s runs in Airflow before "
            "triggering it again."
        ) from exc
    return str(run["dag_run_id"]), paused


def task_changes(
    previous: Mapping[str, str], instances: list[dict[str, Any]]
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The tasks' states now, and the (task, state) pairs that changed since `previous`."""
    now = {str(ti["task_id"]): str(ti.get("state") or "none") for ti in instances}
    changed = [(task, state) for task, state in now.items() if previous.get(task) != state]
    return now, changed


def run_state(api: AirflowApi, dag_id: str, run_id: str) -> str:
    """The DAG run's state (queued, running, success, failed)."""
    path = f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}"
    return str(api.call("GET", path)["state"])


def task_instances(api: AirflowApi, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """The run's task instances (id, state, try number, ...)."""
    path = f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}/taskInstances?limit=1000"
    return list(api.call("GET", path)["task_instances"])


def watch(
    api: AirflowApi,
    dag_id: str,
    run_id: str,
    show: Callable[[str, str], None],
    interval: float = 5,
    max_polls: int = 720,
    sleep: Callable[[float], None] = time.sleep,
    tell: Callable[[str], None] = lambda line: None,
    renew: Callable[[], AirflowApi] | None = None,
) -> str:
    """Polls the run until it ends, calling `show(task, state)` on each change; its state.

    The run goes on in Airflow whatever happens here, so a poll that meets no answer or a busy
    server (`AirflowUnavailableError`) is told to `tell` and asked again at the next poll, up
    to `MISSES` in a row; a refused token (`AirflowAuthError`: Google's last an hour) is
    renewed with `renew`, once until a poll succeeds again.

    Raises:
        AirflowApiError: The run did not end within `max_polls` polls, `MISSES` polls in a row
            failed, a renewed token was refused, or Airflow refused a request.
    """
    states: dict[str, str] = {}
    misses, renewed = 0, False
    for poll in range(max_polls):
        if poll:
            sleep(interval)
        try:
            state = run_state(api, dag_id, run_id)
            states, changed = task_changes(states, task_instances(api, dag_id, run_id))
        except AirflowAuthError as exc:
            if renew is None or renewed:
                raise
            api, renewed = renew(), True
            tell(f"{exc}; asking again with a new token")
            continue
        except AirflowUnavailableError as exc:
            misses += 1
            if misses >= MISSES:
                raise AirflowApiError(
                    f"Airflow did not answer {MISSES} polls in a row ({exc}); run {run_id} of "
                    f"{dag_id} goes on in Airflow."
                ) from exc
            tell(f"{exc}; asking again ({misses} of {MISSES})")
            continue
        misses, renewed = 0, False
        for task, task_state in changed:
            show(task, task_state)
        if state in EXIT_CODES:
            return state
    raise AirflowApiError(
        f"run {run_id} of {dag_id} did not end within {max_polls} polls "
        f"({max_polls * interval:.0f} s); it goes on in Airflow."
    )


def exit_code(state: str) -> int:
    """0 for a successful run, 1 for a failed one (or any state that is not success)."""
    return EXIT_CODES.get(state, 1)
