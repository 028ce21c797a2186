"""The plan: tasks, their machine classes, upstream tasks and boundary datasets; every error and
warning a pipeline can produce on its way to a DAG."""

from __future__ import annotations

import pytest
from conftest import ancestors, has_cycle, random_pipelines
from hypothesis import given, settings

from kedro_gcs_bridge.config import BridgeConfig, parse_config
from kedro_gcs_bridge.errors import PlanError
from kedro_gcs_bridge.planning.grouping import NodeSpec
from kedro_gcs_bridge.planning.plan import Plan, boundary_datasets, node_specs, plan_tasks


def spec(name: str, inputs: str = "", outputs: str = "", tags: str = "") -> NodeSpec:
    """A node from space-separated names: spec("b", "x y", "z", "airflow.g")."""
    return NodeSpec(name, tuple(inputs.split()), tuple(outputs.split()), frozenset(tags.split()))


def config(**values: object) -> BridgeConfig:
    return parse_config(values)


def problems(nodes: list[NodeSpec], cfg: BridgeConfig | None = None) -> tuple[str, ...]:
    with pytest.raises(PlanError) as caught:
        plan_tasks("my_pipeline", nodes, cfg or BridgeConfig())
    assert str(caught.value).startswith("Pipeline my_pipeline cannot be turned into an Airflow")
    return caught.value.problems


class TestExamplePlan:
    def test_tasks(self, spaceflights_nodes: list[NodeSpec]) -> None:
        plan = plan_tasks("__default__", spaceflights_nodes, BridgeConfig())
        rows = [(t.task_id, t.pod_name, t.nodes, t.machine.name, t.upstream) for t in plan.tasks]
        assert rows == [
            ("companies", "companies", ("preprocess_companies_node",), "default", ()),
            (
                "shuttles",
                "shuttles",
                ("preprocess_shuttles_node", "plot_passenger_capacity_node"),
                "medium",
                (),
            ),
            (
                "split",
                "split",
                ("create_model_input_table_node", "split_data_node"),
                "medium",
                ("companies", "shuttles"),
            ),
            ("train_model_node", "train-model-node", ("train_model_node",), "medium", ("split",)),
            (
                "evaluate_model_node",
                "evaluate-model-node",
                ("evaluate_model_node",),
                "medium",
                ("split", "train_model_node"),
            ),
        ]
        assert plan.warnings == ()

    def test_boundary_datasets(self, spaceflights_nodes: list[NodeSpec]) -> None:
        plan = plan_tasks("__default__", spaceflights_nodes, BridgeConfig())
        split = plan.task("split")
        assert split.inputs == (
            ("preprocessed_companies", "companies"),
            ("preprocessed_shuttles", "shuttles"),
        )
        # model_input_table stays inside the pod; reviews is a raw input.
        assert split.outputs == ("X_test", "X_train", "y_test", "y_train")
        assert plan.task("evaluate_model_node").inputs == (
            ("X_test", "split"),
            ("regressor", "train_model_node"),
            ("training_metrics", "train_model_node"),
            ("y_test", "split"),
        )
        assert plan.task("evaluate_model_node").outputs == ()

    def test_edges_in_task_order(self, spaceflights_nodes: list[NodeSpec]) -> None:
        plan = plan_tasks("__default__", spaceflights_nodes, BridgeConfig())
        assert plan.edges() == [
            ("companies", "split"),
            ("shuttles", "split"),
            ("split", "train_model_node"),
            ("split", "evaluate_model_node"),
            ("train_model_node", "evaluate_model_node"),
        ]

    def test_grouping_off_gives_one_task_per_node(self, spaceflights_nodes: list[NodeSpec]) -> None:
        plan = plan_tasks("__default__", spaceflights_nodes, config(grouping=False))
        assert [t.nodes for t in plan.tasks] == [(n.name,) for n in spaceflights_nodes]
        assert plan.task("split_data_node").inputs == (
            ("model_input_table", "create_model_input_table_node"),
        )

    def test_pod_prefix_goes_in_front_of_every_pod_name(
        self, spaceflights_nodes: list[NodeSpec]
    ) -> None:
        plan = plan_tasks("__default__", spaceflights_nodes, BridgeConfig(), pod_prefix="sf")
        assert [t.pod_name for t in plan.tasks] == [
            "sf-companies",
            "sf-shuttles",
            "sf-split",
            "sf-train-model-node",
            "sf-evaluate-model-node",
        ]

    def test_node_specs_copy_a_kedro_pipeline(self) -> None:
        from kedro.pipeline import Pipeline, node

        def identity(x: object) -> object:
            return x

        pipeline = Pipeline(
            [
                node(identity, "b", "c", name="second", tags=["airflow.g"]),
                node(identity, "a", "b", name="first"),
            ]
        )
        assert node_specs(pipeline) == [
            NodeSpec("first", ("a",), ("b",), frozenset()),
            NodeSpec("second", ("b",), ("c",), frozenset({"airflow.g"})),
        ]


