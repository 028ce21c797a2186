"""Grouping: which nodes share a pod, which datasets cross between pods, and cyclic groupings."""

from __future__ import annotations

import re

import pytest
from conftest import has_cycle, random_pipelines
from hypothesis import given, settings

from kedro_gcs_bridge.config import parse_config
from kedro_gcs_bridge.errors import ConfigError, PlanError
from kedro_gcs_bridge.planning.grouping import (
    NodeSpec,
    assign_groups,
    base_name,
    group_edges,
    group_pipeline,
    is_parameter,
)
from kedro_gcs_bridge.planning.plan import plan_tasks

PREFIX = "airflow."


def spec(name: str, inputs: str = "", outputs: str = "", tags: str = "") -> NodeSpec:
    """A node from space-separated names: spec("b", "x y", "z", "airflow.g")."""
    return NodeSpec(name, tuple(inputs.split()), tuple(outputs.split()), frozenset(tags.split()))


class TestAssignGroups:
    @pytest.mark.parametrize(
        ("nodes", "expected"),
        [
            pytest.param(
                [spec("a", tags="airflow.g"), spec("b", tags="airflow.g")],
                {"a": "g", "b": "g"},
                id="shared-tag",
            ),
            pytest.param([spec("a"), spec("b")], {"a": "a", "b": "b"}, id="untagged-alone"),
            pytest.param(
                [spec("a", tags="airflow.g machine.large other")],
                {"a": "g"},
                id="other-tags-ignored",
            ),
            pytest.param(
                [spec("a", tags="airflowx.g")], {"a": "a"}, id="prefix-must-match-exactly"
            ),
        ],
    )
    def test_group_of_every_node(self, nodes: list[NodeSpec], expected: dict[str, str]) -> None:
        group_of, problems = assign_groups(nodes, PREFIX)
        assert (group_of, problems) == (expected, [])

    def test_disabled_grouping_gives_every_node_its_own_group(self) -> None:
        nodes = [spec("a", tags="airflow.g airflow.h"), spec("b", tags="airflow.g")]
        assert assign_groups(nodes, PREFIX, enabled=False) == ({"a": "a", "b": "b"}, [])

    @pytest.mark.parametrize(
        ("nodes", "fragments"),
        [
            pytest.param(
                [spec("a", tags="airflow.g airflow.h")],
                ["node 'a' has 2 group tags", "['airflow.g', 'airflow.h']", "keep one"],
                id="two-group-tags",
            ),
            pytest.param(
                [spec("a", tags="airflow.")],
                ["node 'a' has the tag 'airflow.' with no group name", "'airflow.<group>'"],
                id="empty-group-name",
            ),
            pytest.param(
                [spec("a", tags="airflow.b"), spec("b", tags="airflow.c")],
                ["group 'b' (nodes ['a'])", "same name as node 'b'", "runs in group 'c'"],
                id="group-named-like-a-node-elsewhere",
            ),
        ],
    )
    def test_problem_names_the_node_and_the_fix(
        self, nodes: list[NodeSpec], fragments: list[str]
    ) -> None:
        _, problems = assign_groups(nodes, PREFIX)
        assert len(problems) == 1
        for fragment in fragments:
            assert fragment in problems[0]

    def test_untagged_node_named_like_a_group_is_a_clash(self) -> None:
        _, problems = assign_groups([spec("a", "", "x", "airflow.b"), spec("b", "x")], PREFIX)
        assert any("same name as node 'b'" in problem for problem in problems)

    def test_node_named_like_its_own_group_is_fine(self) -> None:
        nodes = [spec("a", tags="airflow.b"), spec("b", tags="airflow.b")]
        assert assign_groups(nodes, PREFIX) == ({"a": "b", "b": "b"}, [])


