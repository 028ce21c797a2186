"""The airflow config: merging like kedro-airflow, reading keys into a typed config, and the
messages for values of the wrong type or form."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import CREATE, Edit, Job, run_jobs

from kedro_gcs_bridge.config import (
    MOVED,
    BridgeConfig,
    merge_airflow_config,
    parse_config,
    section_problems,
    unknown_keys,
)
from kedro_gcs_bridge.dag.dagfile import build_dag_file
from kedro_gcs_bridge.errors import ConfigError, DeprecatedKeyWarning

#: The origin's keys (kedro-airflow + GKE): top-level, with their meaning.
ORIGIN_KEYS = [
    "grouping",
    "grouping_prefix",
    "resources_tag_prefix",
    "gcp_project_id",
    "gcp_region",
    "gcp_gke_cluster_name",
    "k8s_namespace",
    "k8s_service_account",
    "docker_image",
    "start_date",
    "max_active_runs",
    "schedule_interval",
    "catchup",
    "owner",
    "depends_on_past",
    "email_on_failure",
    "email_on_retry",
    "retries",
    "retry_delay",
]


def nested(path: str, value: Any) -> dict[str, Any]:
    """`("pod.labels", v)` -> `{"pod": {"labels": v}}`."""
    *groups, key = path.split(".")
    config: dict[str, Any] = {key: value}
    for group in reversed(groups):
        config = {group: config}
    return config


def read(config: Any, path: str) -> Any:
    """The value at a key path (`pod.labels`; `schedule_interval` is read as `schedule`)."""
    for part in path.replace("schedule_interval", "schedule").split("."):
        config = getattr(config, part)
    return config


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

    def test_groups_merge_key_by_key(self) -> None:
        raw = {
            "default": {"mlflow": {"tracking_uri": "http://m", "required": False}},
            "p": {"mlflow": {"required": True}},
        }
        params = {"mlflow": {"experiment": "x"}, "pod.deferrable": "true"}
        merged = merge_airflow_config(raw, "p", params)
        assert merged["mlflow"] == {"tracking_uri": "http://m", "required": True, "experiment": "x"}
        assert merged["pod"] == {"deferrable": "true"}

    def test_dotted_params_reach_nested_keys(self) -> None:
        """`kedro airflow create --params mlflow.required=true` as Kedro's _split_params
        hands it over (nested by OmegaConf), over the file's `mlflow:`."""
        from omegaconf import OmegaConf

        params = OmegaConf.to_container(OmegaConf.from_dotlist(["mlflow.required=true"]))
        raw = {"default": {"mlflow": {"tracking_uri": "http://m.example.com"}}}
        config = parse_config(merge_airflow_config(raw, "p", params))
        assert (config.mlflow.required, config.mlflow.tracking_uri) == (
            True,
            "http://m.example.com",
        )

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
                "pod": {"deferrable": "yes"},
                "dag": {"tags": ["nightly", 7]},
                # Template variables and unknown keys are not config: they are ignored.
                "pipeline": object(),
                "team_owner": "data",
            }
        )
        assert config.gcp_project_id == "example-project"
        assert config.k8s_namespace == "kedro"
        assert (config.max_active_runs, config.retries) == (3, 2)
        assert (config.catchup, config.pod.deferrable) == (False, True)
        assert config.dag.tags == ("nightly", "7")

    def test_null_keeps_the_default(self) -> None:
        assert parse_config({"retries": None, "k8s_namespace": None}) == BridgeConfig()
        assert parse_config({"pod": {"labels": None}, "mlflow": None}) == BridgeConfig()

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
            ("pod.schedule_timeout_seconds", "-5"),
            ("pod.lables", {}),
            ("default_args.retries", 2),
            ("default_args.queu", "q"),
            ("mlflow.budget_seconds", 0),
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
            parse_config(nested(key, value))
        assert f"'{key}" in str(caught.value)

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
        assert f"'{key}'" in message and "Kedro 1.x" in message
        assert f"set '{suggestion}' instead" in message
        assert f"Tag nodes '{suggestion}<name>'" in message

    def test_a_single_tag_string_is_one_tag(self) -> None:
        assert parse_config({"dag": {"tags": "nightly"}}).dag.tags == ("nightly",)

    @pytest.mark.parametrize(
        ("key", "value"),
        [("dag.tags", 5), ("machine_classes", ["big"]), ("pod", "x")],
        ids=["tags", "classes", "group"],
    )
    def test_wrong_container_type_is_a_config_error(self, key: str, value: Any) -> None:
        with pytest.raises(ConfigError, match=f"'{key}'"):
            parse_config(nested(key, value))

    def test_budget_seconds(self) -> None:
        assert BridgeConfig().mlflow.budget_seconds == 30
        assert parse_config({"mlflow": {"budget_seconds": 5}}).mlflow.budget_seconds == 5


