"""Issue 22 item 1: every pod the generated DAG would submit meets the official Kubernetes
OpenAPI schema, strictly (no unknown field, every type right), offline.

The pods are built as tests/dag/test_pod_spec.py builds them: a DAG rendered from the template,
loaded by a real DagBag, templates rendered for a run, then `build_pod_request_obj(dry_run=True)`
of each task, serialized as the provider sends it to the API server. kubernetes-validate ships
the schemas (JSON schemas generated from Kubernetes' OpenAPI spec, `-strict` variants reject
unknown properties).
"""

from __future__ import annotations

import copy
import sys
from typing import Any

import kubernetes_validate
import pytest

# The module that builds pods from a generated DAG (pytest puts tests/dag on sys.path); imported
# whole, not its names, so pytest does not collect its test classes a second time here.
import test_pod_spec as pod_spec

#: The Kubernetes minors GKE's release channels serve (Extended keeps a minor up to 24 months,
#: Rapid gets a new one weeks after its upstream release): 1.31 to 1.37, the newest schema
#: kubernetes-validate 1.37 ships. A version it does not ship fails the test, not skips it.
KUBERNETES_VERSIONS = ("1.31", "1.32", "1.33", "1.34", "1.35", "1.36", "1.37")

#: A Spot class for the example's untagged nodes (`default`) next to the built-in GPU class of
#: node `b`: the finalize pod then runs on the smallest class that is not Spot.
SPOT_AND_GPU = {
    "default": {"spot": True, "cpu": "1", "memory": "4Gi"},
    "gpu": {"execution_timeout": 90, "tolerations": [pod_spec.GPU_TOLERATION]},
}
#: The DAGs whose pods are checked: the defaults alone, every production knob (a pod template
#: file is added to these), and the same deferrable with a Spot class and a GPU class.
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {"cleanup": "on_success"},
    "all_knobs": pod_spec.ALL_KNOBS,
    "all_knobs_spot_gpu_deferrable": {
        **pod_spec.ALL_KNOBS,
        "deferrable": True,
        "machine_classes": SPOT_AND_GPU,
    },
}


def as_sent(pod: Any) -> dict[str, Any]:
    """The pod as the provider posts it: camelCase keys, no nulls."""
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(pod)


def schema_errors(manifest: dict[str, Any], version: str) -> list[str]:
    """Each violation of the strict schema of `version`, as `<field path>: <message>`."""
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{error.json_path}: {error.message}"]
    return []


@pytest.fixture(scope="module")
def submitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """`<variant>/<task id>` -> the pod manifest the DAG would submit for it."""
    workdir = tmp_path_factory.mktemp("pod-schema")
    (workdir / "alerts15.py").write_text(pod_spec.ALERTS, encoding="utf-8")
    (workdir / "pod.yaml").write_text(pod_spec.POD_TEMPLATE, encoding="utf-8")
    sys.path.insert(0, str(workdir))
    manifests = {}
    try:
        for name, config in VARIANTS.items():
            folder = workdir / name
            folder.mkdir()
            template = {"pod_template_file": str(workdir / "pod.yaml")}
            knobs = {**config, **template} if "pod_override" in config else config
            create_params = {"mlflow_tracking_uri": "https://mlflow.example.com"}
            dag = pod_spec.load(pod_spec.render(folder, create_params, **knobs))
            for task_id, pod in pod_spec.pods(dag).items():
                manifests[f"{name}/{task_id}"] = as_sent(pod)
    finally:
        sys.path.remove(str(workdir))
    return manifests


def test_the_variants_cover_spot_gpu_deferrable_and_finalize(
    submitted: dict[str, dict[str, Any]],
) -> None:
    """The pods checked below are the ones this file claims to check."""
    assert len(submitted) == 3 * 4  # groups a, b, c and finalize per DAG
    selectors = {key: pod["spec"].get("nodeSelector", {}) for key, pod in submitted.items()}
    spot = "all_knobs_spot_gpu_deferrable"
    assert selectors[f"{spot}/a"]["cloud.google.com/gke-spot"] == "true"
    assert "cloud.google.com/gke-spot" not in selectors[f"{spot}/gcs_bridge_finalize"]
    gpu = submitted[f"{spot}/b"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpu == {"nvidia.com/gpu": "1"}
    assert submitted[f"{spot}/gcs_bridge_finalize"]["spec"]["containers"][0]["args"][:2] == [
        "gcs-bridge",
        "finalize",
    ]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_submitted_pod_meets_the_strict_schema(
    submitted: dict[str, dict[str, Any]], version: str
) -> None:
    failures = {key: schema_errors(pod, version) for key, pod in submitted.items()}
    failures = {key: errors for key, errors in failures.items() if errors}
    assert not failures, f"Kubernetes {version} schema: {failures}"


class TestTheCheckCanFail:
    """The schema check sees what a real API server would refuse."""

    @pytest.mark.parametrize(
        ("path", "value", "field"),
        [
            (("spec", "containers", 0, "imagePullPolicy2"), "Always", "imagePullPolicy2"),
            (("spec", "tolerations", 0, "tolerationSeconds"), "60", "tolerationSeconds"),
            (("spec", "securityContext", "runAsUser"), "1000", "runAsUser"),
            (("metadata", "labels", "team"), 7, "team"),
        ],
    )
    def test_a_wrong_field_is_named(
        self,
        submitted: dict[str, dict[str, Any]],
        path: tuple[Any, ...],
        value: Any,
        field: str,
    ) -> None:
        pod = copy.deepcopy(submitted["all_knobs/a"])
        target = pod
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        (error,) = schema_errors(pod, KUBERNETES_VERSIONS[-1])
        assert field in error

    def test_every_version_is_shipped(self) -> None:
        from kubernetes_validate.utils import all_versions

        shipped = {".".join(version.split(".")[:2]) for version in all_versions()}
        assert set(KUBERNETES_VERSIONS) <= shipped