class TestDatasets:
    @pytest.mark.parametrize(("name", "base"), [("x", "x"), ("x@pandas", "x"), ("x@spark@v2", "x")])
    def test_base_name_drops_the_transcoding_suffix(self, name: str, base: str) -> None:
        assert base_name(name) == base

    @pytest.mark.parametrize(
        ("name", "expected"),
        [("parameters", True), ("params:alpha", True), ("params", False), ("x", False)],
    )
    def test_parameters_never_cross(self, name: str, expected: bool) -> None:
        assert is_parameter(name) is expected

    def test_edges_carry_the_crossing_datasets(self) -> None:
        nodes = [
            spec("a", "raw params:p", "x y", "airflow.g"),
            spec("b", "x", "z", "airflow.g"),
            spec("c", "y z params:p parameters", "w"),
        ]
        group_of, _ = assign_groups(nodes, PREFIX)
        # x stays inside g; raw inputs and parameters never make an edge.
        assert group_edges(nodes, group_of) == {("g", "c"): frozenset({"y", "z"})}

    def test_transcoded_datasets_cross_under_their_base_name(self) -> None:
        nodes = [spec("a", "", "x@pandas"), spec("b", "x@spark")]
        assert group_edges(nodes, {"a": "a", "b": "b"}) == {("a", "b"): frozenset({"x"})}


class TestGroupPipeline:
    def test_example_project_groups(self, spaceflights_nodes: list[NodeSpec]) -> None:
        grouping = group_pipeline("__default__", spaceflights_nodes, PREFIX)
        assert grouping.problems == ()
        assert [(g.name, g.nodes) for g in grouping.groups] == [
            ("companies", ("preprocess_companies_node",)),
            ("shuttles", ("preprocess_shuttles_node", "plot_passenger_capacity_node")),
            ("split", ("create_model_input_table_node", "split_data_node")),
            ("train_model_node", ("train_model_node",)),
            ("evaluate_model_node", ("evaluate_model_node",)),
        ]
        assert grouping.edges == {
            ("companies", "split"): frozenset({"preprocessed_companies"}),
            ("shuttles", "split"): frozenset({"preprocessed_shuttles"}),
            ("split", "train_model_node"): frozenset({"X_train", "y_train"}),
            ("split", "evaluate_model_node"): frozenset({"X_test", "y_test"}),
            ("train_model_node", "evaluate_model_node"): frozenset(
                {"regressor", "training_metrics"}
            ),
        }

    @pytest.mark.parametrize(
        ("tags", "closing", "groups"),
        [
            pytest.param(
                # a -> b -> c with a and c in one group and b outside it.
                ("airflow.g", "", "airflow.g"),
                "{'b', 'c'}",
                "['b', 'g']",
                id="group-around-an-outsider",
            ),
            pytest.param(
                ("airflow.g", "airflow.h", "airflow.g"),
                "{'b', 'c'}",
                "['g', 'h']",
                id="two-groups",
            ),
        ],
    )
    def test_cycle_names_the_nodes_that_close_it(
        self, tags: tuple[str, str, str], closing: str, groups: str
    ) -> None:
        nodes = [
            spec("a", "raw", "x", tags[0]),
            spec("b", "x", "y", tags[1]),
            spec("c", "y", "z", tags[2]),
        ]
        grouping = group_pipeline("my_pipeline", nodes, PREFIX)
        (problem,) = grouping.problems
        assert (
            "Pipeline my_pipeline has invalid grouping that creates a cycle in its grouping "
            f"tags regarding nodes: {closing}" in problem
        )
        assert f"Groups {groups} would each wait for the other" in problem
        assert grouping.groups == ()

    def test_example_cycle_names_the_two_nodes(self, spaceflights_nodes: list[NodeSpec]) -> None:
        # split_data_node moved into `shuttles`: shuttles -> split -> shuttles.
        nodes = [
            NodeSpec(n.name, n.inputs, n.outputs, frozenset({"airflow.shuttles"}))
            if n.name == "split_data_node"
            else n
            for n in spaceflights_nodes
        ]
        (problem,) = group_pipeline("__default__", nodes, PREFIX).problems
        assert "nodes: {'create_model_input_table_node', 'split_data_node'}" in problem

    def test_independent_branches_keep_pipeline_order(self) -> None:
        nodes = [spec("z", "", "x"), spec("y", "", "w"), spec("a", "x w")]
        grouping = group_pipeline("p", nodes, PREFIX)
        assert [g.name for g in grouping.groups] == ["z", "y", "a"]

    def test_groups_say_whether_they_come_from_a_tag(self) -> None:
        nodes = [spec("a", "", "x", "airflow.g"), spec("b", "x")]
        tagged = {g.name: g.tagged for g in group_pipeline("p", nodes, PREFIX).groups}
        assert tagged == {"g": True, "b": False}