class TestTopLevel:
    def test_the_origins_keys_stay_at_the_top(self) -> None:
        top = {*BridgeConfig.model_fields, "schedule_interval"}
        assert set(ORIGIN_KEYS) <= top
        assert len(top) <= 35, sorted(top)

    def test_default_args_pass_other_task_arguments_as_is(self) -> None:
        config = parse_config({"default_args": {"queue": "gpu", "email": ["a@b.c"], "pool": "p"}})
        assert config.default_args.as_is() == {"queue": "gpu", "email": ["a@b.c"]}
        assert config.default_args.pool == "p"

    def test_the_as_is_arguments_are_airflows(self) -> None:
        import inspect

        sdk = pytest.importorskip("airflow.sdk")
        from kedro_gcs_bridge.config import DAG_ARGS_AS_IS, TASK_ARGS_AS_IS, TASK_CALLBACKS

        task_args = set(inspect.signature(sdk.BaseOperator.__init__).parameters)
        assert TASK_ARGS_AS_IS | set(TASK_CALLBACKS) <= task_args
        assert set(inspect.signature(sdk.DAG.__init__).parameters) >= DAG_ARGS_AS_IS


#: One good value for each old flat spelling.
OLD_VALUES: dict[str, Any] = {
    "pod_labels": {"team": "data"},
    "pod_annotations": {"a.example.com/x": "y"},
    "pod_template_file": "/opt/pod.yaml",
    "pod_override": {"spec": {"priorityClassName": "b"}},
    "security_context": {"container": {"readOnlyRootFilesystem": True}},
    "env_from_secrets": ["bulk"],
    "secret_env": {"TOKEN": "s:k"},
    "tolerations": [{"key": "k", "operator": "Exists"}],
    "affinity": {"nodeAffinity": {}},
    "node_selector": {"pool": "batch"},
    "image_pull_policy": "Always",
    "on_finish_action": "keep_pod",
    "deferrable": True,
    "gcp_conn_id": "gke",
    "schedule_timeout_seconds": 60,
    "startup_timeout_seconds": 60,
    "env_vars": {"LOG_LEVEL": "INFO"},
    "mlflow_tracking_uri": "http://m.example.com",
    "mlflow_experiment": "e",
    "mlflow_required": True,
    "mlflow_metrics": ["metrics"],
    "execution_timeout": 30,
    "pool": "kedro",
    "pool_slots": 2,
    "priority_weight": 3,
    "weight_rule": "absolute",
    "tags": ["nightly"],
    "doc_md": "doc",
    "params": {"lr": 0.1},
    "dagrun_timeout": 60,
    "deadline": {"minutes": 5, "callback": "a.b"},
    "on_failure_callback": "a.b",
    "on_success_callback": "a.b",
    "allow_pickle": False,
    "local_handoff": False,
    "local_disk": "warn",
    "cleanup": "always",
    "parallel_threshold": 1000,
    "parallel_concurrency": 2,
}


