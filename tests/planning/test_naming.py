"""Names for Airflow and Kubernetes: task ids, pod names, DAG ids, and the run prefix Airflow
renders for every run."""

from __future__ import annotations

import keyword
import re
from datetime import UTC, datetime

import pytest
from conftest import template_context
from hypothesis import given, settings
from hypothesis import strategies as st

from kedro_gcs_bridge.planning.naming import (
    POD_NAME_MAX,
    REPLAY_EMULATOR_ROOT,
    RUN_SEGMENT_TEMPLATE,
    TASK_ID_MAX,
    dag_id,
    local_runs_root,
    nameless,
    pod_names,
    python_names,
    replay_emulator_copy,
    run_prefix_template,
    run_segment,
    task_ids,
)

TASK_ID = re.compile(r"^[\w.-]+$")  # Airflow's KEY_REGEX
RFC1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
RUN_IDS = [
    "manual__2026-11-24T07:11:31.230999+00:00",
    "scheduled__2023-01-01T00:00:00+00:00",
    "my.custom~run-1",
]
ALIKE = ["a b", "a-b", "A_B"]


def render_in_airflow(template: str, run_id: str) -> str:
    """What Airflow makes of `template` in a templated field of a task, for a run."""
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG

    with DAG("render_check", schedule=None, start_date=datetime(2023, 1, 1, tzinfo=UTC)) as dag:
        task = BashOperator(task_id="t", bash_command="true", env={"X": template})
    task.render_template_fields(template_context(dag, run_id))
    return task.env["X"]


class TestTaskIds:
    @pytest.mark.parametrize(
        ("name", "task_id"),
        [
            ("split", "split"),
            ("train_model_node", "train_model_node"),
            ("ns.node", "ns.node"),
            ("Grüße Node", "Grusse_Node"),
            ("a/b:c", "a_b_c"),
        ],
    )
    def test_task_id_keeps_what_airflow_allows(self, name: str, task_id: str) -> None:
        assert task_ids([name]) == {name: task_id}

    def test_names_that_slugify_alike_stay_unique(self) -> None:
        ids = task_ids(ALIKE)
        assert len(set(ids.values())) == 3
        assert all(TASK_ID.match(value) for value in ids.values())

    def test_ids_do_not_depend_on_node_order(self) -> None:
        # Regenerating the DAG after reordering a pipeline keeps each task's history.
        assert task_ids(ALIKE) == task_ids(list(reversed(ALIKE)))

    def test_long_name_is_shortened_and_stays_unique(self) -> None:
        names = ["x" * 300, "x" * 299 + "y"]
        ids = task_ids(names)
        assert all(len(value) <= TASK_ID_MAX for value in ids.values())
        assert len(set(ids.values())) == 2

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.text(min_size=0, max_size=300), unique=True, max_size=8))
    def test_any_names_give_valid_unique_task_ids(self, names: list[str]) -> None:
        ids = task_ids(names)
        assert set(ids) == set(names)
        assert len(set(ids.values())) == len(names)
        for value in ids.values():
            assert TASK_ID.match(value), value
            assert len(value) <= TASK_ID_MAX


class TestPodNames:
    @pytest.mark.parametrize(
        ("name", "pod"),
        [("split", "split"), ("train_model_node", "train-model-node"), ("ns.Node", "ns-node")],
    )
    def test_pod_name(self, name: str, pod: str) -> None:
        assert pod_names([name]) == {name: pod}

    def test_names_that_slugify_alike_stay_unique(self) -> None:
        pods = pod_names(ALIKE)
        assert len(set(pods.values())) == 3

    def test_prefix(self) -> None:
        assert pod_names(["train_model_node"], prefix="spaceflights") == {
            "train_model_node": "spaceflights-train-model-node"
        }

    def test_300_character_name_leaves_room_for_the_random_suffix(self) -> None:
        (pod,) = pod_names(["n" * 300]).values()
        assert len(pod) <= POD_NAME_MAX
        assert len(pod) + len("-abcdefgh") <= 63
        assert RFC1123_LABEL.match(pod)

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(st.text(min_size=0, max_size=300), unique=True, max_size=8),
        st.sampled_from(["", "spaceflights", "My_Project"]),
    )
    def test_any_names_give_valid_unique_pod_names(self, names: list[str], prefix: str) -> None:
        pods = pod_names(names, prefix)
        assert len(set(pods.values())) == len(names)
        for value in pods.values():
            assert RFC1123_LABEL.match(value), value
            assert len(value) <= POD_NAME_MAX


