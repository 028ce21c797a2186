"""The rules Airflow applies to schedules and DAG ids, checked at create time: the same presets
and id pattern as Airflow's own, and cron expressions through croniter, Airflow's parser."""

from __future__ import annotations

import pytest

from kedro_gcs_bridge import config as model
from kedro_gcs_bridge.errors import ConfigError

GOOD = ["0 0 * * *", "*/15 * * * *", "1-5/2 * * * *", "0 0 L * *", "0 0 * JAN-MAR *"]
GOOD += ["0 0 * * mon-fri", "0 0 * * 1#2", "0 0 * * * 30", "@midnight", "@annually"]
BAD = ["@daly", "61 * * * *", "0 25 * * *", "0 0 0 * *", "0 0 32 * *", "0 0 * 13 *"]
BAD += ["0 0 * * 8", "*/0 * * * *", "a * * * *", "* * * *", "* * * * * * * *", "@hourly "]


@pytest.mark.parametrize("expression", GOOD)
def test_crons_airflow_takes_are_kept(expression: str) -> None:
    assert model.parse_config({"schedule": expression}).schedule == expression


@pytest.mark.parametrize("expression", BAD)
def test_crons_airflow_refuses_are_errors(expression: str) -> None:
    with pytest.raises(ConfigError, match=r"'schedule_interval' .* is not a cron expression"):
        model.parse_config({"schedule_interval": expression})


def test_a_close_preset_is_suggested() -> None:
    with pytest.raises(ConfigError, match="did you mean '@daily'"):
        model.parse_config({"schedule": "@daly"})


def test_presets_are_airflows() -> None:
    cron = pytest.importorskip("airflow.sdk.definitions.timetables._cron")
    assert set(cron.CRON_PRESETS) | {"@once", "@continuous"} == set(model.AIRFLOW_PRESETS)


def test_dag_id_pattern_is_airflows() -> None:
    node = pytest.importorskip("airflow.sdk.definitions._internal.node")
    assert node.KEY_REGEX.pattern == model.DAG_ID.pattern
