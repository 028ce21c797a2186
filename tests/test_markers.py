"""The `slow` marker: `make test-fast` (`pytest -m "not slow"`) leaves out every test that starts
a pipeline run, a replay, `airflow dags test`, the demo, a benchmark or an install.

tests/_slow.py fails any test not marked slow that starts such a process; that is checked here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _slow import SLOW_COMMAND

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"


@pytest.mark.parametrize(
    ("command", "slow"),
    [
        ("/venv/bin/kedro run --runner kedro_gcs_bridge.GCSRunner", True),
        ("/venv/bin/kedro gcs-bridge replay dags/x.py --parallel 2", True),
        ("/venv/bin/airflow dags test spaceflights", True),
        ("bash /repo/examples/demo.sh", True),
        ("/venv/bin/python /repo/benchmarks/handoff.py --quick", True),
        ("/venv/bin/kedro airflow create -j t.j2 -t dags", False),
        ("/venv/bin/kedro gcs-bridge plan --format mermaid", False),
        ("/venv/bin/python -c import time; time.sleep(1)", False),
    ],
)
def test_slow_commands(command: str, slow: bool) -> None:
    assert bool(SLOW_COMMAND.search(command)) is slow


_CHILD = """
import subprocess, sys
import pytest

CODE = "import sys; sys.exit(0)"

def test_unmarked():
    subprocess.run([sys.executable, "-c", CODE, "/x/kedro run"], check=True)

@pytest.mark.slow
def test_marked():
    subprocess.run([sys.executable, "-c", CODE, "/x/kedro run"], check=True)

def test_quiet():
    subprocess.run([sys.executable, "-c", CODE, "/x/kedro airflow create"], check=True)
"""


def test_an_unmarked_test_starting_a_slow_process_fails(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\npytest_plugins = ['_slow']\n"
    )
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n")
    pytester.makepyfile(test_child=_CHILD)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_unmarked is not marked slow but started 1 slow process*"])


def test_prefetched_work_is_recognised_by_its_thread_name() -> None:
    import threading

    from _prefetch import fixture_of

    assert fixture_of(threading.Thread(name="prefetch|cli_runs|")) == "cli_runs"
    assert fixture_of(threading.Thread(name="prefetch|cli_runs|-jobs_0")) == "cli_runs"
    assert fixture_of(threading.Thread(name="MainThread")) is None
    assert fixture_of(threading.Thread(name="ThreadPoolExecutor-0_1")) is None


def test_the_suite_runs_without_xdist() -> None:
    """`make test WORKERS=0` (`-p no:xdist`): the conftest's scheduler hook is optional, not an
    unknown hook that stops pytest before any test."""
    one = "tests/test_markers.py::test_prefetched_work_is_recognised_by_its_thread_name"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q", one],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout
