"""The tracking budget: how long all of a process's tracking calls may take together.

MLflow's own HTTP settings (`MLFLOW_HTTP_REQUEST_MAX_RETRIES`, `..._TIMEOUT`) bound one call,
and users copy MLflow's defaults (7 retries, 120 s) into their environment: minutes per call
against a dead server. The budget bounds every call whatever they say: each call runs in a
helper thread and is waited for only as long as the budget has left. A call that outlives it
is abandoned (its thread is a daemon: it never holds the process), the budget is spent, and
every later call fails at once without touching the server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from kedro_gcs_bridge.errors import TrackingError

#: `mlflow.budget_seconds`' default: one pod's tracking calls together.
DEFAULT_BUDGET_SECONDS = 30.0

T = TypeVar("T")


class BudgetSpentError(TrackingError):
    """The tracking budget ran out: tracking is off for the rest of the process."""


class Budget:
    """Seconds of tracking calls left to one process; shared by all its tracking calls."""

    def __init__(self, seconds: float = DEFAULT_BUDGET_SECONDS) -> None:
        self.seconds = seconds
        self.spent = 0.0
        self.expired = False
        self._lock = threading.Lock()

    def remaining(self) -> float:
        """Seconds left (0 once expired)."""
        return 0.0 if self.expired else max(0.0, self.seconds - self.spent)

    def describe(self) -> str:
        """`tracking budget of 2 s`, for messages."""
        return f"tracking budget of {self.seconds:g} s"

    def call(self, action: Callable[[], T]) -> T:
        """Runs `action` within what is left of the budget; its own errors pass through.

        Raises:
            BudgetSpentError: The budget was spent before, or ran out while `action` ran.
        """
        left = self.remaining()
        if left <= 0:
            self.expired = True
            raise BudgetSpentError(f"tracking is off: the {self.describe()} is spent")
        outcome: dict[str, object] = {}
        done = threading.Event()

        def run() -> None:
            try:
                outcome["value"] = action()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                outcome["error"] = exc
            finally:
                done.set()

        started = time.monotonic()
        threading.Thread(target=run, name="kedro-gcs-bridge-tracking", daemon=True).start()
        finished = done.wait(left)
        with self._lock:
            self.spent += time.monotonic() - started
            if not finished:
                self.expired = True
        if not finished:
            raise BudgetSpentError(f"no answer within the {self.describe()}; tracking is off")
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome["value"]  # type: ignore[return-value]