class TestPythonNames:
    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.text(min_size=0, max_size=60), unique=True, max_size=8))
    def test_variables_are_unique_identifiers(self, names: list[str]) -> None:
        variables = python_names(task_ids(names).values())
        assert len(set(variables.values())) == len(names)
        for value in variables.values():
            assert value.isidentifier() and not keyword.iskeyword(value), value

    @pytest.mark.parametrize("name", ["dag", "k8s", "datetime", "class", "1st"])
    def test_names_the_dag_file_needs_are_avoided(self, name: str) -> None:
        assert python_names([name])[name] == f"task_{name}"


class TestDagId:
    @pytest.mark.parametrize(
        ("pipeline", "env", "expected"),
        [
            ("__default__", "local", "spaceflights__default__local"),
            ("data_science", "prod", "spaceflights__data_science__prod"),
            ("data-science", "Prod", "spaceflights__data-science__Prod"),
        ],
    )
    def test_names_project_pipeline_and_env(self, pipeline: str, env: str, expected: str) -> None:
        assert dag_id("spaceflights", pipeline, env) == expected
        assert TASK_ID.match(expected)

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            ("__default__", "default"),
            ("a-b", "a.b"),
            ("a-b", "a_b"),
            ("a.b", "a_b"),
            ("a__b", "a_b"),
            ("data", "data_"),
        ],
    )
    def test_distinct_pipelines_get_distinct_dag_ids(self, first: str, second: str) -> None:
        assert dag_id("pkg", first, "local") != dag_id("pkg", second, "local")

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.text(min_size=1, max_size=40), min_size=2, max_size=6, unique=True))
    def test_any_pipeline_names_give_distinct_valid_dag_ids(self, names: list[str]) -> None:
        ids = [dag_id("spaceflights", name, "local") for name in names]
        assert len(set(ids)) == len(names)
        for value in ids:
            assert TASK_ID.match(value), value
            assert value.startswith("spaceflights__") and value.endswith("__local")


class TestRunPrefix:
    @pytest.mark.parametrize("run_id", RUN_IDS)
    def test_run_segment_is_what_airflow_renders(self, run_id: str) -> None:
        assert render_in_airflow(RUN_SEGMENT_TEMPLATE, run_id) == run_segment(run_id)

    @pytest.mark.parametrize("run_id", RUN_IDS)
    def test_run_segment_is_one_safe_path_segment(self, run_id: str) -> None:
        segment = run_segment(run_id)
        assert "/" not in segment and ":" not in segment and "+" not in segment

    @pytest.mark.parametrize("root", ["gs://bucket/runs", "gs://bucket/runs/"])
    def test_run_prefix_is_root_dag_and_run(self, root: str) -> None:
        rendered = render_in_airflow(run_prefix_template(root), RUN_IDS[0])
        assert rendered == f"gs://bucket/runs/render_check/{run_segment(RUN_IDS[0])}"

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.from_regex(r"[A-Za-z0-9_.~:+-]+", fullmatch=True), min_size=2, unique=True))
    def test_distinct_run_ids_get_distinct_prefixes(self, run_ids: list[str]) -> None:
        # Any run ids Airflow's default allowed_run_id_pattern admits ('rerun:1', 'rerun-1').
        segments = [run_segment(run_id) for run_id in run_ids]
        assert len(set(segments)) == len(run_ids)
        assert all("/" not in segment for segment in segments)


def test_nameless_group_names_are_those_without_a_letter_or_digit() -> None:
    names = ["-", "_", ".", "--", "a", "données_日本", "7", "_x"]
    assert nameless(names) == ["-", "_", ".", "--"]


def train_model(x_train: object, y_train: object) -> object:
    return x_train


def evaluate_model(regressor: object, x_test: object) -> object:
    return regressor


