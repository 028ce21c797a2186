"""`kedro gcs-bridge ...` in a copy of the example project.

In-process through Click's CliRunner (the project bootstrapped once for the module), and
through the real `kedro` CLI once per command family whose stdout matters: Kedro prints its
own log record there before any plugin code runs, so `-o FILE` is what gives a clean file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from conftest import (
    EXAMPLE,
    LOCAL_DISK_WARN,
    REPO,
    TEMPLATE,
    Job,
    KedroRun,
    dot_graph,
    make_project,
    mermaid_graph,
    run_jobs,
)

from kedro_gcs_bridge.cli import BridgeGroup, commands
from kedro_gcs_bridge.cli.options import STDOUT_NOTE
from kedro_gcs_bridge.errors import ConfigError

PARQUET = "data/02_intermediate/preprocessed_companies.parquet"
MODEL = "data/06_models/regressor.pickle"
CARRIED = "carried through the run prefix"
DRAWINGS = {"mermaid": (mermaid_graph, "flowchart"), "dot": (dot_graph, "digraph")}
WARN = ("--params", LOCAL_DISK_WARN)
PACKAGE = REPO / "kedro_gcs_bridge"


# --- In-process: the example project bootstrapped once --------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The ProjectMetadata of a copy of the example project, bootstrapped in this process."""
    from kedro.framework.startup import bootstrap_project

    path = make_project(tmp_path_factory.mktemp("cli"), "spaceflights", Job(()))
    metadata = bootstrap_project(path)
    yield metadata
    # bootstrap_project put the copy's src/ on sys.path; its modules go with it.
    sys.path[:] = [entry for entry in sys.path if entry != str(path / "src")]
    for name in [m for m in sys.modules if m.split(".")[0] == metadata.package_name]:
        del sys.modules[name]


def cli(metadata: Any, *args: str) -> Result:
    """`kedro gcs-bridge <args>` in-process, stdout and stderr apart."""
    return CliRunner().invoke(commands, ["gcs-bridge", *args], obj=metadata)


def said(result: Result) -> str:
    return f"exit {result.exit_code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def lines_of(result: Result) -> list[str]:
    assert result.exit_code == 0, said(result)
    return result.stdout.splitlines()


def drawing(text: str, first: str) -> str:
    """The drawing in a command's stdout (Kedro's log record may come first)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    return "\n".join(lines[start:]) + "\n"


@pytest.fixture(scope="module")
def plan_text(project: Any) -> Result:
    return cli(project, "plan", *WARN)


@pytest.fixture(scope="module")
def measured_run(project: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A run prefix of the example's ungrouped DAG, committed through the real store: every
    node a task of 10 s, after a 30 s pod start, saving each dataset another node reads."""
    from kedro.framework.project import pipelines

    from kedro_gcs_bridge.pod.store import HandoffStore

    prefix = f"{tmp_path_factory.mktemp('measured').as_uri()}/spaceflights/manual__1"
    pipeline = pipelines["__default__"]
    read = {name for node in pipeline.nodes for name in node.inputs}
    HandoffStore(prefix, task="setup").mark("spaceflights", "manual__1")
    for node in pipeline.nodes:
        store = HandoffStore(prefix, task=node.name)
        for output in sorted(set(node.outputs) & read):
            store.save(output, {"rows": list(range(100))})
        extra = {"node_seconds": {node.name: 10.0}, "pod_start_seconds": 30.0}
        store.write_manifest([node.name], "2026-12-01T00:00:00+00:00", extra)
    return prefix