class TestMachineClasses:
    def test_spot_class_selects_spot_and_adds_retries(self) -> None:
        cfg = config(
            retries=2, spot_retries=4, machine_classes={"cheap": {"spot": True, "cpu": "1"}}
        )
        plan = plan_tasks("p", [spec("a", tags="machine.cheap"), spec("b")], cfg)
        assert plan.task("a").machine.node_selector() == {"cloud.google.com/gke-spot": "true"}
        assert (plan.task("a").retries, plan.task("b").retries) == (6, 2)

    def test_untagged_group_gets_the_default_machine_class(self) -> None:
        plan = plan_tasks("p", [spec("a")], config(default_machine_class="large"))
        assert plan.task("a").machine.name == "large"

    def test_unknown_machine_class_names_nodes_and_known_classes(self) -> None:
        nodes = [
            spec("a", "", "x", "airflow.g machine.huge"),
            spec("b", "x", "", "airflow.g machine.huge"),
            spec("c"),
        ]
        (problem,) = problems(nodes)
        assert "unknown machine class 'huge' (tag 'machine.huge') on node(s) ['a', 'b']" in problem
        assert "['default', 'gpu', 'large', 'medium', 'small', 'xlarge']" in problem

    def test_mixed_machine_tags_use_the_largest_class_with_a_warning(self) -> None:
        nodes = [
            spec("a", "", "x", "airflow.g machine.small"),
            spec("b", "x", "", "airflow.g machine.large"),
        ]
        plan = plan_tasks("p", nodes, BridgeConfig())
        assert plan.task("g").machine.name == "large"
        (warning,) = plan.warnings
        assert "group 'g' has nodes with different machine tags" in warning
        assert "'large' on ['b'], 'small' on ['a']" in warning
        assert "the pod uses the largest, 'large'" in warning

    def test_mixed_machine_tags_are_an_error_when_strict(self) -> None:
        nodes = [
            spec("a", "", "x", "airflow.g machine.small"),
            spec("b", "x", "", "airflow.g machine.large"),
        ]
        (problem,) = problems(nodes, config(strict=True))
        assert "the pod uses the largest, 'large'" in problem
        assert problem.endswith("(an error because strict: true)")

    @pytest.mark.parametrize(
        ("machine", "fragment"),
        [
            pytest.param({"cpu": "31"}, "cpu 31 is above the Autopilot maximum of 30", id="cpu"),
            pytest.param(
                {"ephemeral_storage": "20Gi"}, "ephemeral_storage 20Gi is above", id="ephemeral"
            ),
            pytest.param({"gpu_count": 1}, "needs an accelerator type", id="gpu-no-type"),
        ],
    )
    def test_pod_autopilot_would_reject_is_an_error(
        self, machine: dict[str, object], fragment: str
    ) -> None:
        cfg = config(machine_classes={"custom": machine})
        (problem,) = problems([spec("a", tags="machine.custom")], cfg)
        assert problem.startswith("machine class 'custom'")
        assert fragment in problem

    def test_requests_autopilot_would_raise_are_a_warning(self) -> None:
        cfg = config(machine_classes={"lean": {"cpu": "4", "memory": "1Gi"}})
        plan = plan_tasks("p", [spec("a", tags="machine.lean")], cfg)
        (warning,) = plan.warnings
        assert "to cpu=4 memory=4Gi" in warning
        # The pod still asks for what the config says; Autopilot raises it.
        assert plan.task("a").machine.requests()["memory"] == "1Gi"

    def test_class_used_by_several_groups_is_reported_once(self) -> None:
        cfg = config(machine_classes={"lean": {"cpu": "4", "memory": "1Gi"}})
        nodes = [spec("a", tags="machine.lean"), spec("b", tags="machine.lean")]
        assert len(plan_tasks("p", nodes, cfg).warnings) == 1


