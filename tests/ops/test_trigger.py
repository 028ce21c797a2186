"""`kedro gcs-bridge trigger`'s logic against a scripted API: which token, the run's start,
task states shown once per change, the exit code. (The real API server: test_airflow_real.py.)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kedro_gcs_bridge.errors import AirflowApiError, AirflowAuthError, AirflowUnavailableError
from kedro_gcs_bridge.ops.emulator import free_port
from kedro_gcs_bridge.ops.trigger import (
    AirflowApi,
    exit_code,
    resolve_token,
    start_run,
    task_changes,
    watch,
)

RUN = "manual__2026-12-07T06:23:04+00:00"


class ScriptedApi(AirflowApi):
    """Answers each GET of a run and its tasks from the next step of a script."""

    def __init__(self, steps: list[tuple[str, dict[str, str]]], paused: bool = False) -> None:
        super().__init__("http://airflow.invalid", "t")
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "calls", [])
        object.__setattr__(self, "paused", paused)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        self.calls.append((method, path, body))
        if path.endswith("/dagRuns") and method == "POST":
            return {"dag_run_id": RUN}
        if method == "PATCH":
            return {}
        if path.endswith("taskInstances?limit=1000"):
            states = self.steps[0][1]
            self.steps.pop(0)
            return {"task_instances": [{"task_id": t, "state": s} for t, s in states.items()]}
        if "/dagRuns/" in path:
            return {"state": self.steps[0][0]}
        return {"dag_id": "d", "is_paused": self.paused}


class FlakyApi(ScriptedApi):
    """A `ScriptedApi` whose first `misses` reads of the run fail with `error`."""

    def __init__(
        self,
        steps: list[tuple[str, dict[str, str]]],
        misses: int,
        error: AirflowApiError | None = None,
    ) -> None:
        super().__init__(steps)
        object.__setattr__(self, "misses", misses)
        object.__setattr__(self, "error", error or AirflowUnavailableError("GET x: HTTP 502 ..."))

    def call(self, method: str, path: str, body: Any = None) -> Any:
        if "/dagRuns/" in path and not path.endswith("1000") and self.misses:
            object.__setattr__(self, "misses", self.misses - 1)
            raise self.error
        return super().call(method, path, body)


class TestWatch:
    def test_each_change_is_shown_once_and_the_run_state_returned(self) -> None:
        api = ScriptedApi(
            [
                ("queued", {"a": "none", "b": "none"}),
                ("running", {"a": "running", "b": "none"}),
                ("running", {"a": "running", "b": "none"}),
                ("running", {"a": "success", "b": "running"}),
                ("failed", {"a": "success", "b": "failed"}),
            ]
        )
        shown: list[tuple[str, str]] = []
        sleeps: list[float] = []
        state = watch(api, "d", RUN, lambda *c: shown.append(c), 2, 10, sleeps.append)
        assert state == "failed" and exit_code(state) == 1
        assert shown == [
            ("a", "none"),
            ("b", "none"),
            ("a", "running"),
            ("a", "success"),
            ("b", "running"),
            ("b", "failed"),
        ]
        assert sleeps == [2, 2, 2, 2]  # between polls, not before the first
        assert (
            "GET",
            "/api/v2/dags/d/dagRuns/manual__2026-12-07T06%3A23%3A04%2B00%3A00",
            None,
        ) in (api.calls)

    def test_bounded_by_polls(self) -> None:
        api = ScriptedApi([("running", {"a": "running"})] * 3)
        with pytest.raises(AirflowApiError, match="did not end within 3 polls"):
            watch(api, "d", RUN, lambda *c: None, 1, 3, lambda s: None)

    def test_transient_errors_are_asked_again_and_said(self) -> None:
        """A 502 or a dropped answer from Composer's web server mid-run does not end `--wait`:
        the run goes on in Airflow, so the poll asks again (said once per miss)."""
        api = FlakyApi([("running", {"a": "running"}), ("success", {"a": "success"})], misses=2)
        told: list[str] = []
        sleeps: list[float] = []
        state = watch(api, "d", RUN, lambda *c: None, 2, 10, sleeps.append, told.append)
        assert state == "success"
        assert len(told) == 2 and all("HTTP 502" in line for line in told)
        assert "asking again (1 of 5)" in told[0] and "(2 of 5)" in told[1]
        assert sleeps == [2, 2, 2]  # a miss costs a poll interval, like any poll

    def test_too_many_misses_in_a_row_end_the_wait_naming_the_run(self) -> None:
        api = FlakyApi([("running", {"a": "running"})], misses=6)
        with pytest.raises(AirflowApiError, match=r"5 polls in a row .* goes on in Airflow"):
            watch(api, "d", RUN, lambda *c: None, 1, 100, lambda s: None)

    def test_a_token_that_expired_mid_wait_is_renewed_once(self) -> None:
        """Google's tokens last an hour; a `--wait` may last longer (`--timeout`)."""
        expired = AirflowAuthError("GET x: HTTP 401 token expired")
        api = FlakyApi([("running", {"a": "running"}), ("success", {})], misses=1, error=expired)
        renewed: list[ScriptedApi] = []

        def renew() -> ScriptedApi:
            renewed.append(ScriptedApi(api.steps))  # the same run, a new token
            return renewed[-1]

        told: list[str] = []
        state = watch(api, "d", RUN, lambda *c: None, 1, 10, lambda s: None, told.append, renew)
        assert state == "success" and len(renewed) == 1
        assert told == ["GET x: HTTP 401 token expired; asking again with a new token"]
        assert renewed[0].calls  # the polls after the renewal used the new token

    def test_a_renewed_token_refused_again_ends_the_wait(self) -> None:
        expired = AirflowAuthError("GET x: HTTP 401 token expired")
        api = FlakyApi([("running", {"a": "running"})], misses=2, error=expired)
        with pytest.raises(AirflowAuthError, match="401"):
            watch(api, "d", RUN, lambda *c: None, 1, 10, lambda s: None, renew=lambda: api)

    def test_a_refusal_is_not_asked_again(self) -> None:
        api = FlakyApi([("running", {"a": "running"})], misses=1, error=AirflowApiError("404"))
        with pytest.raises(AirflowApiError, match="404"):
            watch(api, "d", RUN, lambda *c: None, 1, 100, lambda s: pytest.fail("slept"))

    @pytest.mark.parametrize(
        ("state", "code"), [("success", 0), ("failed", 1), ("queued", 1), ("running", 1)]
    )
    def test_exit_code(self, state: str, code: int) -> None:
        assert exit_code(state) == code

    def test_task_changes(self) -> None:
        now, changed = task_changes({"a": "running"}, [{"task_id": "a", "state": None}])
        assert now == {"a": "none"} and changed == [("a", "none")]