@pytest.fixture(scope="module")
def failed_run(project: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A run prefix of the example's ungrouped DAG in which task `train_model_node` failed:
    every other task committed its manifest (each naming the DAG's tasks)."""
    from kedro.framework.project import pipelines

    from kedro_gcs_bridge.pod.store import HandoffStore

    prefix = f"{tmp_path_factory.mktemp('failed').as_uri()}/spaceflights/manual__2"
    pipeline = pipelines["__default__"]
    tasks = [node.name for node in pipeline.nodes]
    HandoffStore(prefix, task="setup").mark("spaceflights", "manual__2")
    for node in pipeline.nodes:
        if node.name == "train_model_node":
            continue
        store = HandoffStore(prefix, task=node.name)
        extra = {"node_seconds": {node.name: 10.0}, "dag_tasks": tuple(tasks)}
        store.write_manifest([node.name], "2026-12-01T00:00:00+00:00", extra)
    return prefix


# --- The real `kedro` CLI, once per family whose stdout matters --------------------------------


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory: pytest.TempPathFactory, measured_run: str) -> dict[str, KedroRun]:
    suggest = ("gcs-bridge", "suggest", "--from", measured_run, "--round-trip-ms", "0")
    jobs = {
        "plan_dot_file": Job(("gcs-bridge", "plan", "--format", "dot", "-o", "plan.dot", *WARN)),
        "suggest_json_file": Job((*suggest, "--format", "json", "-o", "suggestion.json")),
    }
    return run_jobs(tmp_path_factory.mktemp("real"), jobs)


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
        self, block: list[str], plan_text: Result
    ) -> None:
        lines = lines_of(plan_text)
        start = lines.index(block[0])
        assert lines[start : start + len(block)] == block
        assert "Pipeline __default__: 5 task(s)" in lines

    def test_text_flags_a_crossing_dataset_on_local_disk(self, plan_text: Result) -> None:
        lines = lines_of(plan_text)
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

    def test_text_is_not_machine_readable_so_no_note(self, plan_text: Result) -> None:
        assert STDOUT_NOTE not in plan_text.stderr

    @pytest.mark.parametrize("fmt", ["mermaid", "dot"])
    def test_drawing_has_one_box_per_task_and_labelled_edges(self, fmt: str, project: Any) -> None:
        parse, first = DRAWINGS[fmt]
        result = cli(project, "plan", "--format", fmt, *WARN)
        boxes, edges = parse(drawing("\n".join(lines_of(result)), first))
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
        # On stdout, Kedro's own log record may come first: stderr says so, and what to do.
        assert result.stderr.splitlines() == [STDOUT_NOTE]

    def test_without_grouping_every_dataset_between_nodes_is_an_edge(self, project: Any) -> None:
        params = f"grouping=false,{LOCAL_DISK_WARN}"
        result = cli(project, "plan", "--format", "mermaid", "--params", params)
        boxes, edges = mermaid_graph(drawing(result.stdout, "flowchart"))
        assert len(boxes) == 7
        label = "model_input_table (local disk)"
        assert edges[("create_model_input_table_node", "split_data_node")] == label

    @pytest.mark.parametrize("fmt", ["mermaid", "dot"])
    def test_output_file_holds_exactly_the_drawing(
        self, fmt: str, project: Any, tmp_path: Path
    ) -> None:
        target = tmp_path / f"plan.{fmt}"
        written = cli(project, "plan", "--format", fmt, "-o", str(target), *WARN)
        assert lines_of(written) == [f"wrote {target}"]
        assert STDOUT_NOTE not in written.stderr
        shown = cli(project, "plan", "--format", fmt, *WARN)
        assert target.read_text(encoding="utf-8") == drawing(shown.stdout, DRAWINGS[fmt][1])

    def test_an_unwritable_output_is_one_error(self, project: Any, tmp_path: Path) -> None:
        target = tmp_path / "missing" / "plan.dot"
        result = cli(project, "plan", "--format", "dot", "-o", str(target), *WARN)
        assert result.exit_code == 1, said(result)
        assert "plan.dot" in result.stderr and "Traceback" not in result.stderr

    def test_the_real_cli_writes_a_file_graphviz_reads(
        self, real_runs: dict[str, KedroRun]
    ) -> None:
        run = real_runs["plan_dot_file"]
        assert run.returncode == 0, run.describe()
        assert "wrote plan.dot" in run.output
        # Every line is part of the graph: the file can go straight to Graphviz.
        boxes, edges = dot_graph((run.project / "plan.dot").read_text(encoding="utf-8"))
        assert len(boxes) == 5 and len(edges) == 5


