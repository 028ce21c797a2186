"""`kedro gcs-bridge plan | validate | init`, run for real in copies of the example project.

Every command is run once per session (see `CLI_JOBS` in conftest.py).
"""

from __future__ import annotations

import pytest
from conftest import EXAMPLE, REPO, TEMPLATE, KedroRun, dot_graph, mermaid_graph

PARQUET = "data/02_intermediate/preprocessed_companies.parquet"
MODEL = "data/06_models/regressor.pickle"
CARRIED = "carried through the run prefix"
DRAWINGS = {"mermaid": (mermaid_graph, "flowchart"), "dot": (dot_graph, "digraph")}


def plan_lines(run: KedroRun) -> list[str]:
    assert run.returncode == 0, run.describe()
    return run.stdout.splitlines()


def drawing(run: KedroRun, first: str) -> str:
    """The drawing in a command's stdout (Kedro's log lines share stdout)."""
    lines = plan_lines(run)
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    return "\n".join(lines[start:]) + "\n"


class TestPlan:
    @pytest.mark.parametrize(
        "block",
        [
            [
                "task companies  (pod companies, retries 1)",
                "  nodes:    preprocess_companies_node",
                "  machine:  default: cpu=500m memory=2Gi ephemeral=1Gi",
                "  upstream: -",
            ],
            [
                "task split  (pod split, retries 1)",
                "  nodes:    create_model_input_table_node, split_data_node",
                "  machine:  medium: cpu=1 memory=4Gi ephemeral=2Gi",
                "  upstream: companies, shuttles",
            ],
            [
                "task evaluate_model_node  (pod evaluate-model-node, retries 1)",
                "  nodes:    evaluate_model_node",
                "  machine:  medium: cpu=1 memory=4Gi ephemeral=2Gi",
                "  upstream: split, train_model_node",
                "  in:       X_test <- split",
                f"  in:       regressor <- train_model_node  [LOCAL DISK {MODEL}: {CARRIED}]",
            ],
        ],
        ids=["companies", "split", "evaluate"],
    )
    def test_text_lists_tasks_nodes_machine_upstream_and_data(
        self, block: list[str], cli_runs: dict[str, KedroRun]
    ) -> None:
        lines = plan_lines(cli_runs["plan_text"])
        start = lines.index(block[0])
        assert lines[start : start + len(block)] == block
        assert "Pipeline __default__: 5 task(s)" in lines

    def test_text_flags_a_crossing_dataset_on_local_disk(
        self, cli_runs: dict[str, KedroRun]
    ) -> None:
        lines = plan_lines(cli_runs["plan_text"])
        flagged = [line for line in lines if "LOCAL DISK" in line]
        assert [line.split("  [")[0] for line in flagged] == [
            "  out:      preprocessed_companies",
            "  out:      preprocessed_shuttles",
            "  in:       preprocessed_companies <- companies",
            "  in:       preprocessed_shuttles <- shuttles",
            "  out:      regressor",
            "  in:       regressor <- train_model_node",
        ]
        # local_handoff (default true): the run prefix carries them.
        assert flagged[0].endswith(f"  [LOCAL DISK {PARQUET}: {CARRIED}]")
        assert flagged[-1].endswith(f"  [LOCAL DISK {MODEL}: {CARRIED}]")
        # In memory, handed over through the run prefix: not flagged.
        assert "  in:       X_train <- split" in lines

    @pytest.mark.parametrize("fmt", ["mermaid", "dot"])
    def test_drawing_has_one_box_per_task_and_labelled_edges(
        self, fmt: str, cli_runs: dict[str, KedroRun]
    ) -> None:
        parse, first = DRAWINGS[fmt]
        boxes, edges = parse(drawing(cli_runs[f"plan_{fmt}"], first))
        assert sorted(boxes) == sorted(
            ["companies", "shuttles", "split", "train_model_node", "evaluate_model_node"]
        )
        assert "create_model_input_table_node" in boxes["split"]
        assert "split_data_node" in boxes["split"]
        assert set(edges) == {
            ("companies", "split"),
            ("shuttles", "split"),
            ("split", "train_model_node"),
            ("split", "evaluate_model_node"),
            ("train_model_node", "evaluate_model_node"),
        }
        # Local-disk data is marked (dotted in mermaid, dashed red in dot).
        assert edges[("companies", "split")] == "preprocessed_companies (local disk)"
        assert edges[("split", "train_model_node")] == "X_train, y_train"
        assert "regressor (local disk)" in edges[("train_model_node", "evaluate_model_node")]
        # model_input_table is made and read inside `split`: it never crosses.
        assert not any("model_input_table" in label for label in edges.values())

    def test_without_grouping_every_dataset_between_nodes_is_an_edge(
        self, cli_runs: dict[str, KedroRun]
    ) -> None:
        boxes, edges = mermaid_graph(drawing(cli_runs["plan_mermaid_ungrouped"], "flowchart"))
        assert len(boxes) == 7
        label = "model_input_table (local disk)"
        assert edges[("create_model_input_table_node", "split_data_node")] == label

    def test_output_file_holds_only_the_drawing(self, cli_runs: dict[str, KedroRun]) -> None:
        run = cli_runs["plan_dot_file"]
        assert run.returncode == 0, run.describe()
        assert "wrote plan.dot" in run.output
        text = (run.project / "plan.dot").read_text(encoding="utf-8")
        # Every line is part of the graph: the file can go straight to Graphviz.
        boxes, edges = dot_graph(text)
        assert len(boxes) == 5 and len(edges) == 5
        assert text == drawing(cli_runs["plan_dot"], "digraph")


