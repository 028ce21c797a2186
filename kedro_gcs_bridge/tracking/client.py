"""The few MLflow calls tracking makes, behind one small interface, each within the budget.

Against an `http(s)://` tracking server (what pods talk to) the calls go straight to MLflow's
public REST API (`/api/2.0/mlflow/...`) through `requests`: no `import mlflow` (1.5-2.2 s) on a
pod's critical path, and no retry or timeout of MLflow's own. Other URIs (a local `sqlite:` or
`file:` store, `databricks`, or an auth plugin set with `MLFLOW_TRACKING_AUTH`) go through
`MlflowClient`. Both answer with the same plain `Run`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

from kedro_gcs_bridge.errors import TrackingError
from kedro_gcs_bridge.tracking.budget import Budget

if TYPE_CHECKING:
    import requests

T = TypeVar("T")

#: Tries per REST call: a dropped connection or a 429/5xx is tried once more, within the budget.
REST_ATTEMPTS = 2
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_RETRY_PAUSE_SECONDS = 0.5
_API = "/api/2.0/mlflow"
#: MLflow's limits per `log-batch` request.
_BATCH_LIMITS = {"metrics": 1000, "params": 100, "tags": 100}


@dataclass(frozen=True)
class Run:
    """What tracking reads of an MLflow run."""

    run_id: str
    start_time: int = 0
    status: str = "RUNNING"
    tags: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    """One metric value to log."""

    key: str
    value: float
    timestamp: int
    step: int = 0


class MlflowApiError(TrackingError):
    """The server answered a call with an error (`error_code` is MLflow's, e.g.
    `RESOURCE_DOES_NOT_EXIST`)."""

    def __init__(self, message: str, error_code: str = "") -> None:
        super().__init__(message)
        self.error_code = error_code


class TrackingClient(Protocol):
    """The calls tracking makes; every one runs within the tracking budget."""

    def experiment(self, name: str) -> tuple[str, dict[str, str]] | None:
        """(id, tags) of the experiment with that name, or None."""

    def create_experiment(self, name: str, tags: Mapping[str, str]) -> str:
        """Creates the experiment; its id."""

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        """Sets one tag of an experiment."""

    def search_runs(self, experiment_id: str, query: str, max_results: int) -> list[Run]:
        """Active runs of the experiment matching an MLflow filter string."""

    def create_run(self, experiment_id: str, tags: Mapping[str, str], run_name: str) -> str:
        """Creates a RUNNING run; its id."""

    def get_run(self, run_id: str) -> Run:
        """One run."""

    def delete_run(self, run_id: str) -> None:
        """Marks a run deleted."""

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Logs metrics, params and tags on a run."""

    def set_status(self, run_id: str, status: str) -> None:
        """Sets a run's status (`RUNNING`, or a final one with its end time)."""


def is_rest_uri(uri: str) -> bool:
    """True when tracking talks to this URI through the REST client (no `import mlflow`)."""
    return urlsplit(uri).scheme in {"http", "https"} and not os.environ.get("MLFLOW_TRACKING_AUTH")


def make_client(uri: str, budget: Budget) -> TrackingClient:
    """The REST client for an http(s) server, else one on `MlflowClient`."""
    return RestClient(uri, budget) if is_rest_uri(uri) else LibraryClient(uri, budget)


def _millis() -> int:
    return int(time.time() * 1000)