class TestOldSpellings:
    def test_every_moved_key_has_a_case(self) -> None:
        assert set(OLD_VALUES) == set(MOVED)

    @pytest.mark.parametrize("old", sorted(OLD_VALUES))
    def test_is_read_with_a_warning_naming_the_new_spelling(self, old: str) -> None:
        new = MOVED[old]
        with pytest.warns(DeprecatedKeyWarning) as caught:
            old_way = parse_config({old: OLD_VALUES[old]})
        (warning,) = caught
        assert str(warning.message) == (
            f"airflow config key '{old}' is deprecated: write it as '{new}'."
        )
        assert read(old_way, new) == read(parse_config(nested(new, OLD_VALUES[old])), new)

    def test_a_bad_old_value_is_named_as_written(self) -> None:
        with pytest.warns(DeprecatedKeyWarning), pytest.raises(ConfigError) as caught:
            parse_config({"pod_labels": {"team": "Data team"}})
        assert "'pod_labels.team' 'Data team' is not a Kubernetes label value" in str(caught.value)

    def test_old_and_new_spelling_together_is_an_error(self) -> None:
        with pytest.warns(DeprecatedKeyWarning), pytest.raises(ConfigError) as caught:
            parse_config({"pod_labels": {"a": "b"}, "pod": {"labels": {"c": "d"}}})
        assert "'pod_labels' and 'pod.labels' are both set; keep 'pod.labels'" in str(caught.value)


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
        # 'grouping_prefx' is a problem (parse_config refuses it), not a note.
        assert notes == ["airflow config key 'team' is not used by kedro-gcs-bridge"]

    def test_a_misspelled_key_stops_the_config_instead_of_leaving_the_default(self) -> None:
        """`k8s_namspace: ml` would put every pod in namespace `default` with a warning only."""
        with pytest.raises(ConfigError) as caught:
            parse_config({"k8s_namspace": "ml", "gcp_project_id": "p"})
        assert str(caught.value) == (
            "'k8s_namspace' is not a key of the airflow config (did you mean "
            "'k8s_namespace'?): as written, the default stays in place. Rename it."
        )

    def test_a_teams_own_key_is_kept_unless_strict(self) -> None:
        assert parse_config({"team": "data"}).strict is False
        with pytest.raises(ConfigError) as caught:
            parse_config({"team": "data", "strict": True})
        assert "'team' is not a key of the airflow config" in str(caught.value)
        assert "strict: true" in str(caught.value)

    def test_the_files_sections_are_default_and_pipeline_names(self) -> None:
        """A `groups:` block pasted at the file's top level, or a section named after a
        misspelled pipeline, would be read by nobody."""
        raw = {
            "default": {"grouping": True},
            "groups": {"g": ["a"]},
            "data_sciense": {"retries": 4},
            "data_science": {"retries": 2},
            "reports": {"retries": 1},
        }
        problems, notes = section_problems(raw, ["__default__", "data_science"])
        assert problems == [
            "airflow config: 'groups' is a config key at the file's top level, where "
            "kedro-airflow reads only `default:` and pipeline names: indent it under "
            "`default:` (every pipeline) or under a pipeline's name.",
            "airflow config: section 'data_sciense' names no registered pipeline (did you mean "
            "'data_science'?); its keys are read by nobody. Rename it.",
        ]
        assert notes == [
            "airflow config: section 'reports' names no registered pipeline; nothing reads it."
        ]

    def test_missing_deployment_keys(self) -> None:
        config = parse_config({"gcp_project_id": "p", "docker_image": "i"})
        assert config.missing_deployment_keys() == [
            "gcp_region",
            "gcp_gke_cluster_name",
            "gcs_bridge_root",
        ]


#: Configs Airflow, Kubernetes, GCS or MLflow would refuse later (or that would silently write
#: somewhere else): each must be an error at create time naming the key.
BAD_CONFIGS: list[tuple[dict[str, Any], str, str]] = [
    ({"gcs_bridge_root": "s3://x"}, "gcs_bridge_root", "gs://bucket"),
    ({"gcs_bridge_root": "gs://"}, "gcs_bridge_root", "names no bucket"),
    ({"gcs_bridge_root": "gs:///path"}, "gcs_bridge_root", "names no bucket"),
    ({"gcs_bridge_root": "my-bucket/x"}, "gcs_bridge_root", "absolute URL"),
    ({"gcs_bridge_root": "gs:/dag/run"}, "gcs_bridge_root", "absolute URL"),
    ({"gcs_bridge_root": "file:///tmp/runs"}, "gcs_bridge_root", "gs://bucket"),
    ({"gcs_bridge_root": "gs://Bad_Bucket/x"}, "gcs_bridge_root", "not a bucket name"),
    ({"pod_backend": "local", "local_root": "runs"}, "local_root", "absolute URL"),
    ({"pod_backend": "local", "gcs_bridge_root": "file:///"}, "gcs_bridge_root", "no folder"),
    ({"retry_delay": -5}, "retry_delay", ">= 0"),
    ({"retry_delay": float("nan")}, "retry_delay", ">= 0"),
    ({"max_active_runs": 0}, "max_active_runs", "at least 1"),
    ({"k8s_namespace": "Bad_Namespace!"}, "k8s_namespace", "RFC 1123"),
    ({"k8s_namespace": "-kedro"}, "k8s_namespace", "RFC 1123"),
    ({"k8s_namespace": "a" * 64}, "k8s_namespace", "63"),
    ({"k8s_service_account": "Kedro Runner"}, "k8s_service_account", "RFC 1123"),
    ({"k8s_service_account": "runner."}, "k8s_service_account", "RFC 1123"),
    ({"mlflow": {"tracking_uri": "htp:/oops"}}, "mlflow.tracking_uri", "did you mean 'http'"),
    ({"mlflow": {"tracking_uri": "http://"}}, "mlflow.tracking_uri", "host"),
    ({"mlflow": {"tracking_uri": "https:/mlflow.example.com"}}, "mlflow.tracking_uri", "host"),
    ({"mlflow": {"tracking_uri": "mlruns"}}, "mlflow.tracking_uri", "file:///"),
    ({"mlflow": {"tracking_uri": "sqlite://"}}, "mlflow.tracking_uri", "sqlite:///"),
    ({"mlflow": {"tracking_uri": "file://mlruns"}}, "mlflow.tracking_uri", "file:///"),
    ({"mlflow": {"tracking_uri": "postgresql:///db"}}, "mlflow.tracking_uri", "host"),
    (
        {"mlflow": {"tracking_uri": "https://alice:pw@mlflow.example.com"}},
        "mlflow.tracking_uri",
        "alice:***@mlflow.example.com",
    ),
    ({"schedule": "@daly"}, "schedule", "did you mean '@daily'"),
    ({"schedule": "61 * * * *"}, "schedule", "cron"),
    ({"schedule": "0 25 * * *"}, "schedule", "cron"),
    ({"schedule": "* * * *"}, "schedule", "cron"),
    ({"schedule_interval": "0 0 32 * *"}, "schedule_interval", "cron"),
    ({"schedule": "@hourly "}, "schedule", "cron"),
    ({"dag_id": "my dag!"}, "dag_id", "letters, digits"),
    ({"dag_id": "x" * 251}, "dag_id", "250"),
    ({"dag_id": ""}, "dag_id", "letters, digits"),
    ({"handoff": {"cleanup": "sometimes"}}, "handoff.cleanup", "'never', 'on_success' or 'always'"),
    ({"pod_backend": "docker"}, "pod_backend", "'gke'"),
]