class TestValidate:
    def test_local_disk_crossing_is_an_error_without_local_handoff(
        self, cli_runs: dict[str, KedroRun]
    ) -> None:
        run = cli_runs["validate_local_disk"]
        assert run.returncode == 1, run.describe()
        error = (
            "error: dataset 'preprocessed_companies' is saved on local disk "
            f"({PARQUET}) by task companies and read by task(s) split in other pods, which "
            "will not find it."
        )
        remedy = (
            "errors above: set `local_handoff: true` so the run prefix carries it, "
            "or move it to GCS: `kedro gcs-bridge catalog --root gs://<bucket>/<path>`"
        )
        assert f"__default__: {error}" in run.output
        assert f"data_processing: {error}" in run.output
        # A remedy several errors share is said once, after them.
        assert run.output.count("__default__: remedy for the ") >= 1
        assert remedy in run.output
        assert "Remedy: set `local_handoff: true`" not in run.output.split("data_science")[0]
        assert "__default__: ok" not in run.output
        # data_science does not hold the node that makes it, but crosses with its model.
        assert "data_science: error: dataset 'preprocessed_companies'" not in run.output
        assert (
            f"data_science: error: dataset 'regressor' is saved on local disk ({MODEL}) by task "
            "train_model_node and read by task(s) evaluate_model_node in other pods"
        ) in run.output


class TestInit:
    def test_writes_the_template_and_keeps_existing_config(
        self, cli_runs: dict[str, KedroRun]
    ) -> None:
        run = cli_runs["init"]
        assert run.returncode == 0, run.describe()
        assert (run.project / "templates/gcs_bridge.j2").read_bytes() == TEMPLATE.read_bytes()
        config = "conf/base/airflow.yml"
        assert (run.project / config).read_bytes() == (EXAMPLE / config).read_bytes()
        assert "wrote templates/gcs_bridge.j2" in run.output
        assert "skipped conf/base/airflow.yml (exists; --force overwrites it)" in run.output

    def test_force_replaces_the_config(self, cli_runs: dict[str, KedroRun]) -> None:
        run = cli_runs["init_force"]
        assert run.returncode == 0, run.describe()
        shipped = REPO / "kedro_gcs_bridge/project_files/airflow.yml"
        written = run.project / "conf/base/airflow.yml"
        assert written.read_bytes() == shipped.read_bytes()
        assert "wrote conf/base/airflow.yml" in run.output
        assert "skipped" not in run.output

    @pytest.mark.parametrize("job", ["init", "init_force"])
    def test_copies_the_docker_folder(self, job: str, cli_runs: dict[str, KedroRun]) -> None:
        run = cli_runs[job]
        shipped = sorted(p.relative_to(REPO) for p in (REPO / "docker").rglob("*") if p.is_file())
        copied = run.project / "docker"
        written = sorted(p.relative_to(run.project) for p in copied.rglob("*") if p.is_file())
        assert written == shipped
        for relative in shipped:
            assert (run.project / relative).read_bytes() == (REPO / relative).read_bytes()
