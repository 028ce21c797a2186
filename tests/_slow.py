"""The `slow` marker (registered in pyproject.toml; `make test-fast` leaves slow tests out).

Tests are marked in place (`@pytest.mark.slow`), or here by name in files other work is
changing now (`SLOW_ELSEWHERE`). A test not marked slow that starts a slow process (itself or
through its fixtures, seen by an audit hook) fails, naming the command, so the fast subset
stays fast. Registered in conftest.py; tests/test_markers.py checks both.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _prefetch import fixture_of

#: Slow tests in files other work is changing now, by name ("*": the whole file).
SLOW_ELSEWHERE: dict[str, tuple[str, ...]] = {
    "tests/pod/test_faults.py": ("*",),
    "tests/pod/test_runner_pod_start.py": ("*",),
    "tests/pod/test_runner.py": ("TestExampleProject",),
    "tests/pod/test_transfer.py": (
        "TestFaults",
        "test_a_killed_save_commits_nothing_and_its_parts_go_with_runs_gc",
    ),
    "tests/pod/test_formats.py": ("TestRunnerParams",),
    "tests/ops/test_finalize.py": ("test_finalize_in_airflow_follows_task_states_and_retries",),
    "tests/ops/test_runs.py": (
        "test_unreachable_gcs_fails_fast_with_one_line",
        "test_runs_cli_lists_and_collects",
    ),
    "tests/dag/test_parity.py": ("test_tags_conf_source_and_env_reach_the_pods",),
    "tests/tracking/test_tracking.py": (
        "TestTrackedReplay",
        "test_a_dead_tracking_server_costs_seconds_not_the_run",
        "test_the_node_error_wins_when_tracking_fails_mid_run",
        "test_required_tracking_fails_fast_before_any_node",
        "test_processes_opening_a_fresh_sqlite_store_together",
        "test_fresh_sqlite_store_replayed_three_at_a_time",
    ),
}
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


def _slow_by_name(item: pytest.Item) -> bool:
    path, *parts = item.nodeid.split("::")
    names = SLOW_ELSEWHERE.get(path, ())
    return "*" in names or any(part.split("[")[0] in names for part in parts)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _slow_by_name(item):
            item.add_marker(pytest.mark.slow)


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
            f"`{slow[0][:300]}`: mark it `@pytest.mark.slow` (or list it in SLOW_ELSEWHERE)"
        )
