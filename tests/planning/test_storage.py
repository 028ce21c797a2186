"""The storage plan: each class from a small pipeline, with the exact message it makes."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from _kedro_jobs import KEDRO, Edit, Job, kedro_env, make_project

from kedro_gcs_bridge.config import BridgeConfig, parse_config
from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.planning.grouping import NodeSpec
from kedro_gcs_bridge.planning.image import ImageFilter
from kedro_gcs_bridge.planning.plan import plan_tasks
from kedro_gcs_bridge.planning.storage import (
    CATALOG_REMEDY,
    MEMORY,
    DatasetLocation,
    StorageClass,
    StoragePlan,
    Where,
    classify,
    grade,
    remedies_once,
    storage_text,
)

#: raw -> make (task a) -> mid -> use (task b) -> out; `make` also writes `side` inside task a.
NODES = [
    NodeSpec("make", ("raw", "params:k"), ("mid", "side"), frozenset({"airflow.a"})),
    NodeSpec("keep", ("side",), ("kept",), frozenset({"airflow.a"})),
    NodeSpec("use", ("mid",), ("out",), frozenset({"airflow.b"})),
]
LOCAL_DISK_REMEDY = f"{CATALOG_REMEDY}; or set `handoff.local_disk: warn` to write the DAG anyway"


def local(path: str) -> DatasetLocation:
    return DatasetLocation(Where.LOCAL, path)


def gcs(path: str) -> DatasetLocation:
    return DatasetLocation(Where.REMOTE, path)


def storage(
    locations: Mapping[str, DatasetLocation],
    made_elsewhere: Mapping[str, Sequence[str]] | None = None,
    missing: Mapping[str, str] | None = None,
    local_handoff: bool = True,
    local_disk: str = "error",
    nodes: Sequence[NodeSpec] = NODES,
) -> StoragePlan:
    plan = plan_tasks("p", nodes, BridgeConfig())
    entries = classify(
        plan, nodes, locations, made_elsewhere or {}, missing or {}, local_handoff=local_handoff
    )
    return grade(entries, local_disk)


def classes(plan: StoragePlan) -> dict[str, StorageClass]:
    return {entry.dataset: entry.storage_class for entry in plan.entries}


class TestClasses:
    def test_in_memory_crossing_is_a_handoff_and_fine(self) -> None:
        plan = storage({})
        assert classes(plan) == {"mid": StorageClass.HANDOFF}
        assert plan.errors == plan.warnings == ()

    def test_catalog_on_gcs_is_fine_wherever_it_is(self) -> None:
        where = {name: gcs(f"gs://b/{name}") for name in ("raw", "mid", "side", "kept", "out")}
        plan = storage(where)
        assert set(classes(plan).values()) == {StorageClass.REMOTE}
        assert plan.errors == plan.warnings == ()

    def test_local_disk_inside_one_pod_is_fine(self) -> None:
        plan = storage({"side": local("data/side.csv")})
        assert classes(plan)["side"] is StorageClass.IN_POD
        assert plan.errors == ()

    def test_local_crossing_goes_through_the_run_prefix_by_default(self) -> None:
        plan = storage({"mid": local("data/mid.parquet")})
        assert classes(plan)["mid"] is StorageClass.LOCAL_HANDOFF
        assert plan.errors == plan.warnings == ()
        assert plan.local_disk_edges() == {
            "mid": "data/mid.parquet: carried through the run prefix"
        }

    def test_versioned_local_crossing_warns_that_its_versions_are_not_kept(self) -> None:
        mid = DatasetLocation(Where.LOCAL, "data/06_models/mid.pickle", versioned=True)
        plan = storage({"mid": mid})
        assert classes(plan)["mid"] is StorageClass.LOCAL_HANDOFF
        assert plan.errors == ()
        assert plan.warnings == (
            "versioned dataset 'mid' is saved on local disk (data/06_models/mid.pickle) by "
            "task a and reaches task(s) b through the run prefix: no version is kept after the "
            "run (the pod's disk goes with the pod, the run prefix with `runs gc`). To keep "
            f"its versions, {CATALOG_REMEDY}.",
        )

    def test_local_crossing_is_an_error_without_local_handoff(self) -> None:
        plan = storage({"mid": local("data/mid.parquet")}, local_handoff=False)
        assert classes(plan)["mid"] is StorageClass.LOCAL_CROSSING
        assert plan.errors == (
            "dataset 'mid' is saved on local disk (data/mid.parquet) by task a and read by "
            "task(s) b in other pods, which will not find it. Remedy: set `handoff.local_handoff: "
            f"true` so the run prefix carries it, or {CATALOG_REMEDY}.",
        )
        assert plan.local_disk_edges() == {"mid": "data/mid.parquet: lost between pods"}

    def test_local_crossing_stays_an_error_with_local_disk_warn(self) -> None:
        plan = storage({"mid": local("m")}, local_handoff=False, local_disk="warn")
        assert len(plan.errors) == 1 and plan.warnings == ()

    def test_raw_input_in_the_image_is_fine(self) -> None:
        plan = storage({"raw": local("data/01_raw/raw.csv")})
        assert classes(plan)["raw"] is StorageClass.RAW_IN_IMAGE
        assert plan.errors == ()

    def test_raw_input_missing_from_the_image(self) -> None:
        why = "docker/Dockerfile.dockerignore leaves data/01_raw/raw.csv out of the build context"
        plan = storage({"raw": local("data/01_raw/raw.csv")}, missing={"raw": why})
        assert classes(plan)["raw"] is StorageClass.RAW_MISSING
        assert plan.errors == (
            "raw input 'raw' is read from local disk (data/01_raw/raw.csv) by task(s) a, but "
            f"the image does not hold it ({why}). Remedy: {LOCAL_DISK_REMEDY}.",
        )

    def test_input_another_dag_leaves_on_local_disk(self) -> None:
        plan = storage({"raw": local("data/03/raw.pq")}, made_elsewhere={"raw": ["prep"]})
        assert classes(plan)["raw"] is StorageClass.OTHER_DAG
        assert plan.errors == (
            "input 'raw' is saved on local disk (data/03/raw.pq) by the DAG of pipeline(s) "
            "prep: that pod's disk is gone when task(s) a of this DAG read it. "
            f"Remedy: {LOCAL_DISK_REMEDY}.",
        )

    def test_input_another_dag_keeps_in_memory(self) -> None:
        plan = storage({}, made_elsewhere={"raw": ["prep", "__default__"]})
        assert classes(plan)["raw"] is StorageClass.OTHER_DAG
        assert plan.errors == (
            "input 'raw' is made by pipeline(s) prep, __default__ but not in the catalog (kept "
            "in memory there): no pod of this DAG can load it for task(s) a. Remedy: declare "
            "it in the catalog with a gs:// filepath, so the other DAG saves it where this one "
            "loads it; or set `handoff.local_disk: warn`.",
        )

    def test_input_another_dag_writes_to_gcs_is_fine(self) -> None:
        plan = storage({"raw": gcs("gs://b/raw")}, made_elsewhere={"raw": ["prep"]})
        assert classes(plan)["raw"] is StorageClass.REMOTE
        assert plan.errors == ()

    def test_output_left_on_a_pods_disk(self) -> None:
        plan = storage({"out": local("data/08_reporting/out.json")})
        assert classes(plan)["out"] is StorageClass.LEFT_ON_DISK
        assert plan.errors == (
            "output 'out' is saved on local disk (data/08_reporting/out.json) by task b and "
            f"lost when its pod ends. Remedy: {LOCAL_DISK_REMEDY}.",
        )

    def test_local_disk_warn_writes_the_dag_and_says_what_is_lost(self) -> None:
        plan = storage(
            {"out": local("o.json"), "raw": local("r.csv")},
            missing={"raw": "r.csv does not exist in the project folder"},
            local_disk="warn",
        )
        assert plan.errors == ()
        assert plan.warnings == (
            "raw input 'raw' is read from local disk (r.csv) by task(s) a, but the image does "
            "not hold it (r.csv does not exist in the project folder) (handoff.local_disk: warn).",
            "output 'out' is saved on local disk (o.json) by task b and lost when its pod "
            "ends (handoff.local_disk: warn).",
        )

    def test_every_offending_dataset_is_named(self) -> None:
        plan = storage(
            {"mid": local("m"), "out": local("o"), "raw": local("r")},
            missing={"raw": "gone"},
            local_handoff=False,
        )
        named = [error.split("'")[1] for error in plan.errors]
        assert named == ["raw", "mid", "out"]

    def test_transcoded_names_are_one_dataset(self) -> None:
        nodes = [
            NodeSpec("w", (), ("t@pandas",), frozenset()),
            NodeSpec("r", ("t@spark",), (), frozenset()),
        ]
        plan = storage({"t": local("t.pq")}, nodes=nodes, local_handoff=False)
        assert classes(plan) == {"t": StorageClass.LOCAL_CROSSING}
        assert (
            "dataset 't' is saved on local disk (t.pq) by task w and read by task(s) r"
            in (plan.errors[0])
        )

    def test_memory_outputs_and_unknown_memory_inputs_are_left_out(self) -> None:
        plan = storage({"raw": MEMORY})
        assert "raw" not in classes(plan) and "out" not in classes(plan)


#: `write` saves `parts_out`, `read` loads `parts_in`: two catalog entries on one folder.
ALIASED = [
    NodeSpec("write", ("raw",), ("parts_out",), frozenset({"airflow.a"})),
    NodeSpec("read", ("parts_in",), ("out",), frozenset({"airflow.a"})),
]


def aliased(group_of_reader: str, where: DatasetLocation, **kwargs: object) -> StoragePlan:
    nodes = [ALIASED[0], NodeSpec("read", ("parts_in",), ("out",), frozenset({group_of_reader}))]
    locations = {"parts_out": where, "parts_in": where}
    missing = {"parts_in": "the ignore file leaves data/ out"}
    return storage(locations, missing=missing, nodes=nodes, **kwargs)  # type: ignore[arg-type]


class TestAliases:
    """Two catalog entries that resolve to one location are one dataset: writer -> reader."""

    def test_written_and_read_in_one_pod_is_fine(self) -> None:
        plan = aliased("airflow.a", local("data/parts/"))
        assert classes(plan) == {"parts_out": StorageClass.IN_POD}
        (entry,) = plan.entries
        assert entry.producer == "a" and entry.readers == ("a",)
        assert "parts_in" in entry.detail
        assert plan.errors == plan.warnings == ()
        assert "    parts_out (data/parts/), read as 'parts_in'\n" in storage_text(plan)

    def test_same_folder_with_and_without_a_trailing_slash(self) -> None:
        nodes = [ALIASED[0], ALIASED[1]]
        where = {"parts_out": local("data/parts"), "parts_in": local("data/parts/")}
        plan = storage(where, nodes=nodes)
        assert classes(plan) == {"parts_out": StorageClass.IN_POD} and plan.errors == ()

    def test_written_and_read_in_different_pods_crosses(self) -> None:
        """The run prefix carries a dataset by its name; an alias is read by another name,
        so on local disk it is lost between pods whatever `local_handoff` says."""
        plan = aliased("airflow.b", local("data/parts"))
        assert classes(plan) == {"parts_out": StorageClass.LOCAL_CROSSING}
        (error,) = plan.errors
        assert "'parts_out'" in error and "'parts_in'" in error and "task(s) b" in error
        assert error.endswith(f"Remedy: {CATALOG_REMEDY}.")

    def test_on_gcs_in_different_pods_is_fine(self) -> None:
        plan = aliased("airflow.b", gcs("gs://b/parts"))
        assert classes(plan) == {"parts_out": StorageClass.REMOTE}
        assert plan.errors == ()

    def test_entries_on_different_paths_stay_apart(self) -> None:
        nodes = [ALIASED[0], ALIASED[1]]
        where = {"parts_out": local("data/a"), "parts_in": local("data/b")}
        plan = storage(where, nodes=nodes, local_disk="warn")
        assert classes(plan) == {
            "parts_in": StorageClass.RAW_IN_IMAGE,
            "parts_out": StorageClass.LEFT_ON_DISK,
        }


class TestText:
    def test_lists_each_class_with_paths_then_problems(self) -> None:
        plan = storage({"raw": local("r.csv"), "out": local("o.json")}, local_disk="warn")
        assert storage_text(plan).splitlines() == [
            "Storage (each GKE pod has its own disk):",
            "  handoff: in memory, crosses pods through the run prefix:",
            "    mid",
            "  raw input on local disk, in the image:",
            "    raw (r.csv)",
            "  output left on a pod's disk:",
            "    out (o.json)",
            "warning: output 'out' is saved on local disk (o.json) by task b and lost when its "
            "pod ends (handoff.local_disk: warn).",
        ]


class TestPolicies:
    def test_defaults(self) -> None:
        handoff = parse_config({}).handoff
        assert handoff.local_handoff is True and handoff.local_disk == "error"

    def test_read_from_config(self) -> None:
        config = parse_config({"handoff": {"local_handoff": "false", "local_disk": "warn"}})
        assert config.handoff.local_handoff is False and config.handoff.local_disk == "warn"

    def test_unknown_local_disk_policy_names_the_choices(self) -> None:
        with pytest.raises(
            ConfigError, match=r"'handoff.local_disk' must be one of 'error' or 'warn'"
        ):
            parse_config({"handoff": {"local_disk": "ignore"}})


class TestImageFilter:
    RULES = "# comment\ndata/**\n!data/**/.gitkeep\nconf/local/**\n"

    @pytest.mark.parametrize(
        ("path", "excluded"),
        [
            ("data/01_raw/companies.csv", True),
            ("data/01_raw", True),
            ("data/01_raw/.gitkeep", False),
            ("conf/base/catalog.yml", False),
            ("./data/x.csv", True),
            ("src/data/x.py", False),
        ],
    )
    def test_docker_matching(self, path: str, excluded: bool) -> None:
        assert ImageFilter.parse(self.RULES, ".dockerignore").excludes(path) is excluded

    def test_no_ignore_file_keeps_everything(self) -> None:
        assert not ImageFilter().excludes("data/01_raw/companies.csv")


class TestRemediesOnce:
    def test_a_remedy_shared_by_several_errors_is_said_once_after_them(self) -> None:
        errors = ["a is lost. Remedy: move it.", "b is lost. Remedy: move it.", "c. Remedy: x."]
        assert remedies_once(errors) == [
            "error: a is lost.",
            "error: b is lost.",
            "remedy for the 2 errors above: move it.",
            "error: c. Remedy: x.",
        ]

    def test_errors_without_a_remedy_are_kept_as_they_are(self) -> None:
        assert remedies_once(["plain."]) == ["error: plain."]


#: A second catalog entry on model_input_table's file, read by a node of its own.
_ALIAS_EDITS = (
    Edit(
        "conf/base/catalog.yml",
        "\nmodel_input_table_again:\n  type: pandas.ParquetDataset\n"
        "  filepath: data/03_primary/model_input_table.parquet\n",
    ),
    Edit(
        "src/spaceflights/pipeline_registry.py",
        '    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))\n'
        "    from kedro.pipeline import node\n\n"
        '    pipelines["__default__"] += Pipeline([node(len, "model_input_table_again", '
        '"rows", name="count_rows")])\n',
        old='    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))\n',
    ),
)


def test_catalog_does_not_ask_to_upload_what_the_pipeline_makes(tmp_path: Path) -> None:
    """`catalog` lists the raw inputs to upload; an entry read under another name than the one
    a node writes (same file) is made by the pipeline, not a raw input."""
    project = make_project(tmp_path, "aliased", Job(("gcs-bridge", "catalog"), _ALIAS_EDITS))
    done = subprocess.run(
        [str(KEDRO), "gcs-bridge", "catalog", "--root", "gs://example-bucket/sf"],
        cwd=project,
        env=kedro_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    uploads = done.stdout[done.stdout.index("Upload the raw inputs:") :]
    assert "data/01_raw" in uploads and "03_primary" not in uploads, uploads
