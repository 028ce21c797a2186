"""Kedro's persisted datasets as Airflow 3 assets (issue 24): which task saves which dataset
(planning/assets.py), `dag.schedule_on_inputs` in the typed config, the real template loaded by
a real Airflow DagBag (outlets, the asset schedule, the save-version hook), and `kedro airflow
create` on the example with its data on GCS. tests/test_airflow_real.py runs the producer's DAG
in a real Airflow and sees the consumer's DAG start."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import CREATE, LOCAL_DISK_WARN, RUN_ID, TEMPLATE, Edit, Job, KedroRun, run_jobs
from kedro.pipeline import Pipeline, node

from kedro_gcs_bridge.config import parse_config
from kedro_gcs_bridge.dag.dagfile import DagFile, DagFileFactory, build_dag_file
from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.planning.assets import DatasetAsset, asset_uri, plan_assets
from kedro_gcs_bridge.planning.grouping import node_specs
from kedro_gcs_bridge.planning.naming import run_segment
from kedro_gcs_bridge.planning.storage import DatasetLocation, Where
from kedro_gcs_bridge.pod.protocol import RunLayout

BUCKET = "gs://bucket/data"


def _step(*args: Any) -> Any:
    return args[0]


#: Another pipeline's DAG makes `mid` and `table`; this one reads both, trains `model`
#: (versioned) and writes `report` and `chart`.
CONSUMER = Pipeline(
    [
        node(_step, ["table", "mid"], "model", name="train", tags=["airflow.train"]),
        node(_step, "model", "report", name="evaluate", tags=["airflow.evaluate"]),
        node(_step, "model", "chart", name="plot", tags=["airflow.evaluate"]),
    ]
)
LOCATIONS = {
    "table": DatasetLocation(Where.REMOTE, f"{BUCKET}/table.parquet"),
    "mid": DatasetLocation(Where.REMOTE, f"{BUCKET}/mid.parquet"),
    "model": DatasetLocation(Where.REMOTE, f"{BUCKET}/model.pickle", versioned=True),
    "report": DatasetLocation(Where.LOCAL, "data/report.json"),
    "chart": DatasetLocation(Where.REMOTE, "s3://elsewhere/chart.png"),
}
MADE_ELSEWHERE = {"table": ["prep"], "mid": ["prep", "__default__"]}
VARIABLES = {
    "pipeline_name": "train",
    "env": "local",
    "package_name": "pkg",
    "gcp_project_id": "p",
    "gcp_region": "r",
    "gcp_gke_cluster_name": "c",
    "docker_image": "img",
    "gcs_bridge_root": "gs://bucket/runs",
}


def _assets(
    config: dict[str, Any],
    locations: dict[str, DatasetLocation] = LOCATIONS,
    pipeline: Pipeline = CONSUMER,
) -> DagFile:
    """The consumer's DAG file with its assets, planned as `kedro airflow create` plans it."""
    dag = build_dag_file({**VARIABLES, **config, "pipeline": pipeline}, project_path="/proj")
    assert dag.plan is not None, dag.error
    assets = plan_assets(
        dag.plan,
        node_specs(pipeline),
        locations,
        MADE_ELSEWHERE,
        dag.local,
        dag.config.handoff.local_handoff,
        "/proj",
    )
    return replace(dag, assets=assets)