def _expected_groups(nodes: list[NodeSpec]) -> dict[str, str]:
    group_of = {}
    for node in nodes:
        tags = [tag[len(PREFIX) :] for tag in node.tags if tag.startswith(PREFIX)]
        group_of[node.name] = tags[0] if tags else node.name
    return group_of


def _crossings(nodes: list[NodeSpec], group_of: dict[str, str]) -> set[tuple[str, str, str]]:
    """(producer node, consumer node, dataset) for every dataset read in another group."""
    made_by = {out: node.name for node in nodes for out in node.outputs}
    return {
        (made_by[dataset], node.name, dataset)
        for node in nodes
        for dataset in node.inputs
        if dataset in made_by and group_of[made_by[dataset]] != group_of[node.name]
    }


class TestRandomPipelines:
    @settings(max_examples=200, deadline=None)
    @given(random_pipelines())
    def test_cycle_reported_exactly_when_the_group_graph_has_one(
        self, nodes: list[NodeSpec]
    ) -> None:
        group_of = _expected_groups(nodes)
        crossings = _crossings(nodes, group_of)
        group_graph = {(group_of[up], group_of[down]) for up, down, _ in crossings}
        cyclic = has_cycle(set(group_of.values()), group_graph)

        grouping = group_pipeline("p", nodes, PREFIX)
        assert bool(grouping.problems) is cyclic
        for problem in grouping.problems:
            assert "invalid grouping that creates a cycle" in problem
            named = set(re.findall(r"'(n\d+)'", problem.split("Groups")[0]))
            # Every node named closes the cycle: it reads data another cyclic group made.
            assert named
            assert named <= {down for _, down, _ in crossings}

    @settings(max_examples=200, deadline=None)
    @given(random_pipelines())
    def test_acyclic_groupings_give_a_valid_run_order(self, nodes: list[NodeSpec]) -> None:
        grouping = group_pipeline("p", nodes, PREFIX)
        if grouping.problems:
            return
        group_of = _expected_groups(nodes)
        assert dict(grouping.group_of) == group_of
        # Every node in exactly one group, in pipeline order inside it.
        listed = [node for group in grouping.groups for node in group.nodes]
        assert sorted(listed) == sorted(node.name for node in nodes)
        order = [node.name for node in nodes]
        for group in grouping.groups:
            assert list(group.nodes) == sorted(group.nodes, key=order.index)
        # Groups come in an order where every producer runs before its consumers.
        position = {group.name: i for i, group in enumerate(grouping.groups)}
        for producer, consumer, dataset in _crossings(nodes, group_of):
            up, down = group_of[producer], group_of[consumer]
            assert position[up] < position[down]
            assert dataset in grouping.edges[(up, down)]
        assert set(grouping.edges) == {
            (group_of[up], group_of[down]) for up, down, _ in _crossings(nodes, group_of)
        }


def _grouped(nodes: list[NodeSpec], groups: dict[str, list[str]]) -> tuple[dict, list[str]]:
    return assign_groups(nodes, PREFIX, configured=groups)