class TestValidate:
    def test_local_disk_crossing_is_an_error_without_local_handoff(self, project: Any) -> None:
        params = f"local_handoff=false,{LOCAL_DISK_WARN}"
        result = cli(project, "validate", "--params", params)
        assert result.exit_code == 1, said(result)
        output = " ".join(result.output.split())
        error = (
            "error: dataset 'preprocessed_companies' is saved on local disk "
            f"({PARQUET}) by task companies and read by task(s) split in other pods, which "
            "will not find it."
        )
        remedy = (
            "errors above: set `handoff.local_handoff: true` so the run prefix carries it, "
            "or move it to GCS: `kedro gcs-bridge catalog --root gs://<bucket>/<path>`"
        )
        # Said once, with every pipeline it affects (issue 23).
        assert f"__default__, data_processing: {error}" in output
        assert output.count(error) == 1
        # A remedy several errors share is said once, after them.
        assert output.count("remedy for the ") >= 1
        assert remedy in output
        assert "Remedy: set `handoff.local_handoff: true`" not in output
        assert "__default__: ok" not in output
        assert "__default__: ERROR (" in output
        # data_science does not hold the node that makes it, but crosses with its model.
        assert (
            f"data_science: error: dataset 'regressor' is saved on local disk ({MODEL}) by task "
            "train_model_node and read by task(s) evaluate_model_node in other pods"
        ) in output

    def test_each_local_disk_problem_is_said_once(self, project: Any) -> None:
        result = cli(project, "validate")
        assert result.exit_code == 1, said(result)
        problems = [line for line in result.stdout.splitlines() if ": error: " in line]
        texts = [line.split(": error: ", 1)[1] for line in problems]
        assert len(texts) == len(set(texts)), problems
        metrics = next(line for line in problems if "output 'metrics'" in line)
        assert metrics.startswith("__default__, data_science: error: ")

    def test_namespaced_pipelines_share_a_problem_once(self) -> None:
        """Pipelines of namespaces `a` and `b` (no tags) registered alone and in __default__."""
        from kedro_gcs_bridge.cli.plan import _once
        from kedro_gcs_bridge.planning.storage import remedies_once

        lost = "output '{0}.metrics' is saved on local disk (data/{0}.json) by task {0}.evaluate"
        errors = {
            f"{lost.format(ns)} and lost when its pod ends. Remedy: move it to GCS": [
                "__default__",
                ns,
            ]
            for ns in "ab"
        }
        assert _once(remedies_once(list(errors)), errors) == [
            f"__default__, a: error: {lost.format('a')} and lost when its pod ends.",
            f"__default__, b: error: {lost.format('b')} and lost when its pod ends.",
            "remedy for the 2 errors above: move it to GCS",
        ]

    def test_every_pipeline_is_ok_with_local_disk_allowed(self, project: Any) -> None:
        from kedro.framework.project import pipelines

        lines = lines_of(cli(project, "validate", *WARN))
        assert "__default__: ok, 5 task(s)" in lines
        ok = [line.split(":")[0] for line in lines if ": ok, " in line]
        assert ok == sorted(pipelines)

    def test_an_unknown_pipeline_is_named(self, project: Any) -> None:
        result = cli(project, "validate", "-p", "nope", *WARN)
        assert result.exit_code == 1
        assert "Pipeline nope not found; registered: ['__default__'," in result.stderr

    def test_a_groups_entry_of_another_pipeline_is_no_warning(self, project: Any) -> None:
        params = f"{LOCAL_DISK_WARN},groups.model=train_model_node"
        result = cli(project, "validate", "--params", params)
        assert "groups:" not in result.stdout, said(result)
        typo = cli(project, "validate", "--params", f"{params}x")
        warned = [line for line in typo.stdout.splitlines() if "groups:" in line]
        assert len(warned) == 4, said(typo)  # once per registered pipeline
        assert "matches no node of any registered pipeline" in warned[0]
        assert "did you mean 'train_model_node'?" in warned[0]


