"""Expensive session fixtures started in the background as soon as the session knows it needs
them, so their processes use the core that the unit tests, one at a time, leave idle.

A module registers the work behind a session fixture (`register`); once collection is done,
each registered fixture that a selected test uses is started, one at a time, in a thread
named `prefetch`. The fixture then takes the result (`result`), waiting for it if needed, or
computes it there when nothing was started (a test run alone). The work gets a folder of its
own and the environment as it was before any test ran (a test's monkeypatched variables never
reach a prefetched process). The processes it starts count for each test that takes the
fixture, as if the fixture had started them there (tests/_slow.py). conftest.py calls
`start_needed` when collection is done and `stop` at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

#: What a prefetched fixture computes: from a fresh folder and the environment to use.
Work = Callable[[Path, Mapping[str, str]], Any]
#: Threads running a prefetched fixture's work are named `prefetch|<fixture>|...`.
THREAD = "prefetch"

_work: dict[str, Work] = {}
_started: dict[str, Future[Any]] = {}
_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD)
_roots: list[Path] = []
#: Set when the session ends: long work checks it between steps and stops early.
stopping = threading.Event()


def register(fixture: str, work: Work) -> None:
    """Declares the work behind the session fixture `fixture`."""
    _work[fixture] = work


def fixture_of(thread: threading.Thread) -> str | None:
    """The prefetched fixture a thread works for (helper threads are named after it)."""
    parts = thread.name.split("|")
    return parts[1] if len(parts) > 2 and parts[0] == THREAD else None


def result(fixture: str) -> Any:
    """The fixture's value: the prefetched result, or the work done now."""
    if fixture not in _started:
        return _work[fixture](_folder(fixture), dict(os.environ))
    value = _started[fixture].result()
    from _slow import started_elsewhere

    started_elsewhere(fixture)
    return value


def _folder(fixture: str) -> Path:
    if not _roots:
        _roots.append(Path(tempfile.mkdtemp(prefix="kedro-gcs-bridge-prefetch-")))
    return Path(tempfile.mkdtemp(prefix=f"{fixture}-", dir=_roots[0]))


def _run(fixture: str, environ: Mapping[str, str]) -> Any:
    thread = threading.current_thread()
    name, thread.name = thread.name, f"{THREAD}|{fixture}|"
    try:
        return _work[fixture](_folder(fixture), environ)
    finally:
        thread.name = name


def start_needed(session: pytest.Session) -> None:
    """Starts the registered work of every fixture a selected test uses (collection done).

    Not under pytest-xdist: a worker collects every test but runs only those it is sent, so
    a fixture is computed where a test first asks for it."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    needed = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    environ = dict(os.environ)
    for fixture in _work:
        if fixture in needed and fixture not in _started:
            _started[fixture] = _pool.submit(_run, fixture, environ)


def stop() -> None:
    """Stops what has not started, waits for what runs, removes the folders."""
    stopping.set()
    for future in _started.values():
        future.cancel()
    _pool.shutdown(wait=True, cancel_futures=True)
    for root in _roots:
        shutil.rmtree(root, ignore_errors=True)