class TestConfiguredGroups:
    """The `groups:` config key: group name -> node names, `tag:<t>` or `namespace:<ns>`."""

    @pytest.mark.parametrize(
        ("nodes", "groups", "expected"),
        [
            pytest.param(
                [spec("a"), spec("b"), spec("c")],
                {"g": ["a", "b"]},
                {"a": "g", "b": "g", "c": "c"},
                id="node-names",
            ),
            pytest.param(
                [spec("a", tags="fast"), spec("b", tags="fast slow"), spec("c", tags="slow")],
                {"g": ["tag:fast"]},
                {"a": "g", "b": "g", "c": "c"},
                id="tag-selector",
            ),
            pytest.param(
                [
                    NodeSpec("ns.a", (), (), namespace="ns"),
                    NodeSpec("ns.sub.b", (), (), namespace="ns.sub"),
                    NodeSpec("nsx.c", (), (), namespace="nsx"),
                ],
                {"g": ["namespace:ns"]},
                {"ns.a": "g", "ns.sub.b": "g", "nsx.c": "nsx.c"},
                id="namespace-selector-takes-nested-not-prefixed",
            ),
            pytest.param(
                [
                    NodeSpec("ns.a", (), (), namespace="ns"),
                    NodeSpec("ns.sub.b", (), (), namespace="ns.sub"),
                ],
                {"g": ["namespace=ns"]},
                {"ns.a": "g", "ns.sub.b": "ns.sub.b"},
                id="exact-namespace-selector-takes-that-namespace-alone",
            ),
            pytest.param(
                [
                    NodeSpec("a.x", (), (), namespace="a"),
                    NodeSpec("a.base.y", (), (), namespace="a.base"),
                    NodeSpec("a.base.z", (), (), namespace="a.base"),
                ],
                {"a": ["namespace=a"], "a_base": ["namespace:a.base"]},
                {"a.x": "a", "a.base.y": "a_base", "a.base.z": "a_base"},
                id="exact-and-nested-namespaces-do-not-overlap",
            ),
            pytest.param(
                [spec("a", tags="airflow.g"), spec("b"), spec("c", tags="airflow.g")],
                {"g": ["b"]},
                {"a": "g", "b": "g", "c": "g"},
                id="config-and-tags-add-up",
            ),
            pytest.param(
                [spec("a", tags="airflow.g"), spec("b")],
                {"g": ["a", "b"]},
                {"a": "g", "b": "g"},
                id="config-agrees-with-tag",
            ),
            pytest.param(
                [spec("a", tags="x"), spec("b")],
                {"g": ["a", "tag:x"]},
                {"a": "g", "b": "b"},
                id="same-node-twice-in-one-group",
            ),
        ],
    )
    def test_group_of_every_node(
        self, nodes: list[NodeSpec], groups: dict[str, list[str]], expected: dict[str, str]
    ) -> None:
        assert _grouped(nodes, groups) == (expected, [])

    @pytest.mark.parametrize(
        ("nodes", "groups", "fragments"),
        [
            pytest.param(
                [spec("a"), spec("b")],
                {"g": ["a"], "h": ["a", "b"]},
                ["groups 'g' ('a') and 'h' ('a') both take node 'a'", "exactly one pod"],
                id="node-in-two-groups",
            ),
            pytest.param(
                [spec("a", tags="x"), spec("b")],
                {"g": ["tag:x"], "h": ["a"]},
                ["groups 'g' ('tag:x') and 'h' ('a') both take node 'a'"],
                id="selector-and-name-overlap",
            ),
            pytest.param(
                [spec("a", tags="airflow.g"), spec("b")],
                {"h": ["a", "b"]},
                ["node 'a' is tagged 'airflow.g'", "puts it in group 'h'", "must agree"],
                id="tag-and-config-disagree",
            ),
            pytest.param(
                [spec("a"), spec("b"), spec("c")],
                {"b": ["a", "c"]},
                ["group 'b' (nodes ['a', 'c'])", "same name as node 'b'", "`groups: b`"],
                id="group-named-like-a-node-outside",
            ),
        ],
    )
    def test_problem_names_the_node(
        self, nodes: list[NodeSpec], groups: dict[str, list[str]], fragments: list[str]
    ) -> None:
        _, problems = _grouped(nodes, groups)
        assert len(problems) == 1, problems
        for fragment in fragments:
            assert fragment in problems[0]

    def test_nested_namespaces_overlap_in_one_line_per_pair(self) -> None:
        nested = [NodeSpec(f"a.base.n{i}", (), (), namespace="a.base") for i in range(15)]
        nodes = [NodeSpec("a.n", (), (), namespace="a"), *nested]
        groups = {"a": ["namespace:a"], "a_base": ["namespace:a.base"]}
        (problem,) = _grouped(nodes, groups)[1]
        assert "groups 'a' ('namespace:a') and 'a_base' ('namespace:a.base')" in problem
        assert "both take 15 nodes ('a.base.n0', 'a.base.n1', 'a.base.n2', ...)" in problem
        assert "'namespace=a' takes namespace 'a' alone" in problem
        assert "'namespace=a.base'" not in problem

    def test_unmatched_entries_warn_only_when_no_registered_pipeline_has_them(self) -> None:
        ours = [spec("split_data_node", "", "x"), spec("b", "x")]
        other = [spec("train_model_node", tags="t")]
        groups = {"g": ["split_data_node", "train_model_node", "tag:t", "train_modl_node"]}
        grouping = group_pipeline("p", ours, PREFIX, configured=groups, registered=ours + other)
        (warning,) = grouping.warnings
        assert "'train_modl_node', which matches no node of any registered pipeline" in warning
        assert "did you mean 'train_model_node'?" in warning

    def test_cycle_through_config_is_reported(self) -> None:
        nodes = [spec("a", "raw", "x"), spec("b", "x", "y"), spec("c", "y", "z")]
        grouping = group_pipeline("p", nodes, PREFIX, configured={"g": ["a", "c"]})
        (problem,) = grouping.problems
        assert "creates a cycle" in problem and "{'b', 'c'}" in problem
        assert "`groups:`" in problem

    def test_disabled_grouping_ignores_the_config(self) -> None:
        nodes = [spec("a"), spec("b")]
        grouping = group_pipeline("p", nodes, PREFIX, enabled=False, configured={"g": ["a", "b"]})
        assert dict(grouping.group_of) == {"a": "a", "b": "b"}

    def test_entries_matching_no_node_are_warnings_with_a_hint(self) -> None:
        nodes = [spec("split_data_node", "", "x"), spec("b", "x")]
        grouping = group_pipeline(
            "p", nodes, PREFIX, configured={"g": ["split_data_nod", "b", "tag:nope"]}
        )
        assert grouping.problems == ()
        assert len(grouping.warnings) == 2
        assert "did you mean 'split_data_node'?" in grouping.warnings[0]
        assert "'tag:nope'" in grouping.warnings[1]

    def test_example_regrouped_by_config_alone(self, spaceflights_nodes: list[NodeSpec]) -> None:
        untagged = [
            NodeSpec(
                n.name, n.inputs, n.outputs, frozenset(t for t in n.tags if "airflow" not in t)
            )
            for n in spaceflights_nodes
        ]
        groups = {
            "prep": [
                "preprocess_companies_node",
                "preprocess_shuttles_node",
                "plot_passenger_capacity_node",
            ],
            "split": ["create_model_input_table_node", "split_data_node"],
            "model": ["tag:machine.medium"],
        }
        # tag:machine.medium also takes the shuttles and split nodes: two groups for each.
        assert len(group_pipeline("p", untagged, PREFIX, configured=groups).problems) == 4
        groups["model"] = ["train_model_node", "evaluate_model_node"]
        grouping = group_pipeline("p", untagged, PREFIX, configured=groups)
        assert [g.name for g in grouping.groups] == ["prep", "split", "model"]


