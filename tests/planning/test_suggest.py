"""Auto-grouping: the cost model, the search's guarantees, and a suggested `groups:` block that
Airflow loads."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import has_cycle, random_pipelines
from hypothesis import given, settings
from hypothesis import strategies as st
from kedro.pipeline import Pipeline, node

from kedro_gcs_bridge.config import parse_config
from kedro_gcs_bridge.errors import PlanError
from kedro_gcs_bridge.planning.grouping import (
    NodeSpec,
    group_edges,
    group_pipeline,
    node_specs,
)
from kedro_gcs_bridge.planning.plan import node_classes, plan_tasks
from kedro_gcs_bridge.planning.suggest import (
    CostModel,
    Measurements,
    groups_block,
    groups_yaml,
    memory_grouping,
    namespace_grouping,
    suggest_groups,
    suggestion_text,
    unsized_catalog_reads,
)

PREFIX = "airflow."
MODEL = CostModel()


def spec(name: str, inputs: str = "", outputs: str = "", tags: str = "") -> NodeSpec:
    return NodeSpec(name, tuple(inputs.split()), tuple(outputs.split()), frozenset(tags.split()))


def classes_of(nodes: list[NodeSpec]) -> dict[str, str]:
    """Node -> machine class from `machine.<class>` tags (default: `default`)."""
    return {
        node.name: next(
            (t.split(".", 1)[1] for t in sorted(node.tags) if t.startswith("machine.")), "default"
        )
        for node in nodes
    }


def alone(nodes: list[NodeSpec]) -> dict[str, str]:
    return {node.name: node.name for node in nodes}


def group_of(groups: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {member: name for name, members in groups.items() for member in members}


class TestCostModel:
    def test_one_task_pays_start_compute_and_fixed_round_trips(self) -> None:
        nodes = [spec("a", "raw", "x")]
        result = suggest_groups(nodes, Measurements({"a": 10.0}), {}, alone(nodes))
        expected = 60 + 5 + 5 * 0.040 + 10
        assert result.ungrouped.makespan_s == pytest.approx(expected)
        assert result.ungrouped.pod_seconds == pytest.approx(expected)

    def test_a_boundary_dataset_costs_its_round_trips_and_bytes(self) -> None:
        nodes = [spec("a", "raw", "x"), spec("b", "x", "y")]
        size = 400_000_000
        measured = Measurements({"a": 1.0, "b": 2.0}, {"x": size})
        result = suggest_groups(nodes, measured, {}, alone(nodes))
        handoff = 14 * 0.040 + 2 * size / 200e6 + 2 * size / 1e9
        assert result.ungrouped.makespan_s == pytest.approx(2 * MODEL.task_overhead() + 3 + handoff)
        assert result.ungrouped.bytes == size
        assert result.suggested.tasks == 1
        assert result.suggested.bytes == 0

    def test_parallel_branches_overlap(self) -> None:
        nodes = [spec("a", "raw", "x"), spec("b", "raw", "y")]
        measured = Measurements({"a": 100.0, "b": 50.0})
        result = suggest_groups(nodes, measured, {}, alone(nodes))
        assert result.ungrouped.makespan_s == pytest.approx(MODEL.task_overhead() + 100)

    def test_persisted_datasets_order_tasks_but_cost_nothing(self) -> None:
        nodes = [spec("a", "raw", "x"), spec("b", "x", "y")]
        measured = Measurements({}, {"x": 10**9}, persisted=frozenset({"x"}))
        result = suggest_groups(nodes, measured, {}, alone(nodes))
        assert result.ungrouped.makespan_s == pytest.approx(2 * MODEL.task_overhead())
        assert result.ungrouped.bytes == 0


class TestSearch:
    def test_time_keeps_a_long_branch_in_parallel(self) -> None:
        # One pod per group: a pod holding src and a branch would make the other branch wait.
        nodes = [
            spec("src", "raw", "s"),
            spec("left", "s", "l"),
            spec("mid", "s", "m"),
            spec("end", "m", "e"),
        ]
        measured = Measurements({"src": 1, "left": 600, "mid": 300, "end": 1})
        result = suggest_groups(nodes, measured, {}, alone(nodes))
        assert sorted(result.suggested.groups.values()) == [("left",), ("mid", "end"), ("src",)]
        assert result.suggested.makespan_s == pytest.approx(result.ungrouped.makespan_s)
        assert result.suggested.pod_seconds < result.ungrouped.pod_seconds

    def test_a_small_fan_out_goes_in_one_pod_as_group_by_memory_would(self) -> None:
        # From one pod per node every first merge lengthens the critical path, so greedy
        # merging alone stops at one pod per branch; the search also starts from kedro-airflow's
        # groupings and keeps the best.
        nodes = [spec("src", "raw", "s")]
        for branch in "abc":
            nodes += [
                spec(f"{branch}0", "s", f"{branch}0o"),
                spec(f"{branch}1", f"{branch}0o", f"{branch}1o"),
            ]
        nodes.append(spec("join", "a1o b1o c1o", "out"))
        measured = Measurements(dict.fromkeys((n.name for n in nodes), 1.0), default_bytes=1000)
        result = suggest_groups(nodes, measured, {}, alone(nodes))
        assert result.suggested.tasks == 1
        assert result.suggested.makespan_s == pytest.approx(result.by_memory.makespan_s)
        assert result.suggested.makespan_s < result.ungrouped.makespan_s

    def test_a_diamond_of_long_branches_stays_as_it_is(self) -> None:
        nodes = [
            spec("src", "raw", "s"),
            spec("left", "s", "l"),
            spec("right", "s", "r"),
            spec("join", "l r", "out"),
        ]
        measured = Measurements({"src": 1, "left": 600, "right": 600, "join": 1})
        result = suggest_groups(nodes, measured, {}, alone(nodes))
        assert result.suggested.tasks == 4

    def test_cost_takes_fewer_pod_seconds_than_time(self) -> None:
        nodes = [spec("src", "raw", "s"), spec("left", "s", "l"), spec("right", "s", "r")]
        measured = Measurements({"src": 1, "left": 600, "right": 600})
        timed = suggest_groups(nodes, measured, {}, alone(nodes), objective="time")
        cheap = suggest_groups(nodes, measured, {}, alone(nodes), objective="cost")
        assert cheap.suggested.pod_seconds <= timed.suggested.pod_seconds
        assert cheap.suggested.tasks == 1

    def test_machine_classes_stay_apart_unless_allowed(self) -> None:
        nodes = [spec("a", "raw", "x", "machine.small"), spec("b", "x", "y", "machine.large")]
        measured = Measurements({"a": 1, "b": 1})
        kept = suggest_groups(nodes, measured, classes_of(nodes), alone(nodes))
        mixed = suggest_groups(nodes, measured, classes_of(nodes), alone(nodes), allow_mixed=True)
        assert (kept.suggested.tasks, mixed.suggested.tasks) == (2, 1)

    def test_memory_bound_is_respected(self) -> None:
        nodes = [spec("a", "raw", "x"), spec("b", "x", "y"), spec("c", "y", "z"), spec("d", "z")]
        sizes = {"x": 100, "y": 100, "z": 100}
        measured = Measurements({}, sizes)
        free = suggest_groups(nodes, measured, {}, alone(nodes))
        bound = suggest_groups(nodes, measured, {}, alone(nodes), max_memory=250)
        assert free.suggested.tasks == 1
        assert bound.suggested.tasks == 2

    def test_does_not_start_from_a_current_grouping_over_the_memory_bound(self) -> None:
        nodes = [spec("a", "raw", "x"), spec("b", "x", "y"), spec("c", "y", "z"), spec("d", "z")]
        measured = Measurements({}, {"x": 100, "y": 100, "z": 100})
        one = dict.fromkeys("abcd", "g")
        result = suggest_groups(nodes, measured, {}, one, max_memory=250)
        assert result.suggested.tasks == 2
        assert "more bytes than --max-memory" in result.notes[0]

    def test_does_not_start_from_a_current_grouping_that_mixes_classes(self) -> None:
        nodes = [spec("a", "raw", "x", "machine.small"), spec("b", "x", "y", "machine.large")]
        result = suggest_groups(nodes, Measurements({}), classes_of(nodes), {"a": "g", "b": "g"})
        assert result.suggested.tasks == 2
        assert "mixes machine classes" in result.notes[0]

    def test_unmeasured_sizes_are_stated(self) -> None:
        nodes = [spec("a", "raw", "x"), spec("b", "x", "y"), spec("c", "y", "z")]
        result = suggest_groups(
            nodes, Measurements({}, {"x": 1}, default_bytes=7), {}, alone(nodes)
        )
        assert any("1 dataset(s) have no measured size" in note for note in result.notes)
        assert "assumed 7 bytes" in result.notes[-1]

    def test_json_has_the_documented_shape(self, spaceflights_nodes: list[NodeSpec]) -> None:
        current = dict(group_pipeline("p", spaceflights_nodes, PREFIX).group_of)
        measured = Measurements({n.name: 30.0 for n in spaceflights_nodes})
        payload = json.loads(
            json.dumps(suggest_groups(spaceflights_nodes, measured, {}, current).to_json())
        )
        for key in ("ungrouped", "current", "suggested"):
            assert {"tasks", "makespan_s", "pod_seconds", "bytes"} <= set(payload[key])
        assert isinstance(payload["suggested"]["groups"], dict)


class TestMachineClasses:
    @pytest.mark.parametrize(
        "tags",
        ["", "machine.small", "machine.medium machine.xlarge", "machine.large machine.medium"],
    )
    def test_a_node_gets_the_class_the_plan_gives_its_pod(self, tags: str) -> None:
        nodes = [spec("n", "a", "b", tags)]
        config = parse_config({})
        (task,) = plan_tasks("p", nodes, config).tasks
        assert node_classes(nodes, config) == {"n": task.machine.name}

    def test_a_class_the_config_lacks_keeps_its_name(self) -> None:
        nodes = [spec("n", "a", "b", "machine.huge")]
        assert node_classes(nodes, parse_config({})) == {"n": "huge"}


class TestReport:
    def test_the_table_lines_up_every_grouping(self, spaceflights_nodes: list[NodeSpec]) -> None:
        current = dict(group_pipeline("p", spaceflights_nodes, PREFIX).group_of)
        measured = Measurements({n.name: 30.0 for n in spaceflights_nodes})
        result = suggest_groups(spaceflights_nodes, measured, {}, current)
        lines = suggestion_text(result, MODEL).splitlines()
        table = lines[: lines.index("")]
        assert table[0].split() == [
            "grouping",
            "tasks",
            "makespan",
            "pod-seconds",
            "bytes",
            "via",
            "GCS",
        ]
        assert set(table[1]) == {"-", " "}
        assert len(table) == 7 and len({len(line) for line in table}) == 1
        # Numbers are right-aligned: every makespan ends where its header does.
        end = table[0].index("makespan") + len("makespan")
        assert all(line[end - 1] == "s" for line in table[2:])


class TestKedroAirflowGroupings:
    def test_memory_grouping_matches_kedro_airflow(self) -> None:
        from kedro.io import DataCatalog, MemoryDataset
        from kedro_airflow.grouping import group_memory_nodes

        pipeline = Pipeline(
            [
                node(len, "raw", "a_out", name="a"),
                node(len, "a_out", "b_out", name="b"),
                node(len, "raw", "c_out", name="c"),
                node(len, ["b_out", "c_out"], "d_out", name="d"),
            ]
        )
        catalog = DataCatalog({"raw": MemoryDataset(1), "c_out": _Persisted()})
        theirs = {frozenset(g.nodes) for g in group_memory_nodes(catalog, pipeline)}
        mine = memory_grouping(node_specs(pipeline), frozenset({"raw", "c_out"}))
        members: dict[str, set[str]] = {}
        for name, group in mine.items():
            members.setdefault(group, set()).add(name)
        assert {frozenset(m) for m in members.values()} == theirs

    def test_namespace_grouping_takes_the_top_level_namespace(self) -> None:
        nodes = [
            NodeSpec("a.x", (), (), namespace="a"),
            NodeSpec("a.b.y", (), (), namespace="a.b"),
            NodeSpec("z", (), ()),
        ]
        assert namespace_grouping(nodes) == {"a.x": "a", "a.b.y": "a", "z": "z"}


class _Persisted:
    """Stands in for a file dataset: kedro-airflow only asks 'is it a MemoryDataset?'."""

    def load(self) -> None:  # pragma: no cover - never loaded
        return None


def _random_measurements(draw: st.DrawFn, nodes: list[NodeSpec]) -> Measurements:
    seconds = {n.name: draw(st.floats(0, 900, allow_nan=False)) for n in nodes}
    outputs = [out for n in nodes for out in n.outputs]
    sizes = {out: draw(st.integers(0, 5 * 10**9)) for out in outputs}
    return Measurements(seconds, sizes)


@st.composite
def measured_pipelines(draw: st.DrawFn) -> tuple[list[NodeSpec], Measurements, float]:
    nodes = draw(random_pipelines())
    return nodes, _random_measurements(draw, nodes), draw(st.sampled_from([0.0, 30.0, 120.0]))


class TestRandomPipelines:
    @settings(max_examples=150, deadline=None)
    @given(measured_pipelines(), st.sampled_from(["time", "cost"]), st.booleans())
    def test_suggestion_is_valid_and_never_worse(
        self, case: tuple[list[NodeSpec], Measurements, float], objective: str, mixed: bool
    ) -> None:
        nodes, measured, pod_start = case
        model = CostModel(pod_start_s=pod_start)
        grouping = group_pipeline("p", nodes, PREFIX)
        current = dict(grouping.group_of)
        classes = classes_of(nodes)
        tagged = _tagged(nodes)
        if any("creates a cycle" in problem for problem in grouping.problems):
            with pytest.raises(PlanError, match="tags wait for each other"):
                suggest_groups(nodes, measured, classes, current, tagged=tagged)
            return
        result = suggest_groups(
            nodes, measured, classes, current, model, objective, mixed, tagged=tagged
        )
        again = suggest_groups(
            nodes, measured, classes, current, model, objective, mixed, tagged=tagged
        )
        assert result == again

        suggested = group_of(dict(result.suggested.groups))
        assert sorted(suggested) == sorted(n.name for n in nodes)
        edges = group_edges(nodes, suggested)
        assert not has_cycle(set(suggested.values()), edges)
        if not mixed:  # a tag group mixes classes only as its tags ask, with nothing added
            for name, members in result.suggested.groups.items():
                by_tag = {n for n, t in tagged.items() if t == name}
                assert len({classes[m] for m in members}) == 1 or set(members) == by_tag

        def key(e: Any) -> tuple[float, float]:
            pair = (e.makespan_s, e.pod_seconds)
            return pair if objective == "time" else pair[::-1]

        tolerance = 1e-6
        if not tagged:  # tag groups stay whole: with tags, ungrouped is out of reach
            assert key(result.suggested) <= tuple(v + tolerance for v in key(result.ungrouped))
        current_ok = not grouping.problems and (mixed or not result.current.mixed)
        if current_ok:
            assert key(result.suggested) <= tuple(v + tolerance for v in key(result.current))
        for theirs in (result.by_memory, result.by_namespace):
            if theirs.makespan_s is not None and (mixed or not theirs.mixed) and not tagged:
                assert key(result.suggested) <= tuple(v + tolerance for v in key(theirs))

    @settings(max_examples=100, deadline=None)
    @given(measured_pipelines())
    def test_pasted_block_plans_the_suggested_tasks(
        self, case: tuple[list[NodeSpec], Measurements, float]
    ) -> None:
        nodes, measured, _ = case
        untagged = [
            NodeSpec(
                n.name, n.inputs, n.outputs, frozenset(t for t in n.tags if "airflow." not in t)
            )
            for n in nodes
        ]
        result = suggest_groups(untagged, measured, classes_of(untagged), alone(untagged))
        block = groups_block(result.suggested.groups)
        plan = plan_tasks("p", untagged, parse_config({"groups": block}))
        assert {t.nodes for t in plan.tasks} == set(result.suggested.groups.values())


def _fan_outs(n: int, rng: random.Random) -> list[NodeSpec]:
    """Chained blocks of source -> 10 branches of 1-3 nodes -> join, `n` nodes or a few more."""
    nodes: list[NodeSpec] = []
    previous = "raw"
    while len(nodes) < n:
        block = f"b{len(nodes)}"
        nodes.append(spec(f"{block}.src", previous, f"{block}.s"))
        ends = []
        for branch in range(10):
            last = f"{block}.s"
            for step in range(rng.randint(1, 3)):
                name = f"{block}.{branch}_{step}"
                nodes.append(spec(name, last, f"{name}.o"))
                last = f"{name}.o"
            ends.append(last)
        nodes.append(spec(f"{block}.join", " ".join(ends), f"{block}.j"))
        previous = f"{block}.j"
    return nodes


def _wide(n: int, rng: random.Random) -> list[NodeSpec]:
    middle = [spec(f"w{i}", "s", f"w{i}.o") for i in range(n - 2)]
    join = spec("join", " ".join(node.outputs[0] for node in middle), "out")
    return [spec("src", "raw", "s"), *middle, join]


class TestScale:
    @pytest.mark.parametrize("shape", [_fan_outs, _wide])
    def test_2000_nodes_deterministic_and_never_worse(
        self, shape: Callable[[int, random.Random], list[NodeSpec]]
    ) -> None:
        """(How long the search takes: benchmarks/suggest.py, target < 10 s at 2,000 nodes.)"""
        rng = random.Random(16)
        nodes = shape(2000, rng)
        seconds = {node.name: rng.uniform(1, 120) for node in nodes}
        sizes = {out: int(10 ** rng.uniform(3, 9)) for node in nodes for out in node.outputs}
        measured = Measurements(seconds, sizes)
        results = [suggest_groups(nodes, measured, {}, alone(nodes)) for _ in range(2)]
        assert len(nodes) >= 2000
        assert results[0] == results[1]
        assert results[0].suggested.makespan_s <= results[0].ungrouped.makespan_s


def _identity(*values: Any) -> Any:
    return values[0]


class TestPastedIntoAirflow:
    def test_suggested_block_gives_a_dag_that_loads(
        self, render_dag_file: Callable[..., Path]
    ) -> None:
        from airflow.dag_processing.dagbag import DagBag

        pipeline = Pipeline(
            [
                node(_identity, "raw", "s", name="src"),
                node(_identity, "s", "l", name="left"),
                node(_identity, "s", "m", name="mid"),
                node(_identity, "m", "e", name="end"),
            ]
        )
        nodes = node_specs(pipeline)
        measured = Measurements({"src": 1, "left": 600, "mid": 1, "end": 1}, {"s": 10**6})
        result = suggest_groups(nodes, measured, classes_of(nodes), alone(nodes))
        block = groups_block(result.suggested.groups)
        assert block

        path = render_dag_file(pipeline, groups=block)
        bag = DagBag(dag_folder=str(path.parent))
        assert not bag.import_errors, bag.import_errors
        (dag,) = bag.dags.values()
        group_tasks = [t for t in dag.tasks if not t.task_id.startswith("gcs_bridge_finalize")]
        assert len(group_tasks) == result.suggested.tasks
        assert set(block) <= {t.task_id for t in group_tasks}


def _create(pipeline: Pipeline, block: dict[str, list[str]], name: str = "__default__") -> Any:
    """What `kedro airflow create` plans with `block` pasted under `groups:` in the example's
    airflow.yml (in-process: the planning `build_dag_file` does for the hook)."""
    import yaml
    from _kedro_jobs import EXAMPLE

    from kedro_gcs_bridge.dag.dagfile import build_dag_file

    example = yaml.safe_load((EXAMPLE / "conf/base/airflow.yml").read_text(encoding="utf-8"))
    pasted = yaml.safe_load(groups_yaml(block))
    variables = {
        **example["default"],
        **pasted,
        "pipeline": pipeline,
        "pipeline_name": name,
        "env": "local",
        "package_name": "pkg",
    }
    return build_dag_file(variables)


def _tagged(nodes: list[NodeSpec]) -> dict[str, str]:
    """Node -> its one `airflow.<group>` tag's group, as `kedro gcs-bridge suggest` passes."""
    found = {n.name: [t[len(PREFIX) :] for t in n.tags if t.startswith(PREFIX)] for n in nodes}
    return {name: tags[0] for name, tags in found.items() if len(tags) == 1 and tags[0]}


