"""The airflow config: merging like kedro-airflow, reading keys into a typed config, and the
messages for values of the wrong type or form."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.planning.config import (
    BridgeConfig,
    merge_airflow_config,
    parse_config,
    unknown_keys,
)


class TestMerge:
    RAW: dict[str, Any] = {
        "default": {"a": "default", "b": "default", "c": "default"},
        "my_pipeline": {"b": "pipeline", "c": "pipeline"},
        "other": {"a": "other"},
    }

    def test_default_then_pipeline_key_then_params(self) -> None:
        merged = merge_airflow_config(self.RAW, "my_pipeline", {"c": "params"})
        assert merged == {"a": "default", "b": "pipeline", "c": "params"}

    def test_other_pipelines_keys_do_not_apply(self) -> None:
        assert merge_airflow_config(self.RAW, "unlisted")["a"] == "default"

    @pytest.mark.parametrize(
        "raw", [{}, {"default": None}, {"default": None, "p": None}], ids=["empty", "null", "nulls"]
    )
    def test_missing_or_empty_sections(self, raw: dict[str, Any]) -> None:
        assert merge_airflow_config(raw, "p", {"x": 1}) == {"x": 1}

    def test_merge_is_shallow_like_kedro_airflow(self) -> None:
        raw = {
            "default": {"machine_classes": {"big": {"cpu": "4"}}},
            "p": {"machine_classes": {"small": {"cpu": "1"}}},
        }
        assert merge_airflow_config(raw, "p")["machine_classes"] == {"small": {"cpu": "1"}}


class TestParse:
    def test_example_values(self) -> None:
        config = parse_config(
            {
                "gcp_project_id": "example-project",
                "k8s_namespace": "kedro",
                "max_active_runs": 3,
                "retries": "2",
                "catchup": "false",
                "deferrable": "yes",
                "tags": ["nightly", 7],
                # Template variables and unknown keys are not config: they are ignored.
                "pipeline": object(),
                "team_owner": "data",
            }
        )
        assert config.gcp_project_id == "example-project"
        assert config.k8s_namespace == "kedro"
        assert (config.max_active_runs, config.retries) == (3, 2)
        assert (config.catchup, config.deferrable) == (False, True)
        assert config.tags == ("nightly", "7")

    def test_null_keeps_the_default(self) -> None:
        assert parse_config({"retries": None, "k8s_namespace": None}) == BridgeConfig()

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ([2023, 1, 1], (2023, 1, 1)),
            ([2023, 1, 1, 6, 30], (2023, 1, 1, 6, 30)),
            (["2023", "02", "03"], (2023, 2, 3)),
            ("2023-02-03", (2023, 2, 3)),
            (dt.date(2023, 2, 3), (2023, 2, 3)),
            (dt.datetime(2023, 2, 3, 4, 5), (2023, 2, 3, 4, 5)),
        ],
    )
    def test_start_date(self, value: Any, expected: tuple[int, ...]) -> None:
        assert parse_config({"start_date": value}).start_date == expected

    @pytest.mark.parametrize(
        "value", [[2023, 13, 1], [2023, 1], "yesterday", 20230101, [2023, "jan", 1]]
    )
    def test_bad_start_date_is_named(self, value: Any) -> None:
        with pytest.raises(ConfigError, match="'start_date'"):
            parse_config({"start_date": value})

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ({"schedule": "@daily"}, "@daily"),
            ({"schedule_interval": "@daily"}, "@daily"),
            ({"schedule_interval": "0 3 * * *", "schedule": "0 3 * * *"}, "0 3 * * *"),
            ({"schedule_interval": None}, None),
            ({"schedule": None, "schedule_interval": None}, None),
            ({}, None),
        ],
    )
    def test_schedule(self, raw: dict[str, Any], expected: str | None) -> None:
        assert parse_config(raw).schedule == expected

    def test_schedule_and_schedule_interval_that_disagree(self) -> None:
        with pytest.raises(ConfigError) as caught:
            parse_config({"schedule": "@daily", "schedule_interval": "@hourly"})
        assert "'schedule' and 'schedule_interval'" in str(caught.value)

    @pytest.mark.parametrize(("value", "minutes"), [(5, 5.0), (2.5, 2.5), (0, 0.0)])
    def test_retry_delay_is_in_minutes(self, value: float, minutes: float) -> None:
        assert parse_config({"retry_delay": value}).retry_delay == minutes

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("grouping", "maybe"),
            ("strict", 3),
            ("catchup", ["yes"]),
            ("retries", -1),
            ("retries", 1.5),
            ("max_active_runs", "many"),
            ("spot_retries", True),
            ("schedule_timeout_seconds", "-5"),
            ("retry_delay", "5"),
            ("retry_delay", True),
            ("grouping_prefix", ""),
            ("resources_tag_prefix", 5),
            ("start_date", {"year": 2023}),
            ("default_machine_class", "nope"),
            ("machine_classes", {"x": {"cpus": 1}}),
        ],
    )
    def test_bad_value_names_the_key(self, key: str, value: Any) -> None:
        with pytest.raises(ConfigError) as caught:
            parse_config({key: value})
        assert key in str(caught.value)

    @pytest.mark.parametrize(
        ("key", "value", "suggestion"),
        [
            ("grouping_prefix", "airflow:", "airflow."),
            ("resources_tag_prefix", "machine:", "machine."),
        ],
    )
    def test_colon_prefix_from_kedro_0_18_suggests_a_dot(
        self, key: str, value: str, suggestion: str
    ) -> None:
        with pytest.raises(ConfigError) as caught:
            parse_config({key: value})
        message = str(caught.value)
        assert "Kedro 1.x" in message
        assert f"set '{key}: {suggestion}'" in message
        assert f"Tag nodes '{suggestion}<name>'" in message

    def test_a_single_tag_string_is_one_tag(self) -> None:
        try:
            tags = parse_config({"tags": "nightly"}).tags
        except ConfigError as exc:
            assert "tags" in str(exc)
        else:
            assert tags == ("nightly",)

    @pytest.mark.parametrize(
        ("key", "value"), [("tags", 5), ("machine_classes", ["big"])], ids=["tags", "classes"]
    )
    def test_wrong_container_type_is_a_config_error(self, key: str, value: Any) -> None:
        with pytest.raises(ConfigError, match=key):
            parse_config({key: value})


class TestHelpers:
    def test_unknown_keys_suggest_the_closest_known_key(self) -> None:
        notes = unknown_keys(
            {
                "grouping_prefx": "airflow.",
                "team": "data",
                "retries": 1,
                "pipeline": None,
                "gcs_bridge": None,
            }
        )
        assert notes == [
            "airflow config key 'grouping_prefx' is not used by kedro-gcs-bridge "
            "(did you mean 'grouping_prefix'?)",
            "airflow config key 'team' is not used by kedro-gcs-bridge",
        ]

    def test_missing_deployment_keys(self) -> None:
        config = parse_config({"gcp_project_id": "p", "docker_image": "i"})
        assert config.missing_deployment_keys() == [
            "gcp_region",
            "gcp_gke_cluster_name",
            "gcs_bridge_root",
        ]