class TestGroupsKey:
    """Shape checks of `groups:` in parse_config."""

    def test_reads_lists_and_single_names(self) -> None:
        config = parse_config({"groups": {"g": ["a", "tag:x", "namespace=n"], "h": "b"}})
        assert config.groups == {"g": ("a", "tag:x", "namespace=n"), "h": ("b",)}

    @pytest.mark.parametrize(
        ("value", "fragment"),
        [
            pytest.param(["a", "b"], "must map group names", id="a-list"),
            pytest.param({"g": []}, "must list its nodes", id="empty-group"),
            pytest.param({"g": [1]}, "not node names", id="not-a-string"),
            pytest.param({"g": ["tag:"]}, "not node names", id="empty-selector"),
            pytest.param({"g": ["namespace="]}, "'namespace=<namespace>'", id="empty-exact"),
            pytest.param({"a b": ["x"]}, "group name 'a b'", id="bad-group-name"),
        ],
    )
    def test_bad_shapes_are_config_errors(self, value: object, fragment: str) -> None:
        with pytest.raises(ConfigError, match=re.escape(fragment)):
            parse_config({"groups": value})

    def test_plan_uses_the_config(self, spaceflights_nodes: list[NodeSpec]) -> None:
        groups = {"split": ["train_model_node"]}
        plan = plan_tasks("p", spaceflights_nodes, parse_config({"groups": groups}))
        assert plan.task("split").nodes == (
            "create_model_input_table_node",
            "split_data_node",
            "train_model_node",
        )

    def test_plan_names_the_disagreeing_node(self, spaceflights_nodes: list[NodeSpec]) -> None:
        with pytest.raises(
            PlanError, match=re.escape("node 'split_data_node' is tagged 'airflow.split'")
        ):
            plan_tasks(
                "p", spaceflights_nodes, parse_config({"groups": {"x": ["split_data_node"]}})
            )
