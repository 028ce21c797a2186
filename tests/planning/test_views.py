"""Views of a plan for people: the text listing and the Mermaid / Graphviz drawings."""

from __future__ import annotations

import pytest
from conftest import dot_graph, mermaid_graph

from kedro_gcs_bridge.config import BridgeConfig, parse_config
from kedro_gcs_bridge.planning.grouping import NodeSpec
from kedro_gcs_bridge.planning.plan import Plan, plan_tasks
from kedro_gcs_bridge.planning.views import (
    plan_dot,
    plan_mermaid,
    plan_text,
    render_plan,
    replay_table,
)


@pytest.fixture
def grouped(spaceflights_nodes: list[NodeSpec]) -> Plan:
    return plan_tasks("__default__", spaceflights_nodes, BridgeConfig())


@pytest.fixture
def ungrouped(spaceflights_nodes: list[NodeSpec]) -> Plan:
    return plan_tasks("__default__", spaceflights_nodes, parse_config({"grouping": False}))


DRAWINGS = {"mermaid": mermaid_graph, "dot": dot_graph}
EXAMPLE_EDGES = {
    ("companies", "split"): "preprocessed_companies",
    ("shuttles", "split"): "preprocessed_shuttles",
    ("split", "train_model_node"): "X_train, y_train",
    ("split", "evaluate_model_node"): "X_test, y_test",
    ("train_model_node", "evaluate_model_node"): "regressor, training_metrics",
}


class TestText:
    def test_lists_tasks_nodes_machine_upstream_and_data(self, grouped: Plan) -> None:
        text = plan_text(grouped)
        assert text.startswith("Pipeline __default__: 5 task(s)\n")
        block = text.split("\n\n")[3]
        assert block.splitlines() == [
            "task split  (pod split, retries 1)",
            "  nodes:    create_model_input_table_node, split_data_node",
            "  machine:  medium: cpu=1 memory=4Gi ephemeral=2Gi",
            "  upstream: companies, shuttles",
            "  in:       preprocessed_companies <- companies",
            "  in:       preprocessed_shuttles <- shuttles",
            "  out:      X_test",
            "  out:      X_train",
            "  out:      y_test",
            "  out:      y_train",
        ]

    def test_task_without_upstream_says_so(self, grouped: Plan) -> None:
        assert "task companies  (pod companies, retries 1)\n" in plan_text(grouped)
        assert "  upstream: -\n" in plan_text(grouped)

    def test_local_disk_datasets_are_flagged_where_they_cross(self, grouped: Plan) -> None:
        text = plan_text(grouped, {"preprocessed_companies": "data/x.parquet: lost between pods"})
        flag = "  [LOCAL DISK data/x.parquet: lost between pods]"
        assert f"  out:      preprocessed_companies{flag}\n" in text
        assert f"  in:       preprocessed_companies <- companies{flag}\n" in text
        assert text.count("LOCAL DISK") == 2

    def test_warnings_come_last(self) -> None:
        nodes = [
            NodeSpec("a", (), ("x",), frozenset({"airflow.g", "machine.small"})),
            NodeSpec("b", ("x",), (), frozenset({"airflow.g", "machine.large"})),
        ]
        text = plan_text(plan_tasks("p", nodes, BridgeConfig()))
        assert text.splitlines()[-1].startswith("warning: group 'g' has nodes with different")


class TestDrawings:
    def test_local_disk_edges_are_marked(self, grouped: Plan) -> None:
        notes = {"preprocessed_companies": "data/x.parquet: lost between pods"}
        mermaid = render_plan(grouped, "mermaid", notes)
        assert ' -. "preprocessed_companies (local disk)" .-> ' in mermaid
        assert mermaid.count("local disk") == 1
        dot = render_plan(grouped, "dot", notes)
        assert (
            '  "companies" -> "split" [label="preprocessed_companies (local disk)", '
            "style=dashed, color=red];"
        ) in dot.splitlines()
        assert dot.count("dashed") == 1

    @pytest.mark.parametrize("fmt", ["mermaid", "dot"])
    def test_one_box_per_task_listing_its_nodes(self, grouped: Plan, fmt: str) -> None:
        boxes, _ = DRAWINGS[fmt](render_plan(grouped, fmt))
        assert sorted(boxes) == sorted(task.task_id for task in grouped.tasks)
        for task in grouped.tasks:
            for node in task.nodes:
                assert node in boxes[task.task_id]
            assert task.machine.name in boxes[task.task_id]

    @pytest.mark.parametrize("fmt", ["mermaid", "dot"])
    def test_edges_are_labelled_with_the_crossing_datasets(self, grouped: Plan, fmt: str) -> None:
        _, edges = DRAWINGS[fmt](render_plan(grouped, fmt))
        assert edges == EXAMPLE_EDGES

    @pytest.mark.parametrize("fmt", ["mermaid", "dot"])
    def test_dataset_inside_a_group_is_no_edge(
        self, grouped: Plan, ungrouped: Plan, fmt: str
    ) -> None:
        _, grouped_edges = DRAWINGS[fmt](render_plan(grouped, fmt))
        _, ungrouped_edges = DRAWINGS[fmt](render_plan(ungrouped, fmt))
        assert "model_input_table" not in grouped_edges.values()
        assert ungrouped_edges[("create_model_input_table_node", "split_data_node")] == (
            "model_input_table"
        )

    def test_quotes_cannot_break_the_drawings(self) -> None:
        nodes = [
            NodeSpec('say "hi"', (), ('a "b"',), frozenset()),
            NodeSpec("c\\d", ('a "b"',), (), frozenset()),
        ]
        plan = plan_tasks('p "1"', nodes, BridgeConfig())
        boxes, edges = mermaid_graph(plan_mermaid(plan))
        for text in [*boxes.values(), *edges.values()]:
            assert '"' not in text
        assert "say #quot;hi#quot;" in boxes["say_hi"]
        assert edges == {("say_hi", "c_d"): "a #quot;b#quot;"}
        dot = plan_dot(plan)
        assert dot.startswith('digraph "p \\"1\\"" {')
        assert '[label="a \\"b\\""]' in dot

    def test_text_is_the_default_format(self, grouped: Plan) -> None:
        assert render_plan(grouped, "text") == plan_text(grouped)


def test_replay_table_has_a_column_per_figure() -> None:
    table = replay_table(
        [("companies", "success", 3.04, 1200, ["a"]), ("split", "failed", 12.0, 0, ["b", "c"])]
    ).splitlines()
    assert table[0].split() == ["task", "state", "seconds", "bytes", "out", "nodes"]
    assert table[1].split() == ["companies", "success", "3.0", "1200", "a"]
    assert table[2].split() == ["split", "failed", "12.0", "0", "b,", "c"]
    start = table[0].index("nodes")
    assert [line[start:].rstrip() for line in table] == ["nodes", "a", "b, c"]
