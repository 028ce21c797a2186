"""The production knobs of airflow.yml read strictly: each bad value is a `ConfigError` naming
its key, through `parse_config` as `kedro airflow create` reads it."""

from __future__ import annotations

from typing import Any

import pytest
from test_config import nested, read

from kedro_gcs_bridge.config import (
    DEFAULT_CONTAINER_SECURITY,
    DEFAULT_POD_SECURITY,
    IMAGE_GID,
    IMAGE_UID,
    MOVED,
    BridgeConfig,
    Deadline,
    SecretRef,
    parse_config,
)
from kedro_gcs_bridge.errors import ConfigError


def parse(key: str, value: Any) -> Any:
    """The config with one key set, in its new spelling (`pod_labels` -> `pod.labels`)."""
    return parse_config(nested(MOVED.get(key, key), value))


class TestDefaults:
    def test_a_production_pod_by_default(self) -> None:
        config = BridgeConfig()
        assert config.pod.on_finish_action == "delete_succeeded_pod"
        assert config.pod.security_context == {
            "pod": DEFAULT_POD_SECURITY,
            "container": DEFAULT_CONTAINER_SECURITY,
        }
        args = config.default_args
        assert (args.pool, args.pool_slots, args.weight_rule) == (None, 1, "downstream")

    def test_the_default_user_is_the_one_the_image_creates(self) -> None:
        dockerfile = (
            __import__("pathlib").Path(__file__).parents[2] / "docker" / "Dockerfile"
        ).read_text(encoding="utf-8")
        assert f"useradd --uid {IMAGE_UID} --gid {IMAGE_GID}" in dockerfile
        assert f"USER {IMAGE_UID}:{IMAGE_GID}" in dockerfile


class TestGoodValues:
    @pytest.mark.parametrize(
        ("key", "value", "expected"),
        [
            ("execution_timeout", 30, 30.0),
            ("dagrun_timeout", 1.5, 1.5),
            ("pool", "kedro", "kedro"),
            ("pool_slots", "2", 2),
            ("priority_weight", 7, 7),
            ("weight_rule", "absolute", "absolute"),
            ("on_finish_action", "keep_pod", "keep_pod"),
            ("image_pull_policy", "IfNotPresent", "IfNotPresent"),
            (
                "pod_labels",
                {"team": "data", "cost": 42, "ok": True},
                {"team": "data", "cost": "42", "ok": "true"},
            ),
            (
                "pod_annotations",
                {"example.com/owner": "Data team, 3rd floor"},
                {"example.com/owner": "Data team, 3rd floor"},
            ),
            (
                "node_selector",
                {"cloud.google.com/gke-nodepool": "batch"},
                {"cloud.google.com/gke-nodepool": "batch"},
            ),
            ("env_vars", {"LOG_LEVEL": "INFO", "N": 3}, {"LOG_LEVEL": "INFO", "N": "3"}),
            ("env_from_secrets", "bulk-env", ("bulk-env",)),
            (
                "secret_env",
                {
                    "MLFLOW_TRACKING_TOKEN": "mlflow-auth:token",
                    "B": {"secret": "s", "key": "k.txt"},
                },
                (
                    SecretRef("MLFLOW_TRACKING_TOKEN", "mlflow-auth", "token"),
                    SecretRef("B", "s", "k.txt"),
                ),
            ),
            ("pod_template_file", "/opt/airflow/pod.yaml", "/opt/airflow/pod.yaml"),
            (
                "params",
                {"lr": 0.1, "model.name": "ridge", "on": False},
                {"lr": 0.1, "model.name": "ridge", "on": False},
            ),
            ("on_failure_callback", "team.alerts.notify", "team.alerts.notify"),
            (
                "deadline",
                {"minutes": 90, "callback": "a.b"},
                Deadline(minutes=90.0, callback="a.b", reference="queued_at"),
            ),
        ],
    )
    def test_read(self, key: str, value: Any, expected: Any) -> None:
        assert read(parse(key, value), MOVED.get(key, key)) == expected

    def test_security_context_overrides_field_by_field(self) -> None:
        given = {"pod": {"runAsUser": 1001}, "container": {"readOnlyRootFilesystem": True}}
        context = parse("security_context", given).pod.security_context
        assert context["pod"] == {**DEFAULT_POD_SECURITY, "runAsUser": 1001}
        assert context["container"]["readOnlyRootFilesystem"] is True
        assert context["container"]["capabilities"] == {"drop": ["ALL"]}

    def test_machine_class_takes_timeout_tolerations_affinity(self) -> None:
        gpu = parse_config(
            {
                "machine_classes": {
                    "gpu": {
                        "execution_timeout": 90,
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                        "affinity": {"nodeAffinity": {}},
                    }
                }
            }
        ).machine_classes["gpu"]
        assert (gpu.execution_timeout, gpu.tolerations, gpu.affinity) == (
            90.0,
            ({"key": "nvidia.com/gpu", "operator": "Exists"},),
            {"nodeAffinity": {}},
        )
        assert (gpu.accelerator, gpu.gpu_count) == ("nvidia-l4", 1)  # built-in figures stay


