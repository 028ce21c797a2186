"""The rules Airflow, Kubernetes and MLflow apply to what a DAG file names: the schedule, the
DAG id, Kubernetes names and the tracking URI, read strictly like `values.py` reads numbers.

Airflow applies its rules only when it imports the DAG file, Kubernetes when a pod is created
and MLflow when a pod first tracks: checked here, each becomes an error of `kedro airflow
create` naming the key, before any file is written. Airflow is often not installed where the
DAG is created, so nothing here imports it: the presets and the id pattern are Airflow's
(tests compare them), and cron expressions go through croniter, the parser Airflow uses, or,
without croniter, through a check of the same fields and ranges.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from kedro_gcs_bridge.errors import ConfigError

#: Airflow 3's schedule presets (`@once`, `@continuous` and its CRON_PRESETS).
AIRFLOW_PRESETS = (
    "@once",
    "@continuous",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@quarterly",
    "@yearly",
)
#: Aliases croniter itself accepts (Airflow passes any other string to croniter).
_CRONITER_ALIASES = frozenset(
    {"@midnight", "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually"}
)
#: Airflow's KEY_REGEX for DAG and task ids, and their length limit.
DAG_ID = re.compile(r"^[\w.-]+$")
DAG_ID_MAX = 250
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: Cron fields in croniter's order: (name, lowest, highest, names for 0.. or 1..).
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {name: i for i, name in enumerate(_DAYS)}),
    ("second", 0, 59, {}),
    ("year", 1970, 2099, {}),
)
_ITEM = re.compile(r"^(\*|\?|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")


def _number(text: str, low: int, high: int, names: dict[str, int]) -> bool:
    value = names.get(text, int(text) if text.isdigit() else None)
    return value is not None and low <= value <= high


def _item_ok(item: str, field: tuple[str, int, int, dict[str, int]]) -> bool:
    name, low, high, names = field
    if name == "day of month" and item == "l":
        return True
    if name == "day of week" and "#" in item:
        day, _, nth = item.partition("#")
        return _number(day, low, high, names) and nth in {"1", "2", "3", "4", "5"}
    match = _ITEM.match(item)
    if match is None or (match[2] is not None and int(match[2]) == 0):
        return False
    if match[1] in {"*", "?"}:
        return match[1] == "*" or name in {"day of month", "day of week"}
    return all(_number(part, low, high, names) for part in match[1].split("-"))


def _cron_problem_without_croniter(expression: str) -> str | None:
    """What is wrong with a cron expression, by croniter's fields and ranges; None if fine."""
    if expression in _CRONITER_ALIASES:
        return None
    words = expression.lower().split()
    if not 5 <= len(words) <= 7:
        return "a cron expression has 5 fields (minute hour day-of-month month day-of-week)"
    for word, field in zip(words, _FIELDS, strict=False):
        if not all(_item_ok(item, field) for item in word.split(",")):
            return f"its {field[0]} field '{word}' is out of range or not cron syntax"
    return None


def _croniter_problem(expression: str) -> str | None:
    """What croniter (Airflow's cron parser) finds wrong; imported here only, so a pod that
    reads the config never pays for it."""
    try:
        from croniter import croniter
    except ImportError:
        return _cron_problem_without_croniter(expression)
    try:
        croniter(expression)
    except (ValueError, KeyError) as exc:  # croniter's errors are ValueErrors
        return str(exc)
    return None


def as_schedule(key: str, value: Any) -> str | None:
    """An Airflow schedule: None, one of Airflow's presets, or a cron expression Airflow takes.

    Raises:
        ConfigError: Anything Airflow would refuse when it imports the DAG file.
    """
    if value is None:
        return None
    text = str(value)
    if text in AIRFLOW_PRESETS:
        return text
    problem = _croniter_problem(text)
    if problem is None:
        return text
    close = difflib.get_close_matches(text, AIRFLOW_PRESETS, n=1) if text.startswith("@") else []
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(
        f"'{key}' {text!r} is not a cron expression or an Airflow preset{hint}: "
        f"{problem.rstrip('.')}. "
        f"Write a cron like '0 3 * * *' or one of {list(AIRFLOW_PRESETS)}."
    )