def _spaceflights(tags: dict[str, str] | None = None) -> Pipeline:
    """The example's six nodes (data_processing then data_science), tags added by name."""
    tags = tags or {}

    def made(func: Any, inputs: Any, outputs: Any, name: str) -> Any:
        return node(func, inputs, outputs, name=name, tags=[tags[name]] if name in tags else None)

    return Pipeline(
        [
            made(_identity, "companies", "preprocessed_companies", "preprocess_companies_node"),
            made(_identity, "shuttles", "preprocessed_shuttles", "preprocess_shuttles_node"),
            made(
                _identity,
                ["preprocessed_shuttles", "preprocessed_companies", "reviews"],
                "model_input_table",
                "create_model_input_table_node",
            ),
            made(
                _identity,
                ["model_input_table", "params:model_options"],
                ["X_train", "X_test", "y_train", "y_test"],
                "split_data_node",
            ),
            made(_identity, ["X_train", "y_train"], "regressor", "train_model_node"),
            made(_identity, ["regressor", "X_test", "y_test"], "metrics", "evaluate_model_node"),
        ]
    )


def _suggested_block(pipeline: Pipeline, seconds: dict[str, float]) -> dict[str, list[str]]:
    nodes = node_specs(pipeline)
    grouping = group_pipeline("p", nodes, PREFIX)
    assert not grouping.problems
    sizes = {out: 10**6 for n in nodes for out in n.outputs}
    measured = Measurements(seconds, sizes)
    result = suggest_groups(
        nodes, measured, classes_of(nodes), dict(grouping.group_of), tagged=_tagged(nodes)
    )
    return groups_block(result.suggested.groups)


