"""Pod logs one line per record: the logging config of the image and of replay's processes.

Kedro's default logging is Rich: 80-column wrapping with a path column and box-drawn
tracebacks, so one record becomes many lines in `kubectl logs`, Airflow's task log and Cloud
Logging. `logging.yml` next to this module sends every record to stdout through
`PodFormatter`: one plain line per record (newlines inside a message or a traceback written as
`\\n`), or, when the pod's env sets `KEDRO_GCS_BRIDGE_STRUCTURED_LOGS=true`, one JSON object per
line in the shape Cloud Logging parses (`severity`, `message`, `time` and the labels dag_id,
task and run_id). Python warnings go through logging too, so they are records like the rest;
in structured mode so does the exception that ends a failed run.

The config is used only where the project has none of its own: `KEDRO_LOGGING_CONFIG` set, or
a `conf/logging.yml` in the project, win. `python -m kedro_gcs_bridge.pod.logging_format
[PROJECT]` writes it to the project's `conf/logging.yml` when it has none (the image's recipe
does so); `logging_env` gives replay's processes the same.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import sys
import traceback as tb
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro_gcs_bridge.pod.context import TaskContext

#: The logging config file: Kedro reads the file this variable names before its own lookup.
LOGGING_CONFIG_ENV = "KEDRO_LOGGING_CONFIG"
#: Kedro imports a logging class only from the modules this variable adds to its allowlist.
ALLOWLIST_ENV = "KEDRO_LOGGING_MODULE_ALLOWLIST"
CONFIG_FILE = Path(__file__).with_name("logging.yml")
#: Where Kedro looks for a project's own logging config when the variable is not set.
PROJECT_CONFIG_FILES = ("conf/logging.yml", "conf/logging.yaml")
#: Kedro's own plain format (its default_logging.yml), which replay's log reader knows.
PLAIN_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
#: Cloud Logging's field for labels of a structured log entry.
CLOUD_LABELS = "logging.googleapis.com/labels"
#: Cloud Logging label -> the `TaskContext` field that gives it.
_LABELS = {"dag_id": "dag_id", "task": "task", "run_id": "run_id"}


def _one_line(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\\n")


def _log_uncaught(kind: type[BaseException], error: BaseException, traceback: Any) -> None:
    """The exception that ends the process, as one record (the exit status stays 1)."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    logging.getLogger("kedro_gcs_bridge").critical(
        "%s: %s", kind.__name__, error, exc_info=(kind, error, traceback)
    )


def _print_uncaught(kind: type[BaseException], error: BaseException, traceback: Any) -> None:
    """Python's own traceback, exceptions named as Kedro's Rich traceback names them
    (`DatasetError: ...`, not `kedro.io.core.DatasetError: ...`)."""
    short: dict[str, str] = {}
    chained: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in chained:
        chained.add(id(current))
        name = type(current).__qualname__
        short[f"{type(current).__module__}.{name}"] = name
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    for text in tb.format_exception(kind, error, traceback):
        head = text.partition(":")[0].rstrip("\n")
        sys.stderr.write(short.get(head, head) + text[len(head) :])


class PodFormatter(logging.Formatter):
    """One line per record: plain text, or a Cloud Logging JSON object in structured mode."""

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Any = "%",
        validate: bool = True,
        *,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(fmt or PLAIN_FORMAT, datefmt, style, validate, defaults=defaults)
        # Only what it shows: logging is set up before Kedro runs, and a bad value of any
        # other variable is the runner's to report.
        context = TaskContext.from_env(only={"structured_logs", *_LABELS.values()})
        self.structured = bool(context.structured_logs)
        self.labels = {label: getattr(context, field) for label, field in _LABELS.items()}
        # `warnings.warn` output is two lines on stderr otherwise (message, source line).
        logging.captureWarnings(True)
        # For Cloud Logging, the traceback that ends a failed `kedro run` is one entry too;
        # plain text keeps Python's own, which replay reads the failure's cause from.
        if sys.excepthook is sys.__excepthook__:
            sys.excepthook = _log_uncaught if self.structured else _print_uncaught

    def format(self, record: logging.LogRecord) -> str:
        if not self.structured:
            return _one_line(super().format(record))
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            message += "\n" + self.formatStack(record.stack_info)
        entry = {
            "severity": record.levelname,
            "message": message,
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "logger": record.name,
            CLOUD_LABELS: {key: value for key, value in self.labels.items() if value},
        }
        return json.dumps(entry)


def _own_config(project: Path, environ: Mapping[str, str]) -> bool:
    """True when the project (or its environment) chose a logging config itself."""
    if environ.get(LOGGING_CONFIG_ENV):
        return True
    return any((project / name).is_file() for name in PROJECT_CONFIG_FILES)


def logging_env(project: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables that give a `kedro` process in `project` this module's logging config;
    none when the project has its own."""
    if _own_config(project, environ):
        return {}
    allowed = [part for part in environ.get(ALLOWLIST_ENV, "").split(",") if part]
    return {
        LOGGING_CONFIG_ENV: str(CONFIG_FILE),
        ALLOWLIST_ENV: ",".join([*allowed, __name__]),
    }


def install(project: Path) -> bool:
    """Writes the config to the project's `conf/logging.yml` unless the project has a logging
    config already; True when it was written."""
    if _own_config(project, {}):
        return False
    target = project / PROJECT_CONFIG_FILES[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CONFIG_FILE, target)
    return True


if __name__ == "__main__":
    install(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
