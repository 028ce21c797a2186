"""The rules Airflow applies to schedules and DAG ids, checked without Airflow: the same
presets and id pattern as Airflow's own, and the cron check without croniter agreeing with it."""

from __future__ import annotations

import sys

import pytest

from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.planning import rules

EXPRESSIONS = [
    "0 0 * * *",
    "*/15 * * * *",
    "5/15 * * * *",
    "1-5/2 * * * *",
    "1,2,3 * * * *",
    "0 0 1 */3 *",
    "0 0 ? * *",
    "0 0 L * *",
    "0 0 1,L * *",
    "0 0 * JAN-MAR *",
    "0 0 * * SUN",
    "0 0 * * mon-fri",
    "0 0 * * 7",
    "0 0 * * 1#2",
    "0 0 * * mon#6",
    "0 0 * * * 30",
    "0 0 * * * 60",
    "0 0 * * * 30 2030",
    "0 0 * * * 30 1900",
    "@midnight",
    "@annually",
    "@reboot",
    "@daly",
    "61 * * * *",
    "0 25 * * *",
    "0 0 0 * *",
    "0 0 32 * *",
    "0 0 * 13 *",
    "0 0 * * 8",
    "*/0 * * * *",
    "1-60 * * * *",
    "a * * * *",
    "0,,1 * * * *",
    "H * * * *",
    "* * * *",
    "* * * * * * * *",
    "",
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_the_check_without_croniter_agrees_with_croniter(expression: str) -> None:
    croniter = pytest.importorskip("croniter")
    try:
        croniter.croniter(expression)
    except (croniter.CroniterBadCronError, croniter.CroniterNotAlphaError, ValueError):
        accepted = False
    else:
        accepted = True
    assert (rules._cron_problem_without_croniter(expression) is None) == accepted


def test_presets_are_airflows() -> None:
    cron = pytest.importorskip("airflow.sdk.definitions.timetables._cron")
    assert set(cron.CRON_PRESETS) | {"@once", "@continuous"} == set(rules.AIRFLOW_PRESETS)


def test_dag_id_pattern_is_airflows() -> None:
    node = pytest.importorskip("airflow.sdk.definitions._internal.node")
    assert node.KEY_REGEX.pattern == rules.DAG_ID.pattern


def test_without_croniter_a_bad_cron_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "croniter", None)  # import croniter -> ImportError
    with pytest.raises(ConfigError, match="'schedule' '61 \\* \\* \\* \\*' is not a cron"):
        rules.as_schedule("schedule", "61 * * * *")
    assert rules.as_schedule("schedule", "0 3 * * mon-fri") == "0 3 * * mon-fri"