class TestPlanErrors:
    def test_empty_pipeline(self) -> None:
        (problem,) = problems([])
        assert "the pipeline has no nodes" in problem

    def test_every_grouping_problem_is_reported_at_once(self) -> None:
        nodes = [
            spec("a", "", "x", "airflow.g airflow.h"),
            spec("b", "x", "y"),
            spec("c", "y", "", "airflow.g"),
        ]
        found = problems(nodes)
        assert any("node 'a' has 2 group tags" in problem for problem in found)
        assert any("creates a cycle" in problem for problem in found)

    def test_grouping_and_machine_problems_are_reported_together(self) -> None:
        nodes = [spec("a", tags="airflow.g airflow.h"), spec("b", tags="machine.huge")]
        found = problems(nodes)
        assert any("group tags" in problem for problem in found)
        assert any("unknown machine class 'huge'" in problem for problem in found)

    def test_group_named_like_another_node(self) -> None:
        nodes = [spec("a", tags="airflow.b"), spec("b", tags="airflow.c")]
        (problem,) = problems(nodes)
        assert "group 'b' (nodes ['a']) has the same name as node 'b'" in problem

    @pytest.mark.parametrize("group", ["-", "_", ".", "-.-"])
    def test_a_group_name_with_no_letter_or_digit_is_refused(self, group: str) -> None:
        (problem,) = problems([spec("a", "", "x", f"airflow.{group}"), spec("b", "x", "")])
        assert f"group {group!r} has no letter or digit" in problem
        assert f"its tag 'airflow.{group}'" in problem

    def test_groups_whose_task_id_differs_are_listed_once(self) -> None:
        from kedro_gcs_bridge.dag.create import plan_notes
        from kedro_gcs_bridge.dag.dagfile import DagFile

        nodes = [spec("a", "", "x", "airflow.données_日本"), spec("b", "x", "", "airflow.ok")]
        plan = plan_tasks("p", nodes, config())
        assert plan.renamed == (("données_日本", "donnees_Ri_Ben"),)
        dag = DagFile("d", "pkg", "p", "local", "", config(), plan)
        assert plan_notes(dag) == [
            "group 'données_日本' is task 'donnees_Ri_Ben' (task ids keep letters, digits, "
            "'_', '.', '-')"
        ]


class TestBoundaryDatasets:
    def test_loaded_and_saved_for_a_selection(self, spaceflights_nodes: list[NodeSpec]) -> None:
        loaded, saved = boundary_datasets(
            spaceflights_nodes, ["create_model_input_table_node", "split_data_node"]
        )
        assert loaded == {"preprocessed_companies", "preprocessed_shuttles"}
        assert saved == {"X_train", "X_test", "y_train", "y_test"}

    def test_transcoded_dataset_crosses_under_its_base_name(self) -> None:
        nodes = [spec("a", "", "x@pandas"), spec("b", "x@spark")]
        assert boundary_datasets(nodes, ["a"]) == (set(), {"x"})
        assert boundary_datasets(nodes, ["b"]) == ({"x"}, set())


def _task_of(plan: Plan) -> dict[str, str]:
    return {node: task.task_id for task in plan.tasks for node in task.nodes}


class TestRandomPipelines:
    @settings(max_examples=200, deadline=None)
    @given(random_pipelines())
    def test_plan_is_a_valid_run_order_or_a_cycle_error(self, nodes: list[NodeSpec]) -> None:
        try:
            plan = plan_tasks("p", nodes, BridgeConfig())
        except PlanError as exc:
            assert exc.problems
            assert all("creates a cycle" in problem for problem in exc.problems)
            return
        ids = [task.task_id for task in plan.tasks]
        assert not has_cycle(ids, plan.edges())
        task_of = _task_of(plan)
        listed = [node for task in plan.tasks for node in task.nodes]
        assert sorted(listed) == sorted(node.name for node in nodes)

        above = ancestors(plan.edges())
        made_by = {out: node.name for node in nodes for out in node.outputs}
        for node in nodes:
            for dataset in node.inputs:
                producer = made_by.get(dataset)
                if producer is None or task_of[producer] == task_of[node.name]:
                    continue
                up, down = task_of[producer], task_of[node.name]
                assert up in above.get(down, set())
                assert (dataset, up) in plan.task(down).inputs
                assert dataset in plan.task(up).outputs

    @settings(max_examples=200, deadline=None)
    @given(random_pipelines())
    def test_runner_and_plan_agree_on_boundary_datasets(self, nodes: list[NodeSpec]) -> None:
        try:
            plan = plan_tasks("p", nodes, BridgeConfig())
        except PlanError:
            return
        for task in plan.tasks:
            loaded, saved = boundary_datasets(nodes, task.nodes)
            assert loaded == {dataset for dataset, _ in task.inputs}
            assert saved == set(task.outputs)
            # A task waits for exactly the tasks whose data it reads.
            assert set(task.upstream) == {producer for _, producer in task.inputs}