class TestCheckedAtCreateTime:
    @pytest.mark.parametrize(
        ("config", "key", "fragment"), BAD_CONFIGS, ids=[str(c) for c, _, _ in BAD_CONFIGS]
    )
    def test_bad_config_is_an_error_naming_the_key(
        self, config: dict[str, Any], key: str, fragment: str
    ) -> None:
        with pytest.raises(ConfigError) as caught:
            parse_config(config)
        message = str(caught.value)
        assert f"'{key}" in message and fragment in message

    @pytest.mark.parametrize(
        ("config", "key", "fragment"),
        BAD_CONFIGS[::7],
        ids=[str(c) for c, _, _ in BAD_CONFIGS[::7]],
    )
    def test_the_dag_file_is_not_planned(
        self, config: dict[str, Any], key: str, fragment: str
    ) -> None:
        from kedro.pipeline import Pipeline, node

        variables = {
            "pipeline": Pipeline([node(_identity, "a", "b", name="n")]),
            "pipeline_name": "__default__",
            "env": "local",
            "package_name": "pkg",
            **GOOD_DEPLOYMENT,
            **config,
        }
        dag = build_dag_file(variables)
        assert dag.plan is None and f"'{key}" in (dag.error or "") and fragment in dag.error

    def test_every_problem_is_named_at_once(self) -> None:
        with pytest.raises(ConfigError) as caught:
            parse_config({"retry_delay": -5, "dag_id": "my dag!", "schedule": "@daly"})
        message = str(caught.value)
        assert "3 problems" in message
        assert all(key in message for key in ("'retry_delay'", "'dag_id'", "'schedule'"))

    @pytest.mark.parametrize(
        "config",
        [
            {"gcs_bridge_root": "gs://my-bucket"},
            {"gcs_bridge_root": "gs://my-bucket/kedro/"},
            {"gcs_bridge_root": "gcs://b/x"},
            {"gcs_bridge_root": ""},
            {"pod_backend": "local", "gcs_bridge_root": "file:///tmp/runs"},
            {"pod_backend": "local", "local_root": "file:///tmp/runs"},
            {"retry_delay": 0},
            {"max_active_runs": 1},
            {"k8s_namespace": "kedro-prod"},
            {"k8s_service_account": "kedro.runner-1"},
            {"mlflow": {"tracking_uri": "http://127.0.0.1:5000"}},
            {"mlflow": {"tracking_uri": "https://mlflow.example.com/base"}},
            {"mlflow": {"tracking_uri": "databricks"}},
            {"mlflow": {"tracking_uri": "databricks://profile"}},
            {"pod_backend": "local", "mlflow": {"tracking_uri": "file:///tmp/mlruns"}},
            {"pod_backend": "local", "mlflow": {"tracking_uri": "sqlite:///tmp/mlflow.db"}},
            {"mlflow": {"tracking_uri": "postgresql+psycopg2://mlflow@db:5432/mlflow"}},
            {"mlflow": {"tracking_uri": "mysql://db/mlflow"}},
            {"schedule": "@once"},
            {"schedule": "@continuous"},
            {"schedule": "@quarterly"},
            {"schedule": "@midnight"},
            {"schedule": "*/15 6-18 * jan-mar mon-fri"},
            {"schedule": "0 0 * * * 30"},
            {"dag_id": "team.nightly-run_1"},
        ],
        ids=str,
    )
    def test_good_values_are_kept(self, config: dict[str, Any]) -> None:
        parsed = parse_config(config)
        for key, value in config.items():
            path, given = key, value
            if isinstance(value, dict):
                ((path, given),) = ((f"{key}.{k}", v) for k, v in value.items())
            assert read(parsed, path) == given