class TestKedroGeneratedNodeNames:
    """Issue 23: nodes Kedro names itself (`train_model__<hash>`) are said in Kedro's own form
    by `plan`, and `groups:` takes either form."""

    @staticmethod
    def _pipeline(namespace: str | None = None) -> object:
        from kedro.pipeline import Pipeline, node
        from kedro.pipeline import pipeline as modular

        base = Pipeline(
            [
                node(train_model, ["X_train", "y_train"], "regressor"),
                node(evaluate_model, ["regressor", "X_test"], "metrics"),
            ]
        )
        if namespace is None:
            return base
        inputs = {"X_train", "y_train", "X_test"}
        return modular(base, namespace=namespace, inputs=inputs)

    @staticmethod
    def _plan(pipeline: object, groups: dict[str, list[str]]) -> object:
        import yaml

        from kedro_gcs_bridge.config import parse_config
        from kedro_gcs_bridge.planning.grouping import node_specs
        from kedro_gcs_bridge.planning.plan import plan_tasks

        pasted = yaml.safe_load(yaml.safe_dump({"groups": groups}))  # as airflow.yml holds it
        return plan_tasks("p", node_specs(pipeline), parse_config(pasted))

    @pytest.mark.parametrize("sep", [";", ","])
    def test_groups_takes_the_form_kedro_prints(self, sep: str) -> None:
        pipeline = self._pipeline()
        shown = f"train_model([X_train{sep}y_train]) -> [regressor]"
        plan = self._plan(
            pipeline, {"model": [shown, "evaluate_model([regressor;X_test]) -> [metrics]"]}
        )
        (task,) = plan.tasks
        assert task.group == "model"
        assert all(re.fullmatch(r"(train|evaluate)_model__[0-9a-f]{8}", n) for n in task.nodes)

    def test_groups_takes_the_generated_name_too(self) -> None:
        from kedro_gcs_bridge.planning.grouping import node_specs

        pipeline = self._pipeline()
        names = [spec.name for spec in node_specs(pipeline)]
        (task,) = self._plan(pipeline, {"model": names}).tasks
        assert task.nodes == tuple(names)

    def test_namespaced_nodes_without_tags(self) -> None:
        pipeline = self._pipeline("a") + self._pipeline("b")
        groups = {
            "a_model": [
                "train_model([X_train;y_train]) -> [a.regressor]",
                "evaluate_model([a.regressor;X_test]) -> [a.metrics]",
            ]
        }
        plan = self._plan(pipeline, groups)
        grouped = {t.group: t.nodes for t in plan.tasks}
        assert len(grouped["a_model"]) == 2
        assert all(n.startswith("a.") for n in grouped["a_model"])
        assert len(plan.tasks) == 3  # b's two nodes stay tasks of their own
        assert not plan.warnings

    def test_plan_says_which_kedro_node_each_generated_name_stands_for(self) -> None:
        from kedro_gcs_bridge.planning.grouping import node_specs
        from kedro_gcs_bridge.planning.node_names import generated_text

        pipeline = self._pipeline("a")
        specs = node_specs(pipeline)
        plan = self._plan(pipeline, {})
        text = generated_text(specs, (n for t in plan.tasks for n in t.nodes))
        (train,) = [s.name for s in specs if s.name.startswith("a.train_model__")]
        assert f"  {train} = train_model([X_train;y_train]) -> [a.regressor]" in text
        assert "`groups:` takes either form" in text

    def test_named_nodes_need_no_word(self) -> None:
        from kedro.pipeline import Pipeline, node

        from kedro_gcs_bridge.planning.grouping import node_specs
        from kedro_gcs_bridge.planning.node_names import generated_text

        pipeline = Pipeline([node(train_model, ["X_train", "y_train"], "regressor", name="fit")])
        assert generated_text(node_specs(pipeline), ["fit"]) == ""


class TestSlugFastPath:
    """`task_id_slug` and `pod_name_slug` skip python-slugify's pipeline for plain ASCII names:
    they must say exactly what slugify says, for those and for every other name."""

    NAMES = (
        *("n_0_1", "Prepare.Data", "a--b", "-lead", "trail-", "--", "a..b", "_x_", "0", "A-B_c"),
        *("déjà vu", "a b", "x'y", "a&amp;b", "1,000", "ß", "a/b", "emoji 🙂", "", "Ω-ω"),
    )

    @pytest.mark.parametrize("name", NAMES)
    def test_the_same_as_slugify(self, name: str) -> None:
        from slugify import slugify

        from kedro_gcs_bridge.planning.naming import pod_name_slug, task_id_slug

        assert task_id_slug(name) == slugify(
            name, separator="_", lowercase=False, regex_pattern=r"[^\w.-]+"
        )
        assert pod_name_slug(name) == slugify(name, separator="-")

    def test_the_same_as_slugify_on_random_plain_names(self) -> None:
        import random
        import string

        from slugify import slugify

        from kedro_gcs_bridge.planning.naming import pod_name_slug, task_id_slug

        alphabet = string.ascii_letters + string.digits + "_.-"
        chooser = random.Random(28)
        for _ in range(2000):
            name = "".join(chooser.choices(alphabet, k=chooser.randint(1, 12)))
            assert task_id_slug(name) == slugify(
                name, separator="_", lowercase=False, regex_pattern=r"[^\w.-]+"
            ), name
            assert pod_name_slug(name) == slugify(name, separator="-"), name


def test_a_run_on_replays_own_emulator_is_read_from_the_copy_replay_kept() -> None:
    """replay --emulator stops its emulator at the end and copies the run's manifests to the
    project's runs folder: a run prefix MLflow recorded there is read from that copy."""
    root = local_runs_root("/p")
    prefix = f"{REPLAY_EMULATOR_ROOT}/spaceflights/manual__2026-01-01"
    assert (
        replay_emulator_copy(prefix, root)
        == "file:///p/.gcs-bridge-runs/spaceflights/manual__2026-01-01"
    )
    assert replay_emulator_copy("gs://my-bucket/runs/d/r", root) is None