class TestBadValues:
    @pytest.mark.parametrize(
        ("key", "value", "message"),
        [
            (
                "execution_timeout",
                0,
                "'default_args.execution_timeout' is in minutes and must be > 0",
            ),
            ("dagrun_timeout", "1h", "'dag.dagrun_timeout' is in minutes"),
            ("pool", "", "'default_args.pool' must be the name of an Airflow pool"),
            ("pool_slots", 0, "'default_args.pool_slots' must be at least 1"),
            ("priority_weight", "high", "'default_args.priority_weight' must be a whole number"),
            ("weight_rule", "down", "'default_args.weight_rule' must be one of"),
            ("on_finish_action", "delete", "'pod.on_finish_action' must be one of"),
            ("image_pull_policy", "always", "'pod.image_pull_policy' must be one of"),
            (
                "security_context",
                {"pods": {}},
                "'pod.security_context' has unknown part(s) ['pods']",
            ),
            (
                "security_context",
                {"pod": {"runAsUsr": 1}},
                "'pod.security_context.pod' has unknown field(s) ['runAsUsr']",
            ),
            ("security_context", {"container": {"runAsUser": 0}}, "runAsUser 0 is root"),
            (
                "pod_labels",
                {"team": "Data team"},
                "'pod.labels.team' 'Data team' is not a Kubernetes label value",
            ),
            ("pod_labels", {"-bad": "x"}, "'pod.labels' '-bad' is not a Kubernetes label key"),
            (
                "pod_labels",
                {"kedro-gcs-bridge/group": "x"},
                "is set by kedro-gcs-bridge or Airflow",
            ),
            ("pod_labels", {"dag_id": "x"}, "is set by kedro-gcs-bridge or Airflow"),
            ("pod_annotations", {"Bad_Prefix/x": "y"}, "its prefix must be a DNS subdomain"),
            (
                "node_selector",
                {"cloud.google.com/compute-class": "Balanced"},
                "set them under machine_classes",
            ),
            ("env_vars", {"lower": "x"}, "'pod.env' 'lower' is not an environment variable name"),
            ("env_vars", {"MLFLOW_TRACKING_PASSWORD": "x"}, "looks like a credential"),
            ("env_vars", {"KEDRO_GCS_BRIDGE_RUN_ID": "x"}, "is set by kedro-gcs-bridge itself"),
            ("env_vars", {"A": {"b": 1}}, "'pod.env.A' must be a plain value"),
            (
                "env_from_secrets",
                ["Bad_Name"],
                "'pod.env_from_secrets' 'Bad_Name' is not a Kubernetes Secret name",
            ),
            ("secret_env", {"TOKEN": "no-key"}, "'pod.secret_env.TOKEN' must be '<secret>:<key>'"),
            ("tolerations", {"key": "x"}, "'pod.tolerations' must be a list of tolerations"),
            (
                "tolerations",
                [{"key": "x", "operator": "Exists", "value": "y"}],
                "operator Exists takes no value",
            ),
            ("tolerations", [{"effect": "Never"}], "'pod.tolerations[0]' effect 'Never'"),
            (
                "affinity",
                {"nodeAfinity": {}},
                "'pod.affinity' has unknown field(s) ['nodeAfinity']",
            ),
            ("pod_template_file", "pod.yaml", "'pod.template_file' must be an absolute path"),
            ("pod_override", {"kind": "Pod"}, "'pod.override' has unknown field(s) ['kind']"),
            (
                "pod_override",
                {"spec": {"containers": {"name": "base"}}},
                "'pod.override.spec.containers'",
            ),
            ("params", {"lr": [1, 2]}, "'dag.params.lr' must be text, a number or true/false"),
            ("params", {"tags": "a,b"}, "cannot pass a ','"),
            ("params", {"bad-key": 1}, "'dag.params' 'bad-key' is not a Kedro parameter name"),
            ("on_failure_callback", "notify", "'dag.on_failure_callback' must be the import path"),
            (
                "on_success_callback",
                "a.class.b",
                "'dag.on_success_callback' must be the import path",
            ),
            ("deadline", {"minutes": 10}, "'dag.deadline.callback' is required"),
            (
                "deadline",
                {"minutes": 10, "callback": "a.b", "reference": "now"},
                "'dag.deadline.reference' must be one of 'queued_at' or 'logical_date', got 'now'",
            ),
            (
                "machine_classes",
                {"gpu": {"execution_timeout": -1}},
                "'machine_classes.gpu.execution_timeout'",
            ),
            (
                "machine_classes",
                {"gpu": {"tolerations": "x"}},
                "'machine_classes.gpu.tolerations' must be a list",
            ),
        ],
    )
    def test_is_an_error_naming_the_key(self, key: str, value: Any, message: str) -> None:
        with pytest.raises(ConfigError) as caught:
            parse(key, value)
        assert f"'{MOVED.get(key, key)}" in str(caught.value)
        assert message in str(caught.value)