def _identity(value: Any) -> Any:
    return value


GOOD_DEPLOYMENT = {
    "gcp_project_id": "p",
    "gcp_region": "r",
    "gcp_gke_cluster_name": "c",
    "docker_image": "i",
    "gcs_bridge_root": "gs://b/r",
}


def test_create_with_a_bad_config_writes_no_dag_file(tmp_path: Path) -> None:
    """One real `kedro airflow create`: the command fails naming every key, the DAG folder's
    file is untouched."""
    bad = {
        "k8s_namespace: kedro": "k8s_namespace: Bad_Namespace!",
        "gcs_bridge_root: gs://example-bucket/kedro-gcs-bridge": "gcs_bridge_root: my-bucket/x",
        "retry_delay: 5": "retry_delay: -5",
        "schedule_interval: null": "schedule_interval: '@daly'",
    }
    edits = tuple(Edit("conf/base/airflow.yml", new, old) for old, new in bad.items())
    job = Job((*CREATE, "dags"), edits=edits, seed_dag_dir="dags")
    run = run_jobs(tmp_path, {"bad_config": job})["bad_config"]
    assert run.returncode != 0, run.describe()
    assert "no DAG file written" in run.output, run.describe()
    for key in ("k8s_namespace", "gcs_bridge_root", "retry_delay", "schedule_interval"):
        assert f"'{key}" in run.output, run.describe()
    files = {path.name: path.read_bytes() for path in run.dag_dir().iterdir()}
    assert files == run.files_before


_PLUGIN_PROBE = """
import json, os, sys
from pydantic.plugin import _loader
import kedro_gcs_bridge.config as config
scanned = _loader._plugins is not None
config.parse_config({"gcp_project_id": "p", "pod": {"labels": {"team": "ml"}}})
after_parse = _loader._plugins is not None
env = os.environ.get("PYDANTIC_DISABLE_PLUGINS")
from pydantic import BaseModel
class Users(BaseModel):
    x: int = 1
print(json.dumps([scanned, after_parse, env, _loader._plugins is not None]))
"""


@pytest.mark.parametrize("given", [None, "my_plugin"])
def test_the_config_models_build_without_pydantics_plugin_scan(given: str | None) -> None:
    """pydantic looks for plugins in every installed distribution's entry points (~17 ms of a
    `kedro airflow create` here) the first time a model is built. The config's models skip that
    scan: the variable that skips it is set while they build and restored after, so a
    project's own pydantic models still get its plugins (the scan then runs for them)."""
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if given is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = given
    done = subprocess.run(
        [sys.executable, "-c", _PLUGIN_PROBE],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    scanned, after_parse, seen, user_scanned = json.loads(done.stdout.strip().splitlines()[-1])
    assert (scanned, after_parse) == (False, False)
    assert seen == given
    assert user_scanned is True


def _package_strings() -> list[tuple[str, str]]:
    """(module, text) of every string constant in the package's modules."""
    import ast

    package = Path(__file__).resolve().parents[2] / "kedro_gcs_bridge"
    found = []
    for module in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append((module.name, node.value))
    return found


def test_no_message_tells_a_user_to_set_a_key_by_its_old_spelling() -> None:
    """A remedy that says `local_disk: warn` sends the user into a deprecation warning: every
    message that names a key to set names it where it lives now (`handoff.local_disk: warn`)."""
    import re

    old = re.compile(r"(?:`|set |\()(" + "|".join(map(re.escape, MOVED)) + r"): ")
    stale = [
        f"{module}: {match.group(0)!r} in {text[:80]!r}"
        for module, text in _package_strings()
        for match in old.finditer(text)
    ]
    assert not stale