class TestTagsAgree:
    """Issue 23: the block `suggest` prints is accepted by `kedro airflow create` as it is."""

    def test_two_parallel_nodes_sharing_a_tag_stay_one_group(self) -> None:
        tag = "airflow.prep"
        pipeline = _spaceflights(
            {"preprocess_companies_node": tag, "preprocess_shuttles_node": tag}
        )
        seconds = dict.fromkeys((n.name for n in pipeline.nodes), 1.0)
        seconds |= {"preprocess_companies_node": 600.0, "preprocess_shuttles_node": 600.0}
        block = _suggested_block(pipeline, seconds)
        dag = _create(pipeline, block)
        assert dag.error is None, dag.error
        (prep,) = [t for t in dag.plan.tasks if "preprocess_companies_node" in t.nodes]
        assert {"preprocess_companies_node", "preprocess_shuttles_node"} <= set(prep.nodes)
        assert prep.group == "prep"

    def test_two_tags_never_merge_into_one_group(self) -> None:
        pipeline = _spaceflights(
            {"train_model_node": "airflow.train", "evaluate_model_node": "airflow.report"}
        )
        seconds = dict.fromkeys((n.name for n in pipeline.nodes), 1.0)
        block = _suggested_block(pipeline, seconds)
        dag = _create(pipeline, block)
        assert dag.error is None, dag.error
        group = {n: t.group for t in dag.plan.tasks for n in t.nodes}
        assert group["train_model_node"] == "train"
        assert group["evaluate_model_node"] == "report"

    def test_namespaced_pipeline_without_tags(self) -> None:
        from kedro.pipeline import pipeline as modular

        base = Pipeline(
            [
                node(_identity, "raw", "clean"),
                node(_identity, "clean", "features"),
                node(_identity, "features", "model"),
            ]
        )
        pipeline = modular(base, namespace="a", inputs={"raw"}) + modular(
            base, namespace="b", inputs={"raw"}
        )
        seconds = {n.name: 5.0 for n in pipeline.nodes}
        block = _suggested_block(pipeline, seconds)
        assert block
        dag = _create(pipeline, block)
        assert dag.error is None, dag.error
        assert len(dag.plan.tasks) == sum(1 for _ in block) + sum(
            1 for n in pipeline.nodes if not any(n.name in m for m in block.values())
        )

    @settings(max_examples=100, deadline=None)
    @given(measured_pipelines())
    def test_pasted_block_agrees_with_the_tags(
        self, case: tuple[list[NodeSpec], Measurements, float]
    ) -> None:
        nodes, measured, _ = case
        grouping = group_pipeline("p", nodes, PREFIX)
        if grouping.problems:
            return  # the tags themselves are wrong: plan says so before suggest could help
        current = dict(grouping.group_of)
        result = suggest_groups(
            nodes, measured, classes_of(nodes), current, allow_mixed=True, tagged=_tagged(nodes)
        )
        block = groups_block(result.suggested.groups)
        plan = plan_tasks("p", nodes, parse_config({"groups": block}))
        assert {t.nodes for t in plan.tasks} == set(result.suggested.groups.values())


