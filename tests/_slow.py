"""The `slow` marker (registered in pyproject.toml; `make test-fast` leaves slow tests out).

Tests are marked in place (`@pytest.mark.slow`, or `pytestmark` for a whole file). A test not
marked slow that starts a slow process (itself or through its fixtures, seen by an audit hook)
fails, naming the command, so the fast subset stays fast. Registered in conftest.py;
tests/test_markers.py checks it.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _prefetch import fixture_of

#: Commands only a `slow` test may start (in its fixtures or its body): a pipeline run, a
#: replay, Airflow's `dags test`, the demo, a benchmark, an install into a new environment.
SLOW_COMMAND = re.compile(
    r"/kedro run\b|gcs-bridge replay\b|/airflow dags test\b|demo\.sh|/benchmarks/|"
    r"\bpip install\b|\buv venv\b"
)
_started: list[str] = []
#: Commands started by prefetched fixtures (tests/_prefetch.py), by fixture.
_prefetched: dict[str, list[str]] = {}


def _record_processes(event: str, args: tuple[Any, ...]) -> None:
    """An audit hook: the command line of every process this test session starts."""
    if event == "subprocess.Popen":
        argv = args[1]
        command = " ".join(map(str, argv)) if isinstance(argv, list | tuple) else str(argv)
        fixture = fixture_of(threading.current_thread())
        if fixture is None:
            _started.append(command)
        else:
            _prefetched.setdefault(fixture, []).append(command)


def started_elsewhere(fixture: str) -> None:
    """The processes a prefetched fixture started count for the test taking it now."""
    _started.extend(_prefetched.get(fixture, ()))


sys.addaudithook(_record_processes)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _started.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A test not marked `slow` that started a slow command (itself or through its fixtures)
    fails, naming the command: the fast subset stays fast."""
    outcome = yield
    report = outcome.get_result()
    if call.when != "call" or report.failed or item.get_closest_marker("slow"):
        return
    slow = [command for command in _started if SLOW_COMMAND.search(command)]
    if slow:
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} is not marked slow but started {len(slow)} slow process(es), e.g. "
            f"`{slow[0][:300]}`: mark it `@pytest.mark.slow`"
        )