class TestPlanAssets:
    def test_each_task_declares_what_it_saves_on_gcs(self) -> None:
        plan = _assets({}).assets
        assert plan is not None
        assert plan.outlets == {
            "train": (DatasetAsset("model", f"{BUCKET}/model.pickle", versioned=True),),
        }
        assert plan.versioned("train") == plan.outlets["train"]

    def test_inputs_other_pipelines_make_are_listed_with_their_pipelines(self) -> None:
        plan = _assets({}).assets
        assert plan is not None
        assert plan.inputs == (
            DatasetAsset("table", f"{BUCKET}/table.parquet"),
            DatasetAsset("mid", f"{BUCKET}/mid.parquet"),
        )
        assert plan.made_by == {"table": ("prep",), "mid": ("prep", "__default__")}

    def test_local_backend_makes_local_files_assets_as_file_uris(self) -> None:
        plan = _assets({"pod_backend": "local"}).assets
        assert plan is not None
        assert plan.outlets["evaluate"] == (
            DatasetAsset("report", "file:///proj/data/report.json"),
        )

    def test_a_local_file_the_run_prefix_carries_is_no_outlet(self) -> None:
        """`model` crosses tasks: with local_handoff its path is never written."""
        local = {**LOCATIONS, "model": DatasetLocation(Where.LOCAL, "/abs/model.pickle", True)}
        carried = _assets({"pod_backend": "local"}, local).assets
        assert carried is not None and "train" not in carried.outlets
        written = _assets(
            {"pod_backend": "local", "handoff": {"local_handoff": False}}, local
        ).assets
        assert written is not None
        assert written.outlets["train"] == (
            DatasetAsset("model", "file:///abs/model.pickle", True),
        )

    @pytest.mark.parametrize(
        ("location", "local", "uri"),
        [
            (DatasetLocation(Where.REMOTE, "gcs://b/x.csv"), False, "gs://b/x.csv"),
            (DatasetLocation(Where.REMOTE, "gs://b/x.csv"), True, "gs://b/x.csv"),
            (DatasetLocation(Where.REMOTE, "s3://b/x.csv"), False, None),
            (DatasetLocation(Where.REMOTE), False, None),
            (DatasetLocation(Where.LOCAL, "data/x.csv"), False, None),
            (DatasetLocation(Where.LOCAL, "data/x.csv"), True, "file:///proj/data/x.csv"),
            (DatasetLocation(Where.MEMORY), True, None),
        ],
    )
    def test_asset_uri(self, location: DatasetLocation, local: bool, uri: str | None) -> None:
        assert asset_uri(location, local, "/proj") == uri


class TestConfig:
    @pytest.mark.parametrize(("given", "read"), [("all", "all"), ("any", "any"), (False, False)])
    def test_schedule_on_inputs(self, given: Any, read: Any) -> None:
        config = parse_config({"dag": {"schedule_on_inputs": given}})
        assert config.dag.schedule_on_inputs == read

    def test_off_by_default(self) -> None:
        assert parse_config({}).dag.schedule_on_inputs is False

    @pytest.mark.parametrize("given", [True, "some", 1])
    def test_other_values_are_refused_naming_the_choices(self, given: Any) -> None:
        with pytest.raises(ConfigError, match=r"'dag.schedule_on_inputs' must be `all`.*`any`"):
            parse_config({"dag": {"schedule_on_inputs": given}})

    @pytest.mark.parametrize("schedule", ["0 3 * * *", "@daily"])
    def test_refused_with_a_cron_schedule(self, schedule: str) -> None:
        with pytest.raises(ConfigError) as caught:
            parse_config({"schedule_interval": schedule, "dag": {"schedule_on_inputs": "all"}})
        message = str(caught.value)
        assert "'dag.schedule_on_inputs: all'" in message
        assert f"'schedule_interval: {schedule}'" in message
        assert "'schedule_interval: null'" in message


def _render(dag: DagFile, folder: Path) -> Path:
    """The real template rendered in-process with this planned DAG file (as the hook hands
    `kedro airflow create` the DAG it planned)."""
    import jinja2

    loader = jinja2.FileSystemLoader(TEMPLATE.parent)
    env = jinja2.Environment(autoescape=True, loader=loader, lstrip_blocks=True)
    target = folder / "pkg_dag.py"
    factory = DagFileFactory(planned={dag.pipeline_name: dag})
    env.get_template(TEMPLATE.name).stream(
        pipeline_name=dag.pipeline_name, gcs_bridge=factory
    ).dump(str(target))
    return target


def _load(dag: DagFile, folder: Path, load_dagbag: Callable[[Path], Any]) -> Any:
    bag = load_dagbag(_render(dag, folder).parent)
    assert not bag.import_errors, bag.import_errors
    (loaded,) = bag.dags.values()
    return loaded


def _uris(assets: Any) -> list[tuple[str, str]]:
    return [(asset.name, asset.uri) for asset in assets]


def _condition(dag: Any) -> tuple[str, list[tuple[str, str]]]:
    condition = dag.timetable.asset_condition
    return type(condition).__name__, [(a.name, a.uri) for a in condition.objects]