@pytest.fixture
def pods_project(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Copies of the example with init's docker ignore file and config files moved or added:
    `make({relative: text or None})` (None: delete) -> the copy's ProjectMetadata."""
    from kedro.framework.startup import bootstrap_project

    added: list[str] = []

    def make(files: dict[str, str | None]) -> Any:
        path = make_project(tmp_path / str(len(added)), "spaceflights", Job(()))
        ignore = "docker/Dockerfile.dockerignore"
        (path / ignore).parent.mkdir(parents=True)
        (path / ignore).write_bytes((REPO / ignore).read_bytes())
        for relative, text in files.items():
            if text is None:
                (path / relative).unlink()
                continue
            (path / relative).parent.mkdir(parents=True, exist_ok=True)
            (path / relative).write_text(text, encoding="utf-8")
        added.append(str(path / "src"))
        return bootstrap_project(path)

    yield make
    sys.path[:] = [entry for entry in sys.path if entry not in added]


PARAMETERS = (EXAMPLE / "conf/base/parameters.yml").read_text(encoding="utf-8")
#: The example's parameters only in conf/local, which init's ignore file leaves out.
PARAMS_IN_LOCAL = {"conf/base/parameters.yml": None, "conf/local/parameters.yml": PARAMETERS}


class TestValidateThePodsWorld:
    """validate checks what the pods will have: the env's config in the image, and every
    parameter a task reads defined in that env."""

    def test_an_env_the_image_leaves_out_is_an_error(self, pods_project: Callable) -> None:
        result = cli(pods_project(PARAMS_IN_LOCAL), "validate", *WARN)
        assert result.exit_code == 1, said(result)
        error = result.stderr
        assert error.startswith("Error: The DAG runs every pod with `--env local`"), error
        for fragment in (
            "docker/Dockerfile.dockerignore",
            "conf/local/parameters.yml",
            "'conf/local/**'",
            "-e <env>",
            "conf/base/",
        ):
            assert fragment in error, error
        assert "ok," not in result.stdout

    def test_plan_warns_on_stderr(self, pods_project: Callable) -> None:
        result = cli(pods_project(PARAMS_IN_LOCAL), "plan", "--format", "mermaid", *WARN)
        assert result.exit_code == 0, said(result)
        assert "warning: The DAG runs every pod with `--env local`" in result.stderr
        assert "warning" not in result.stdout

    def test_a_local_backend_runs_no_image(self, pods_project: Callable) -> None:
        params = f"{LOCAL_DISK_WARN},pod_backend=local"
        result = cli(pods_project(PARAMS_IN_LOCAL), "validate", "--params", params)
        assert result.exit_code == 0, said(result)

    def test_credentials_left_out_are_no_problem(self, pods_project: Callable) -> None:
        files = {"conf/local/credentials.yml": "dev_s3: {key: x}\n"}
        result = cli(pods_project(files), "validate", *WARN)
        assert result.exit_code == 0, said(result)

    def test_a_parameter_the_env_lacks_names_task_parameter_and_env(
        self, pods_project: Callable
    ) -> None:
        files = {**PARAMS_IN_LOCAL, "conf/gcs/catalog.yml": "{}\n"}
        result = cli(pods_project(files), "validate", "-e", "gcs", "-p", "__default__", *WARN)
        assert result.exit_code == 1, said(result)
        assert "__default__: ERROR" in result.stdout
        line = next(x for x in result.stdout.splitlines() if "params:model_options" in x)
        assert "task 'split' reads params:model_options" in line, line
        assert "env 'gcs' does not define (conf/local/parameters.yml does, which env" in line
        assert "conf/base/parameters*.yml" in line and "conf/gcs/parameters*.yml" in line

    def test_credentials_the_pods_env_lacks_are_one_error_not_a_traceback(
        self, pods_project: Callable
    ) -> None:
        catalog = (EXAMPLE / "conf/base/catalog.yml").read_text(encoding="utf-8")
        vendor = "vendor_prices:\n  type: pandas.CSVDataset\n  filepath: gs://v/p.csv\n"
        metadata = pods_project(
            {
                "conf/base/catalog.yml": catalog + vendor + "  credentials: dev_gcs\n",
                "conf/local/credentials.yml": "dev_gcs:\n  token: anon\n",
                "conf/gcs/catalog.yml": "{}\n",
            }
        )
        result = cli(metadata, "validate", "-e", "gcs", *WARN)
        assert result.exit_code == 1, said(result)
        assert "Traceback" not in result.stdout + result.stderr
        (line,) = [x for x in result.stderr.splitlines() if x.startswith("Error: ")]
        assert "env 'gcs' does not define: 'vendor_prices' uses 'dev_gcs'" in line, line
        assert "Workload Identity" in result.stderr

    def test_a_groups_block_at_the_files_top_level_stops_validate(
        self, pods_project: Callable
    ) -> None:
        """suggest's block pasted unindented, and a section for a misspelled pipeline, are
        read by nobody: validate stops on them as create does; another section only warns."""
        airflow = (EXAMPLE / "conf/base/airflow.yml").read_text(encoding="utf-8")
        pasted = airflow + "groups:\n  prep: [preprocess_companies_node]\n"
        pasted += "data_sciense:\n  retries: 4\nnightly_extra:\n  retries: 1\n"
        result = cli(pods_project({"conf/base/airflow.yml": pasted}), "validate", *WARN)
        assert result.exit_code == 1, said(result)
        assert "'groups' is a config key at the file's top level" in result.stderr
        assert "section 'data_sciense' names no registered pipeline (did you mean " in (
            result.stderr
        )
        assert "warning: airflow config: section 'nightly_extra'" in result.stderr

    def test_a_dockerfile_the_dag_does_not_know_is_a_warning(self, pods_project: Callable) -> None:
        dockerfile = "FROM python:3.11\nENV KEDRO_ENV=prod\nCOPY . .\n"
        result = cli(pods_project({"docker/Dockerfile": dockerfile}), "validate", *WARN)
        assert result.exit_code == 0, said(result)
        warned = [x for x in result.stdout.splitlines() if x.startswith("warning: docker/")]
        assert len(warned) == 2, said(result)  # once, not once per pipeline
        assert "does not install kedro-gcs-bridge" in warned[0]
        assert "sets ENV KEDRO_ENV=prod" in warned[1]
        prod = pods_project({"docker/Dockerfile": dockerfile, "conf/prod/catalog.yml": "{}\n"})
        same_env = cli(prod, "validate", "-e", "prod", *WARN)
        assert "KEDRO_ENV" not in same_env.stdout, said(same_env)

    def test_a_dag_param_counts_as_defined(self, pods_project: Callable) -> None:
        files = {**PARAMS_IN_LOCAL, "conf/gcs/catalog.yml": "{}\n"}
        params = f"{LOCAL_DISK_WARN},dag.params.model_options=1"
        result = cli(pods_project(files), "validate", "-e", "gcs", "--params", params)
        assert "params:model_options" not in result.stdout, said(result)


class TestSuggest:
    def test_text_compares_groupings_in_a_table(self, project: Any, measured_run: str) -> None:
        lines = lines_of(cli(project, "suggest", "--from", measured_run, "--round-trip-ms", "0"))
        assert lines[0] == f"7 task manifest(s) read from {measured_run}"
        assert lines[1].startswith("pod start: 30.0 s (measured: median task start")
        header = next(i for i, line in enumerate(lines) if line.startswith("grouping "))
        assert lines[header].split() == [
            "grouping",
            "tasks",
            "makespan",
            "pod-seconds",
            "bytes",
            "via",
            "GCS",
        ]
        width = len(lines[header])
        rows = lines[header + 1 : header + 7]
        assert set(rows[0]) == {"-", " "}  # the rule under the header
        assert [row.split()[0] for row in rows[1:]] == [
            "ungrouped",
            "current",
            "suggested",
            "kedro-airflow",
            "kedro-airflow",
        ]
        assert {len(row) for row in rows} == {width}  # one column width for every row
        where = "Paste into airflow.yml, indented under `default:` (or under the pipeline's name):"
        assert where in lines

    @pytest.mark.parametrize(
        "options",
        [
            (),
            ("--objective", "cost"),
            ("--allow-mixed",),
            ("--pod-start", "0"),
            ("--pod-start", "600"),
        ],
    )
    def test_every_printed_block_is_accepted_by_create(
        self, options: tuple[str, ...], project: Any, measured_run: str
    ) -> None:
        """Issue 23: the example's nodes carry `airflow.<group>` tags; the block suggest
        prints, pasted under `groups:` in its airflow.yml, plans without an error."""
        import yaml
        from kedro.framework.project import pipelines

        from kedro_gcs_bridge.dag.dagfile import build_dag_file

        result = cli(project, "suggest", "--from", measured_run, "--format", "json", *options)
        assert result.exit_code == 0, said(result)
        suggested = json.loads(result.stdout)["suggested"]
        pasted = {"groups": suggested["groups"]}
        airflow = yaml.safe_load(
            (project.project_path / "conf/base/airflow.yml").read_text(encoding="utf-8")
        )
        variables = {
            **airflow["default"],
            **pasted,
            "pipeline": pipelines["__default__"],
            "pipeline_name": "__default__",
            "env": "local",
            "package_name": project.package_name,
        }
        dag = build_dag_file(variables)
        assert dag.error is None, f"{result.stdout}\n{dag.error}"
        # What create makes is what suggest estimated: its tasks, its groups.
        assert len(dag.plan.tasks) == suggested["tasks"]
        made = {task.group: list(task.nodes) for task in dag.plan.tasks if len(task.nodes) > 1}
        assert {name: sorted(nodes) for name, nodes in made.items()} == {
            name: sorted(nodes) for name, nodes in suggested["groups"].items()
        }
        tagged = {"create_model_input_table_node", "split_data_node"}  # both `airflow.split`
        (split,) = [task for task in dag.plan.tasks if tagged & set(task.nodes)]
        assert tagged <= set(split.nodes)
        assert split.group == "split"

    def test_a_run_with_a_failed_task_is_said_incomplete(
        self, project: Any, failed_run: str
    ) -> None:
        lines = lines_of(cli(project, "suggest", "--from", failed_run))
        assert lines[0] == f"6 task manifest(s) read from {failed_run}"
        assert "warning: the run is incomplete: its figures are partial." in lines
        missing = "warning: 1 task(s) of the run committed no manifest (failed or never ran): "
        assert f"{missing}train_model_node" in lines
        assert any(
            line.startswith("warning: no measurement for 1 node(s)")
            and line.endswith(": train_model_node")
            for line in lines
        )

    def test_a_whole_run_is_not_said_incomplete(self, project: Any, measured_run: str) -> None:
        lines = lines_of(cli(project, "suggest", "--from", measured_run))
        assert not any("incomplete" in line for line in lines)

    def test_json_names_the_missing_tasks(self, project: Any, failed_run: str) -> None:
        result = cli(project, "suggest", "--from", failed_run, "--format", "json")
        assert result.exit_code == 0, said(result)
        assert "the run is incomplete" in result.stderr
        payload = json.loads(result.stdout)
        assert payload["run"]["missing_tasks"] == ["train_model_node"]

    @pytest.mark.parametrize("fmt", ["json", "yaml"])
    def test_machine_formats_say_the_rest_on_stderr(
        self, fmt: str, project: Any, measured_run: str
    ) -> None:
        result = cli(project, "suggest", "--from", measured_run, "--format", fmt)
        assert result.exit_code == 0, said(result)
        assert STDOUT_NOTE in result.stderr.splitlines()
        assert "pod start: 30.0 s" in result.stderr
        assert "pod start" not in result.stdout

    def test_output_file_holds_only_the_json(
        self, project: Any, measured_run: str, tmp_path: Path
    ) -> None:
        target = tmp_path / "suggestion.json"
        result = cli(
            project, "suggest", "--from", measured_run, "--format", "json", "-o", str(target)
        )
        assert lines_of(result) == [f"wrote {target}"]
        assert STDOUT_NOTE not in result.stderr
        found = json.loads(target.read_text(encoding="utf-8"))
        assert found["ungrouped"]["tasks"] == 7
        assert found["model"]["pod_start_s"] == 30.0

    def test_a_bad_max_memory_is_a_usage_error_naming_it(
        self, project: Any, measured_run: str
    ) -> None:
        result = cli(project, "suggest", "--from", measured_run, "--max-memory", "lots")
        assert result.exit_code == 2, said(result)
        (line,) = [x for x in result.stderr.splitlines() if x.startswith("Error: ")]
        assert line.startswith("Error: Invalid value for '--max-memory': memory 'lots'"), line

    def test_the_real_cli_writes_valid_json_to_the_file(
        self, real_runs: dict[str, KedroRun]
    ) -> None:
        run = real_runs["suggest_json_file"]
        assert run.returncode == 0, run.describe()
        assert "wrote suggestion.json" in run.stdout
        found = json.loads((run.project / "suggestion.json").read_text(encoding="utf-8"))
        assert set(found) >= {"ungrouped", "current", "suggested", "model"}
        assert "pod start: 30.0 s" in run.stderr


class TestCatalogAndRuns:
    def test_a_bad_root_is_a_usage_error(self, project: Any) -> None:
        result = cli(project, "catalog", "--root", "s3://bucket/data")
        assert result.exit_code == 2, said(result)
        assert "gs://" in result.stderr

    def test_entries_without_a_path_are_named(self, pods_project: Callable) -> None:
        catalog = (EXAMPLE / "conf/base/catalog.yml").read_text(encoding="utf-8")
        table = "sales:\n  type: pandas.GBQTableDataset\n  dataset: d\n  table_name: t\n"
        metadata = pods_project({"conf/base/catalog.yml": catalog + table})
        result = cli(metadata, "catalog", "--root", "gs://bucket/data")
        assert result.exit_code == 0, said(result)
        (line,) = [x for x in result.stdout.splitlines() if "sales" in x]
        assert line.startswith("left alone: sales (pandas.GBQTableDataset has no filepath"), line

    def test_a_bad_age_names_the_option(self, project: Any) -> None:
        result = cli(project, "runs", "gc", "--older-than", "soon")
        assert result.exit_code == 2, said(result)
        assert "Invalid value for '--older-than': 'soon' is not an age" in result.stderr

    def test_runs_list_and_gc_read_the_root_given(self, project: Any, measured_run: str) -> None:
        root = measured_run.rsplit("/", 2)[0]
        listed = lines_of(cli(project, "runs", "list", "--root", root))
        assert listed[0] == f"1 run(s) under {root}"
        assert listed[1].startswith("spaceflights  manual__1  groups 7  ")
        dry = lines_of(
            cli(project, "runs", "gc", "--older-than", "0s", "--dry-run", "--root", root)
        )
        assert dry[0].startswith(f"would delete {measured_run} (")
        assert dry[-1].startswith("1 run(s), ") and dry[-1].endswith(" would be freed")

    def test_finalize_without_a_run_prefix_says_how_to_give_one(
        self, project: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("KEDRO_GCS_BRIDGE_RUN_PREFIX", raising=False)
        result = cli(project, "finalize")
        assert result.exit_code == 1, said(result)
        assert result.stderr == (
            "Error: no run prefix: pass --prefix or set KEDRO_GCS_BRIDGE_RUN_PREFIX.\n"
        )


class TestInit:
    """init reads no Kedro session: a bare metadata object is enough."""

    @pytest.fixture
    def folder(self, tmp_path: Path) -> Path:
        project = tmp_path / "project"
        (project / "conf/base").mkdir(parents=True)
        config = "conf/base/airflow.yml"
        (project / config).write_bytes((EXAMPLE / config).read_bytes())
        return project

    def init(self, folder: Path, *args: str) -> Result:
        return cli(SimpleNamespace(project_path=folder), "init", *args)

    def test_writes_the_template_and_keeps_existing_config(self, folder: Path) -> None:
        result = self.init(folder)
        assert result.exit_code == 0, said(result)
        assert (folder / "templates/gcs_bridge.j2").read_bytes() == TEMPLATE.read_bytes()
        config = "conf/base/airflow.yml"
        assert (folder / config).read_bytes() == (EXAMPLE / config).read_bytes()
        assert "wrote   templates/gcs_bridge.j2" in result.stdout
        assert "skipped conf/base/airflow.yml (exists; --force overwrites it)" in result.stdout

    def test_the_local_runs_folder_is_git_ignored_once(self, folder: Path) -> None:
        """Kedro's templates have a .gitignore: replay's run prefixes stay out of git."""
        (folder / ".gitignore").write_text("data/\n*.log", encoding="utf-8")
        result = self.init(folder)
        assert "added   .gcs-bridge-runs/ to .gitignore" in result.stdout, said(result)
        again = self.init(folder)
        assert "to .gitignore" not in again.stdout
        text = (folder / ".gitignore").read_text(encoding="utf-8")
        assert text == "data/\n*.log\n.gcs-bridge-runs/\n"

    def test_force_replaces_the_config(self, folder: Path) -> None:
        result = self.init(folder, "--force")
        assert result.exit_code == 0, said(result)
        shipped = PACKAGE / "project_files/airflow.yml"
        assert (folder / "conf/base/airflow.yml").read_bytes() == shipped.read_bytes()
        assert "wrote   conf/base/airflow.yml" in result.stdout
        assert "skipped" not in result.stdout

    def test_an_existing_dockerfile_is_checked(self, folder: Path) -> None:
        (folder / "docker").mkdir()
        (folder / "docker/Dockerfile").write_text(
            "FROM python:3.11-slim\nENV KEDRO_ENV=prod MODE=fast\n"
            "RUN pip install -r requirements.txt\nCOPY . .\n",
            encoding="utf-8",
        )
        registry = folder / "src/shop/pipeline_registry.py"
        registry.parent.mkdir(parents=True)
        registry.write_text('import os\nMODE = os.environ.get("MODE")\n', encoding="utf-8")
        result = self.init(folder)
        assert result.exit_code == 0, said(result)
        lines = result.stdout.splitlines()
        assert "skipped docker/Dockerfile (exists; --force overwrites it)" in lines
        warned = [line for line in lines if line.startswith("warning: docker/Dockerfile")]
        assert len(warned) == 3, said(result)
        assert "does not install kedro-gcs-bridge" in warned[0]
        assert "sets ENV KEDRO_ENV=prod" in warned[1]
        assert (
            "sets ENV MODE=fast: the project's code reads it (src/shop/pipeline_registry.py)"
            in (warned[2])
        )

    def test_a_dockerfile_that_installs_the_bridge_is_no_warning(self, folder: Path) -> None:
        (folder / "docker").mkdir()
        (folder / "docker/Dockerfile").write_text(
            "FROM python:3.11-slim\nRUN pip install -r requirements.txt\nCOPY . .\n",
            encoding="utf-8",
        )
        (folder / "requirements.txt").write_text("kedro\nkedro-gcs-bridge>=0.1\n", "utf-8")
        result = self.init(folder)
        assert "warning" not in result.stdout, said(result)

    @pytest.mark.parametrize("force", [False, True])
    def test_copies_the_docker_folder(self, force: bool, folder: Path) -> None:
        self.init(folder, *(["--force"] if force else []))
        shipped = sorted(p.relative_to(REPO) for p in (REPO / "docker").rglob("*") if p.is_file())
        copied = folder / "docker"
        written = sorted(p.relative_to(folder) for p in copied.rglob("*") if p.is_file())
        assert written == shipped
        for relative in shipped:
            assert (folder / relative).read_bytes() == (REPO / relative).read_bytes()


class TestErrorHandler:
    def group_with(self, error: Exception) -> click.Group:
        root = click.Group("root")
        group = BridgeGroup("gcs-bridge")
        root.add_command(group)
        nested = click.Group("nested")
        group.add_command(nested)

        @nested.command()
        def fails() -> None:
            raise error

        return root

    def test_a_package_error_anywhere_below_is_one_line_and_exit_1(self) -> None:
        root = self.group_with(ConfigError("'x' is wrong: set it to y"))
        result = CliRunner().invoke(root, ["gcs-bridge", "nested", "fails"])
        assert result.exit_code == 1
        assert result.stderr == "Error: 'x' is wrong: set it to y\n"

    def test_other_errors_are_not_hidden(self) -> None:
        root = self.group_with(RuntimeError("a bug"))
        result = CliRunner().invoke(root, ["gcs-bridge", "nested", "fails"])
        assert isinstance(result.exception, RuntimeError)

    def test_every_command_is_listed_and_loads(self) -> None:
        group = commands.commands["gcs-bridge"]
        context = click.Context(group)
        names = group.list_commands(context)
        assert names == [
            "catalog",
            "deploy",
            "finalize",
            "init",
            "plan",
            "replay",
            "runs",
            "suggest",
            "trigger",
            "validate",
        ]
        for name in names:
            assert isinstance(group.get_command(context, name), click.Command), name

    def test_loading_the_entry_point_loads_no_command_family(self) -> None:
        # Kedro imports it for every command, a pod's `kedro run` included.
        code = (
            "import sys, kedro_gcs_bridge.cli; "
            "print(sorted(m for m in sys.modules if m.startswith('kedro_gcs_bridge.')))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        loaded = "['kedro_gcs_bridge._version', 'kedro_gcs_bridge.cli', 'kedro_gcs_bridge.errors']"
        assert done.stdout.strip() == loaded


class TestOneSource:
    def test_the_local_runs_folder_is_named_once(self) -> None:
        found = [
            path.relative_to(PACKAGE).as_posix()
            for path in sorted(PACKAGE.rglob("*.py"))
            if '".gcs-bridge-runs"' in path.read_text(encoding="utf-8")
        ]
        assert found == ["planning/naming.py"]

    def test_machine_tags_are_read_in_one_place(self) -> None:
        found = [
            path.relative_to(PACKAGE).as_posix()
            for path in sorted(PACKAGE.rglob("*.py"))
            if "resources_tag_prefix" in path.read_text(encoding="utf-8")
            and "startswith(prefix)" in path.read_text(encoding="utf-8")
        ]
        assert found == ["planning/plan.py"]


class TestSuggestFromAReplayOnItsOwnEmulator:
    """`replay --emulator` stops its emulator at the end; MLflow recorded the run prefix there.
    `suggest --from mlflow:<id>` then reads the copy replay kept, never real GCS."""

    PREFIX = "gs://kedro-gcs-bridge-replay/runs/spaceflights/manual__1"

    @pytest.fixture(autouse=True)
    def _no_emulator(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)

    def test_the_copy_replay_kept_is_read(self, tmp_path: Path) -> None:
        from kedro_gcs_bridge.cli.suggest import _replay_copy

        (tmp_path / "spaceflights" / "manual__1" / "manifests").mkdir(parents=True)
        said: list[str] = []
        url = _replay_copy(self.PREFIX, tmp_path.as_uri(), said)
        assert url == f"{tmp_path.as_uri()}/spaceflights/manual__1"
        assert said == [f"read from replay's copy of it (its emulator is gone): {url}"]

    def test_no_copy_is_an_error_before_any_gcs_call(self, tmp_path: Path) -> None:
        from kedro_gcs_bridge.cli.suggest import _replay_copy

        with pytest.raises(click.ClickException) as raised:
            _replay_copy(self.PREFIX, tmp_path.as_uri(), [])
        assert "STORAGE_EMULATOR_HOST is not set" in raised.value.message
        assert "Set STORAGE_EMULATOR_HOST to the emulator" in raised.value.message
        assert "replay again from this project" in raised.value.message

    def test_a_live_emulator_or_another_prefix_is_read_as_it_is(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from kedro_gcs_bridge.cli.suggest import _replay_copy

        assert _replay_copy("gs://mine/runs/d/r", tmp_path.as_uri(), []) == "gs://mine/runs/d/r"
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9023")
        assert _replay_copy(self.PREFIX, tmp_path.as_uri(), []) == self.PREFIX


def test_suggest_names_a_bad_max_memory_option() -> None:
    from kedro_gcs_bridge.cli.suggest import _max_memory

    assert _max_memory("16Gi") == 16 * 1024**3
    assert _max_memory(None) is None
    with pytest.raises(click.BadParameter) as raised:
        _max_memory("lots")
    assert raised.value.param_hint == "'--max-memory'"
    assert "memory 'lots' is not a Kubernetes quantity; write it like '512Mi', '4Gi'." in str(
        raised.value
    )


def test_an_env_with_no_conf_folder_is_one_error(project: Any) -> None:
    result = cli(project, "validate", "-e", "nope")
    assert result.exit_code == 1, said(result)
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("Error: ")]
    assert "conf/nope" in line and "(check -e/--env: it names a folder of conf/)" in line
    assert "Traceback" not in result.stderr