class TestIncompleteRun:
    """Issue 23: a run in which a task failed is said to be incomplete, naming what is missing."""

    def test_namespaced_run_names_the_missing_task_and_nodes(self) -> None:
        from dataclasses import dataclass, field

        from kedro_gcs_bridge.planning.suggest import figures_from_manifests

        @dataclass(frozen=True)
        class Committed:
            task: str
            nodes: tuple[str, ...]
            dag_tasks: tuple[str, ...] = ("a", "b")
            datasets: dict[str, Any] = field(default_factory=dict)
            node_seconds: dict[str, float] | None = None
            started_at: str | None = None
            finished_at: str | None = None
            pod_start_seconds: float | None = None

        nodes = ["a.clean__1", "a.fit__2", "b.clean__3", "b.fit__4"]
        whole = figures_from_manifests(
            [
                Committed(
                    "a", ("a.clean__1", "a.fit__2"), node_seconds=dict.fromkeys(nodes[:2], 1)
                ),
                Committed(
                    "b", ("b.clean__3", "b.fit__4"), node_seconds=dict.fromkeys(nodes[2:], 1)
                ),
            ],
            nodes=nodes,
        )
        assert whole.incomplete() == []
        partial = figures_from_manifests(
            [Committed("a", ("a.clean__1", "a.fit__2"), node_seconds=dict.fromkeys(nodes[:2], 1))],
            nodes=nodes,
        )
        assert partial.missing_tasks == ("b",)
        assert partial.unmeasured_nodes == ("b.clean__3", "b.fit__4")
        text = "\n".join(partial.incomplete())
        assert "the run is incomplete" in text
        assert "(failed or never ran): b" in text
        assert "b.clean__3, b.fit__4" in text


def test_catalog_reads_are_named_as_unsized_not_counted_as_0_bytes() -> None:
    """Issue 29: datasets a node reads from the catalog's own storage (raw inputs, an
    intermediate on gs://) never cross the run prefix, so the run has no size for them:
    suggest names them instead of counting them as 0 B."""
    pipe = Pipeline(
        [
            node(_identity, "raw", "table", name="prep"),
            node(_identity, "table", "scored", name="score"),
            node(_identity, ["scored", "params:k"], "report", name="report"),
        ]
    )
    nodes = node_specs(pipe)
    assert unsized_catalog_reads(nodes, frozenset({"raw", "scored", "report"})) == (
        "raw",
        "scored",
    )
    assert unsized_catalog_reads(nodes, frozenset()) == ()