class TestDagBag:
    def test_tasks_list_what_they_save_as_outlets(
        self, tmp_path: Path, load_dagbag: Callable[[Path], Any]
    ) -> None:
        dag = _load(_assets({}), tmp_path, load_dagbag)
        assert _uris(dag.get_task("train").outlets) == [("model", f"{BUCKET}/model.pickle")]
        assert dag.get_task("evaluate").outlets == []
        assert dag.schedule is None  # no schedule_on_inputs: the config's schedule

    @pytest.mark.parametrize(("mode", "kind"), [("all", "AssetAll"), ("any", "AssetAny")])
    def test_schedule_on_inputs_waits_on_the_inputs_other_dags_make(
        self, mode: str, kind: str, tmp_path: Path, load_dagbag: Callable[[Path], Any]
    ) -> None:
        config = {"schedule_interval": None, "dag": {"schedule_on_inputs": mode}}
        dag = _load(_assets(config), tmp_path, load_dagbag)
        assert _condition(dag) == (
            kind,
            [("table", f"{BUCKET}/table.parquet"), ("mid", f"{BUCKET}/mid.parquet")],
        )

    def test_one_input_is_a_schedule_of_one_asset(
        self, tmp_path: Path, load_dagbag: Callable[[Path], Any]
    ) -> None:
        locations = {**LOCATIONS, "mid": DatasetLocation(Where.REMOTE, "s3://b/mid")}
        config = {"dag": {"schedule_on_inputs": "any"}}
        dag = _load(_assets(config, locations), tmp_path, load_dagbag)
        assert _condition(dag)[1] == [("table", f"{BUCKET}/table.parquet")]

    def test_nothing_to_wait_on_keeps_the_schedule_and_says_so(
        self, tmp_path: Path, load_dagbag: Callable[[Path], Any]
    ) -> None:
        others = {name: DatasetLocation(Where.REMOTE, "s3://b/x") for name in ("table", "mid")}
        dag = _assets({"dag": {"schedule_on_inputs": "all"}}, {**LOCATIONS, **others})
        assert dag.schedule_inputs() == []
        assert dag.asset_notes() == [
            "dag.schedule_on_inputs is set, but no input of this pipeline is a catalog dataset "
            "on GCS that another pipeline's DAG makes: the DAG keeps `schedule: null`."
        ]
        assert _load(dag, tmp_path, load_dagbag).schedule is None
        assert _assets({"dag": {"schedule_on_inputs": "all"}}).asset_notes() == []

    def test_local_variant_outlets_are_file_uris(
        self, tmp_path: Path, load_dagbag: Callable[[Path], Any]
    ) -> None:
        dag = _load(_assets({"pod_backend": "local"}), tmp_path, load_dagbag)
        assert _uris(dag.get_task("evaluate").outlets) == [
            ("report", "file:///proj/data/report.json")
        ]

    def test_only_tasks_saving_versioned_datasets_record_the_save_version(
        self, tmp_path: Path, load_dagbag: Callable[[Path], Any]
    ) -> None:
        dag = _load(_assets({}), tmp_path, load_dagbag)
        assert dag.get_task("train")._post_execute_hook is not None
        assert dag.get_task("evaluate")._post_execute_hook is None


class TestSaveVersion:
    """The hook a task with versioned outlets runs on the worker once it succeeded."""

    def _run_hook(
        self,
        tmp_path: Path,
        load_dagbag: Callable[[Path], Any],
        manifest: Any,
        pipeline: Pipeline = CONSUMER,
        task_id: str = "train",
    ) -> Any:
        from airflow.sdk.execution_time.context import OutletEventAccessors

        root = (tmp_path / "runs").as_uri()
        config = {"pod_backend": "local", "local_root": root}
        dag = _load(_assets(config, pipeline=pipeline), tmp_path, load_dagbag)
        prefix = tmp_path / "runs" / dag.dag_id / run_segment(RUN_ID)
        if manifest is not None:
            path = Path(RunLayout(str(prefix)).manifest(task_id))
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(manifest))
        task = dag.get_task(task_id)
        events = OutletEventAccessors()
        context = {"task": task, "dag": dag, "run_id": RUN_ID, "outlet_events": events}
        task._post_execute_hook(context, None)
        (outlet,) = task.outlets
        return events[outlet].extra, prefix

    def test_the_event_carries_the_save_version_the_task_recorded(
        self, tmp_path: Path, load_dagbag: Callable[[Path], Any]
    ) -> None:
        extra, prefix = self._run_hook(
            tmp_path, load_dagbag, {"kedro_run_id": "2026-12-07T12.30.14.342Z"}
        )
        assert extra == {
            "kedro_manifest": f"file://{prefix}/manifests/train.json",
            "kedro_save_version": "2026-12-07T12.30.14.342Z",
        }

    def test_no_manifest_sends_the_event_without_a_version(
        self, tmp_path: Path, load_dagbag: Callable[[Path], Any]
    ) -> None:
        extra, _ = self._run_hook(tmp_path, load_dagbag, None)
        assert set(extra) == {"kedro_manifest"}

    @pytest.mark.parametrize(
        "name", ["Asset", "ASSETS", "ObjectStoragePath", "SAVE_VERSIONS", "json", "logging"]
    )
    def test_a_node_named_like_a_variable_of_the_hook(
        self, name: str, tmp_path: Path, load_dagbag: Callable[[Path], Any]
    ) -> None:
        """Task variables never take the names the asset table and the hook use."""
        pipeline = Pipeline(
            [
                node(_step, "mid", "x", name=name),
                node(_step, "table", "model", name="train"),
                node(_step, ["x", "model"], "report", name="after"),
            ]
        )
        version = {"kedro_run_id": "2026-12-07T12.30.14.342Z"}
        extra, _ = self._run_hook(tmp_path, load_dagbag, version, pipeline)
        assert extra["kedro_save_version"] == version["kedro_run_id"]