def as_dag_id(key: str, value: Any) -> str:
    """A DAG id Airflow accepts: letters, digits, `_`, `.`, `-`, at most 250 characters.

    Raises:
        ConfigError: Anything else.
    """
    text = str(value)
    if not DAG_ID.match(text):
        raise ConfigError(
            f"'{key}' {text!r} may only hold letters, digits, '_', '.' and '-' (Airflow's rule)."
        )
    if len(text) > DAG_ID_MAX:
        raise ConfigError(f"'{key}' is {len(text)} characters long; Airflow allows {DAG_ID_MAX}.")
    return text


def _kubernetes_name(key: str, value: Any, pattern: re.Pattern[str], limit: int) -> str:
    text = str(value)
    if not pattern.match(text):
        raise ConfigError(
            f"'{key}' {text!r} is not an RFC 1123 name: lowercase letters, digits and '-'"
            f"{' and .' if pattern is _DNS_SUBDOMAIN else ''}, starting and ending with a "
            "letter or digit."
        )
    if len(text) > limit:
        raise ConfigError(f"'{key}' is {len(text)} characters long; Kubernetes allows {limit}.")
    return text


def as_namespace(key: str, value: Any) -> str:
    """A Kubernetes namespace: an RFC 1123 label of at most 63 characters.

    Raises:
        ConfigError: Anything else.
    """
    return _kubernetes_name(key, value, _DNS_LABEL, 63)


def as_service_account(key: str, value: Any) -> str:
    """A Kubernetes service account: an RFC 1123 subdomain of at most 253 characters.

    Raises:
        ConfigError: Anything else.
    """
    return _kubernetes_name(key, value, _DNS_SUBDOMAIN, 253)


def _needs_host(uri: str) -> str | None:
    parts = urlsplit(uri)
    return None if parts.hostname else f"write {parts.scheme}://host[:port][/path]"


def _needs_path(example: str) -> Callable[[str], str | None]:
    def check(uri: str) -> str | None:
        parts = urlsplit(uri)
        ok = parts.netloc in {"", "localhost"} and parts.path.startswith("/") and parts.path != "/"
        return None if ok else f"write {example}"

    return check


def _databricks(uri: str) -> str | None:
    parts = urlsplit(uri)
    return None if uri in {"databricks", "databricks-uc"} or parts.netloc else "write databricks"


#: MLflow's tracking stores by scheme, each with the check of the URI's shape.
_TRACKING_SCHEMES: dict[str, Callable[[str], str | None]] = {
    "http": _needs_host,
    "https": _needs_host,
    "databricks": _databricks,
    "databricks-uc": _databricks,
    "file": _needs_path("file:///absolute/path/mlruns"),
    "sqlite": _needs_path("sqlite:///absolute/path/mlflow.db"),
    "postgresql": _needs_host,
    "mysql": _needs_host,
    "mssql": _needs_host,
}


def _refuse_credentials(key: str, uri: str) -> None:
    """A URI with `user:password@` would put the password into the DAG file, in plain text."""
    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError:
        return
    if password is None:
        return
    host = parts.netloc.rsplit("@", 1)[-1]
    shown = parts._replace(netloc=f"{parts.username}:***@{host}").geturl()
    raise ConfigError(
        f"'{key}' holds a password ({shown}): the DAG file would carry it in plain text. Write "
        "the URI without credentials and give pods MLFLOW_TRACKING_USERNAME / "
        "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) from a Kubernetes Secret."
    )


def as_tracking_uri(key: str, value: Any) -> str:
    """An MLflow tracking URI of a known store, in the shape that store needs.

    Raises:
        ConfigError: An unknown scheme (`htp:/oops`), a bare path, or a URI without its host
            or path.
    """
    text = str(value).strip()
    _refuse_credentials(key, text)
    scheme = text if text in {"databricks", "databricks-uc"} else urlsplit(text).scheme
    check = _TRACKING_SCHEMES.get(scheme.split("+", 1)[0].lower())
    if check is None:
        close = difflib.get_close_matches(scheme, list(_TRACKING_SCHEMES), n=1) if scheme else []
        hint = f"did you mean '{close[0]}'? " if close else ""
        if not scheme:
            hint = "a path is not a URI: write file:///absolute/path/mlruns. "
        raise ConfigError(
            f"'{key}' {text!r} is not an MLflow tracking URI: {hint}Known schemes: "
            f"{sorted(_TRACKING_SCHEMES)}."
        )
    problem = check(text)
    if problem:
        raise ConfigError(f"'{key}' {text!r} misses its host or path: {problem}.")
    return text