class TestStartRun:
    @pytest.mark.parametrize(("unpause", "still_paused"), [(False, True), (True, False)])
    def test_a_paused_dag_is_said_or_unpaused(self, unpause: bool, still_paused: bool) -> None:
        api = ScriptedApi([], paused=True)
        run_id, paused = start_run(api, "d", {"k": 1}, unpause=unpause)
        assert (run_id, paused) == (RUN, still_paused)
        assert ("POST", "/api/v2/dags/d/dagRuns", {"logical_date": None, "conf": {"k": 1}}) in (
            api.calls
        )
        patched = [c for c in api.calls if c[0] == "PATCH"]
        assert patched == ([("PATCH", "/api/v2/dags/d", {"is_paused": False})] if unpause else [])


def test_a_start_without_an_answer_says_the_run_may_exist() -> None:
    """A POST is never sent twice (that could start two runs): the error says to look first."""

    class Silent(ScriptedApi):
        def call(self, method: str, path: str, body: Any = None) -> Any:
            if method == "POST":
                raise AirflowUnavailableError("POST x: no answer (timed out)")
            return super().call(method, path, body)

    with pytest.raises(AirflowApiError, match=r"timed out\). The run may have started") as raised:
        start_run(Silent([]), "d")
    assert "look at d's runs in Airflow before triggering it again" in str(raised.value)
    assert not isinstance(raised.value, AirflowUnavailableError)


@pytest.fixture
def token_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback `/auth/token` that accepts alice/pw (recording the bodies it got), and
    `/status/N` that answers HTTP N."""
    bodies: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            bodies.append(body)
            good = body == {"username": "alice", "password": "pw"}
            answer = {"access_token": "jwt-1"} if good else {"detail": "Invalid credentials"}
            data = json.dumps(answer).encode()
            self.send_response(201 if good else 401)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # /status/N answers HTTP N
            data = b'{"detail": "scripted"}'
            self.send_response(int(self.path.rsplit("/", 1)[-1]))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        server.server_close()


class TestToken:
    def _google(self) -> str:
        return "google-token"

    def test_from_the_named_variable(self) -> None:
        env = {"MY_TOKEN": "abc"}
        assert resolve_token("http://x", env, token_env="MY_TOKEN", google=self._google) == "abc"

    def test_a_missing_variable_is_named(self) -> None:
        with pytest.raises(AirflowApiError, match=r"--token-env names \$MY_TOKEN, which is not"):
            resolve_token("http://x", {}, token_env="MY_TOKEN", google=self._google)

    def test_google_when_nothing_else_is_given(self) -> None:
        assert resolve_token("http://x", {}, google=self._google) == "google-token"

    def test_not_both(self) -> None:
        with pytest.raises(AirflowApiError, match="not both"):
            resolve_token("http://x", {"T": "t"}, token_env="T", username="u")

    def test_a_user_logs_in(self, token_server: tuple[str, list[dict[str, Any]]]) -> None:
        url, bodies = token_server
        env = {"AIRFLOW_PASSWORD": "pw"}
        assert resolve_token(url, env, username="alice", google=self._google) == "jwt-1"
        with pytest.raises(AirflowApiError, match=r"HTTP 401 .*Invalid credentials"):
            resolve_token(url, {"AIRFLOW_PASSWORD": "no"}, username="alice")
        assert [b["password"] for b in bodies] == ["pw", "no"]


def test_no_google_credentials_say_what_to_do(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(AirflowApiError, match="gcloud auth application-default login"):
        resolve_token("http://x", {})


def test_no_server_is_a_clear_error() -> None:
    api = AirflowApi(f"http://127.0.0.1:{free_port()}", "t", timeout=5)
    with pytest.raises(AirflowUnavailableError, match="no answer"):
        api.call("GET", "/api/v2/dags/d")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (502, AirflowUnavailableError),
        (503, AirflowUnavailableError),
        (429, AirflowUnavailableError),
        (401, AirflowAuthError),
        (404, AirflowApiError),
        (403, AirflowApiError),
    ],
)
def test_each_error_status_says_what_asking_again_needs(
    token_server: tuple[str, list[dict[str, Any]]], status: int, kind: type[Exception]
) -> None:
    url, _ = token_server
    with pytest.raises(AirflowApiError, match=f"HTTP {status}") as raised:
        AirflowApi(url, "t").call("GET", f"/status/{status}")
    assert type(raised.value) is kind