# --- `kedro airflow create` on the example, its data on GCS -----------------------------------

#: The example's catalog with the datasets its pipelines hand each other on GCS.
GCS_CATALOG = Edit(
    "conf/gcs/catalog.yml",
    "\n".join(
        f"{name}:\n  type: {kind}\n  filepath: gs://example-bucket/data/{name}.{ext}\n"
        + ("  versioned: true\n" if name == "regressor" else "")
        for name, kind, ext in [
            ("preprocessed_companies", "pandas.ParquetDataset", "parquet"),
            ("preprocessed_shuttles", "pandas.ParquetDataset", "parquet"),
            ("model_input_table", "pandas.ParquetDataset", "parquet"),
            ("regressor", "pickle.PickleDataset", "pickle"),
        ]
    ),
    overwrite=True,
)
ON_INPUTS = Edit(
    "conf/gcs/airflow.yml", "data_science:\n  dag:\n    schedule_on_inputs: all\n", overwrite=True
)
PIPELINES = ("-e", "gcs", "-p", "data_processing,data_science")
ASSET_JOBS = {
    "gcs": Job(
        (*CREATE, "dags", *PIPELINES, "--params", LOCAL_DISK_WARN), edits=(GCS_CATALOG, ON_INPUTS)
    ),
    "cron": Job(
        (*CREATE, "dags", *PIPELINES, "--params", LOCAL_DISK_WARN),
        edits=(
            GCS_CATALOG,
            replace(ON_INPUTS, new=f"{ON_INPUTS.new}  schedule_interval: '@daily'\n"),
        ),
    ),
}


@pytest.fixture(scope="module")
def asset_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KedroRun]:
    return run_jobs(tmp_path_factory.mktemp("assets"), ASSET_JOBS)


def _generated(run: KedroRun, dag_id: str, load_dagbag: Callable[[Path], Any]) -> Any:
    assert run.returncode == 0, run.describe()
    bag = load_dagbag(run.dag_dir())
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


class TestCreate:
    def test_producer_tasks_declare_their_gcs_outputs(
        self, asset_runs: dict[str, KedroRun], load_dagbag: Callable[[Path], Any]
    ) -> None:
        dag = _generated(asset_runs["gcs"], "spaceflights__data_processing__gcs", load_dagbag)
        outlets = {task.task_id: _uris(task.outlets) for task in dag.tasks}
        data = "gs://example-bucket/data"
        assert outlets == {
            "companies": [("preprocessed_companies", f"{data}/preprocessed_companies.parquet")],
            "shuttles": [("preprocessed_shuttles", f"{data}/preprocessed_shuttles.parquet")],
            "split": [("model_input_table", f"{data}/model_input_table.parquet")],
        }
        assert dag.schedule is None

    def test_consumer_waits_on_the_input_the_producer_makes(
        self, asset_runs: dict[str, KedroRun], load_dagbag: Callable[[Path], Any]
    ) -> None:
        dag = _generated(asset_runs["gcs"], "spaceflights__data_science__gcs", load_dagbag)
        assert _condition(dag) == (
            "AssetAll",
            [("model_input_table", "gs://example-bucket/data/model_input_table.parquet")],
        )
        train = dag.get_task("train_model_node")
        assert _uris(train.outlets) == [("regressor", "gs://example-bucket/data/regressor.pickle")]
        assert train._post_execute_hook is not None  # versioned: the event gets the version

    def test_a_cron_schedule_with_it_is_refused_before_any_file_is_written(
        self, asset_runs: dict[str, KedroRun]
    ) -> None:
        run = asset_runs["cron"]
        assert run.returncode != 0
        assert "'dag.schedule_on_inputs: all'" in run.output
        assert "'schedule_interval: @daily'" in run.output
        assert not (run.project / "dags").exists() or not any((run.project / "dags").iterdir())