def _pairs(values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": str(value)} for key, value in values.items()]


def _unpair(values: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    return {item["key"]: item.get("value", "") for item in values or ()}


def _run_of(payload: Mapping[str, Any]) -> Run:
    info, data = payload.get("info", {}), payload.get("data", {})
    return Run(
        run_id=str(info["run_id"]),
        start_time=int(info.get("start_time") or 0),
        status=str(info.get("status", "RUNNING")),
        tags=_unpair(data.get("tags")),
        params=_unpair(data.get("params")),
    )


def _batches(parts: Mapping[str, list[T]]) -> list[dict[str, list[T]]]:
    """One `log-batch` request when everything fits MLflow's limits, else one per slice."""
    if not any(parts.values()):
        return []
    if all(len(items) <= _BATCH_LIMITS[kind] for kind, items in parts.items()):
        return [{kind: items for kind, items in parts.items() if items}]
    return [
        {kind: items[start : start + _BATCH_LIMITS[kind]]}
        for kind, items in parts.items()
        for start in range(0, len(items), _BATCH_LIMITS[kind])
    ]


class RestClient:
    """MLflow's REST API through `requests`, every attempt within the budget."""

    def __init__(self, uri: str, budget: Budget) -> None:
        import requests

        self.base = uri.rstrip("/") + _API
        self.budget = budget
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "kedro-gcs-bridge"
        _authenticate(self.session)

    def _send(self, method: str, path: str, body: Mapping[str, Any]) -> requests.Response:
        wait = max(self.budget.remaining(), 0.05)
        where = {"params": body} if method == "GET" else {"json": body}
        return self.session.request(method, self.base + path, timeout=(wait, wait), **where)

    def _request(self, method: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        import requests

        for attempt in range(1, REST_ATTEMPTS + 1):
            last = attempt == REST_ATTEMPTS
            try:
                answer = self.budget.call(lambda: self._send(method, path, body))
            except (requests.ConnectionError, requests.Timeout):
                if last:
                    raise
            else:
                if answer.status_code not in _RETRY_STATUSES or last:
                    return _answer(answer, path)
            self.budget.call(lambda: time.sleep(min(_RETRY_PAUSE_SECONDS, self.budget.remaining())))
        raise AssertionError("unreachable")  # pragma: no cover

    def experiment(self, name: str) -> tuple[str, dict[str, str]] | None:
        try:
            found = self._request("GET", "/experiments/get-by-name", {"experiment_name": name})
        except MlflowApiError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        experiment = found["experiment"]
        return str(experiment["experiment_id"]), _unpair(experiment.get("tags"))

    def create_experiment(self, name: str, tags: Mapping[str, str]) -> str:
        body = {"name": name, "tags": _pairs(tags)}
        return str(self._request("POST", "/experiments/create", body)["experiment_id"])

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        body = {"experiment_id": experiment_id, "key": key, "value": value}
        self._request("POST", "/experiments/set-experiment-tag", body)

    def search_runs(self, experiment_id: str, query: str, max_results: int) -> list[Run]:
        body = {
            "experiment_ids": [experiment_id],
            "filter": query,
            "max_results": max_results,
            "run_view_type": "ACTIVE_ONLY",
        }
        return [_run_of(run) for run in self._request("POST", "/runs/search", body).get("runs", [])]

    def create_run(self, experiment_id: str, tags: Mapping[str, str], run_name: str) -> str:
        body = {
            "experiment_id": experiment_id,
            "start_time": _millis(),
            "tags": _pairs(tags),
            "run_name": run_name,
        }
        return str(self._request("POST", "/runs/create", body)["run"]["info"]["run_id"])

    def get_run(self, run_id: str) -> Run:
        return _run_of(self._request("GET", "/runs/get", {"run_id": run_id})["run"])

    def delete_run(self, run_id: str) -> None:
        self._request("POST", "/runs/delete", {"run_id": run_id})

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        parts = {
            "metrics": [vars(metric) for metric in metrics],
            "params": _pairs(params or {}),
            "tags": _pairs(tags or {}),
        }
        for batch in _batches(parts):
            self._request("POST", "/runs/log-batch", {"run_id": run_id, **batch})

    def set_status(self, run_id: str, status: str) -> None:
        body: dict[str, Any] = {"run_id": run_id, "status": status}
        if status != "RUNNING":
            body["end_time"] = _millis()
        self._request("POST", "/runs/update", body)


def _authenticate(session: requests.Session) -> None:
    """MLflow's own client settings for reaching a server: a token, a user, TLS."""
    environ = os.environ
    if token := environ.get("MLFLOW_TRACKING_TOKEN"):
        session.headers["Authorization"] = f"Bearer {token}"
    elif environ.get("MLFLOW_TRACKING_USERNAME"):
        session.auth = (
            environ["MLFLOW_TRACKING_USERNAME"],
            environ.get("MLFLOW_TRACKING_PASSWORD", ""),
        )
    if environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").strip().lower() == "true":
        session.verify = False
    elif cert := environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        session.verify = cert
    if client_cert := environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
        session.cert = client_cert


def _answer(answer: requests.Response, path: str) -> dict[str, Any]:
    """The JSON of a 200 answer; anything else as an `MlflowApiError` with MLflow's code."""
    try:
        payload = answer.json()
    except ValueError:
        payload = {}
    if answer.status_code == 200:
        return payload if isinstance(payload, dict) else {}
    payload = payload if isinstance(payload, dict) else {}
    code = str(payload.get("error_code", ""))
    message = payload.get("message") or answer.text[:300]
    raise MlflowApiError(f"{path}: HTTP {answer.status_code} {code} {message}".strip(), code)


class LibraryClient:
    """The same calls through `MlflowClient` (local stores, Databricks, auth plugins)."""

    def __init__(self, uri: str, budget: Budget) -> None:
        from kedro_gcs_bridge.tracking.library import bound_http_requests, open_local_store

        bound_http_requests()
        # Importing mlflow and creating a local store's schema once (under its lock, which has
        # a wait of its own) are work on this machine, not calls to a server: not budgeted.
        open_local_store(uri)
        from mlflow import MlflowClient

        self.budget = budget
        self.client = MlflowClient(tracking_uri=uri)

    def _call(self, action: Callable[[Any], T]) -> T:
        return self.budget.call(lambda: action(self.client))

    def experiment(self, name: str) -> tuple[str, dict[str, str]] | None:
        found = self._call(lambda c: c.get_experiment_by_name(name))
        return None if found is None else (str(found.experiment_id), dict(found.tags))

    def create_experiment(self, name: str, tags: Mapping[str, str]) -> str:
        return str(self._call(lambda c: c.create_experiment(name, tags=dict(tags))))

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self._call(lambda c: c.set_experiment_tag(experiment_id, key, value))

    def search_runs(self, experiment_id: str, query: str, max_results: int) -> list[Run]:
        runs = self._call(
            lambda c: c.search_runs([experiment_id], filter_string=query, max_results=max_results)
        )
        return [self._run_of(run) for run in runs]

    def create_run(self, experiment_id: str, tags: Mapping[str, str], run_name: str) -> str:
        made = self._call(lambda c: c.create_run(experiment_id, tags=dict(tags), run_name=run_name))
        return str(made.info.run_id)

    def get_run(self, run_id: str) -> Run:
        return self._run_of(self._call(lambda c: c.get_run(run_id)))

    def delete_run(self, run_id: str) -> None:
        self._call(lambda c: c.delete_run(run_id))

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        from mlflow.entities import Metric as MlflowMetric
        from mlflow.entities import Param, RunTag

        batch = {
            "metrics": [MlflowMetric(m.key, m.value, m.timestamp, m.step) for m in metrics],
            "params": [Param(k, v) for k, v in (params or {}).items()],
            "tags": [RunTag(k, v) for k, v in (tags or {}).items()],
        }
        for part in _batches(batch):
            self._call(lambda c, part=part: c.log_batch(run_id, **part))

    def set_status(self, run_id: str, status: str) -> None:
        if status == "RUNNING":
            self._call(lambda c: c.update_run(run_id, status="RUNNING"))
        else:
            self._call(lambda c: c.set_terminated(run_id, status))

    @staticmethod
    def _run_of(run: Any) -> Run:
        return Run(
            run_id=str(run.info.run_id),
            start_time=int(run.info.start_time or 0),
            status=str(run.info.status),
            tags=dict(run.data.tags),
            params=dict(run.data.params),
        )
