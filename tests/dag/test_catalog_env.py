"""`kedro gcs-bridge catalog`: the GCS catalog env, pure, then for real on the example."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import KEDRO, TEMPLATE, Job, kedro_env, make_project

from kedro_gcs_bridge.dag.catalog_env import (
    catalog_env,
    check_env,
    parse_root,
    upload_commands,
)
from kedro_gcs_bridge.errors import CatalogEnvError

ROOT = "gs://bucket/path"


class TestRoot:
    @pytest.mark.parametrize(
        ("given", "parsed"),
        [
            ("gs://bucket/path", ROOT),
            ("gs://bucket/path/", ROOT),
            ("gs://my.bucket", "gs://my.bucket"),
        ],
    )
    def test_gs_bucket_with_optional_path(self, given: str, parsed: str) -> None:
        assert parse_root(given) == parsed

    @pytest.mark.parametrize(
        "given", ["s3://bucket/x", "bucket/path", "gs://", "gs://B", "gs://bucket//x", "/tmp/x"]
    )
    def test_anything_else_is_refused_with_the_form_to_use(self, given: str) -> None:
        with pytest.raises(CatalogEnvError, match=r"write gs://<bucket>\[/<path>\]"):
            parse_root(given)

    @pytest.mark.parametrize(
        ("given", "why"),
        [
            ("gs://Bad_Bucket/x", "'Bad_Bucket' is not a bucket name (lowercase letters"),
            ("gs://b/x y", "holds a space"),
            ("s3://bucket/x", "must be gs://bucket[/path]"),
        ],
    )
    def test_the_refusal_says_what_is_wrong(self, given: str, why: str) -> None:
        with pytest.raises(CatalogEnvError) as raised:
            parse_root(given)
        assert why in str(raised.value), raised.value

    @pytest.mark.parametrize("env", ["base", "local", "../x", ".hidden"])
    def test_env_that_would_clobber_or_escape_is_refused(self, env: str) -> None:
        with pytest.raises(CatalogEnvError, match="use a new env such as --env gcs"):
            check_env(env)


class TestCatalogEnv:
    CONFIG: dict[str, Any] = {
        "_csv": {"type": "pandas.CSVDataset"},
        "companies": {
            "type": "pandas.CSVDataset",
            "filepath": "data/01_raw/companies.csv",
            "load_args": {"sep": ";"},
        },
        "regressor": {
            "type": "pickle.PickleDataset",
            "filepath": "data/06_models/regressor.pickle",
            "versioned": True,
        },
        "already": {"type": "pandas.ParquetDataset", "filepath": "gs://other/x.parquet"},
        "{name}_features": {
            "type": "pandas.ParquetDataset",
            "filepath": "./data/04_feature/{name}.parquet",
        },
        "absolute": {"type": "json.JSONDataset", "filepath": "/proj/data/08_reporting/m.json"},
        "elsewhere": {"type": "json.JSONDataset", "filepath": "/mnt/shared/m.json"},
        "scratch": {"type": "MemoryDataset"},
    }

    def test_local_entries_move_under_the_root_with_type_and_options(self) -> None:
        env = catalog_env(self.CONFIG, ROOT, "/proj")
        assert dict(env.entries) == {
            "companies": {
                "type": "pandas.CSVDataset",
                "filepath": "gs://bucket/path/data/01_raw/companies.csv",
                "load_args": {"sep": ";"},
            },
            "regressor": {
                "type": "pickle.PickleDataset",
                "filepath": "gs://bucket/path/data/06_models/regressor.pickle",
                "versioned": True,
            },
            "{name}_features": {
                "type": "pandas.ParquetDataset",
                "filepath": "gs://bucket/path/data/04_feature/{name}.parquet",
            },
            "absolute": {
                "type": "json.JSONDataset",
                "filepath": "gs://bucket/path/data/08_reporting/m.json",
            },
        }
        assert dict(env.outside) == {"elsewhere": "/mnt/shared/m.json"}
        assert self.CONFIG["companies"]["filepath"] == "data/01_raw/companies.csv"

    def test_yaml_round_trips(self) -> None:
        env = catalog_env(self.CONFIG, ROOT, "/proj")
        text = env.yaml(ROOT, "gcs")
        assert text.startswith("# Written by `kedro gcs-bridge catalog --root gs://bucket/path")
        assert yaml.safe_load(text) == dict(env.entries)

    def test_upload_commands_one_per_folder(self) -> None:
        paths = ["data/01_raw/companies.csv", "data/01_raw/shuttles.csv", "data/02/r.xlsx", "x.csv"]
        assert upload_commands(paths, ROOT) == [
            "gcloud storage cp -r data/01_raw gs://bucket/path/data/01_raw",
            "gcloud storage cp -r data/02 gs://bucket/path/data/02",
            "gcloud storage cp x.csv gs://bucket/path/x.csv",
        ]


def _kedro(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = kedro_env() | {
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }
    return subprocess.run(
        [str(KEDRO), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _said(done: subprocess.CompletedProcess[str]) -> str:
    return " ".join(f"{done.stdout}\n{done.stderr}".split())


class TestOnTheExample:
    """The journey: create refuses local disk, `catalog` moves it, `-e gcs` passes."""

    def test_catalog_env_makes_the_example_pass_the_local_disk_checks(self, tmp_path: Path) -> None:
        project = make_project(tmp_path, "spaceflights", Job(()))
        strict = ("--params", "local_disk=error")  # the default, said out loud
        create = _kedro(project, "airflow", "create", "-j", str(TEMPLATE), "-t", "dags", *strict)
        assert create.returncode != 0
        assert not (project / "dags").exists() or not list((project / "dags").iterdir())
        said = _said(create)
        assert "output 'metrics' is saved on local disk (data/08_reporting/metrics.json) " in said
        assert "kedro gcs-bridge catalog --root gs://<bucket>/<path>" in said

        done = _kedro(project, "gcs-bridge", "catalog", "--root", ROOT)
        assert done.returncode == 0, _said(done)
        written = yaml.safe_load((project / "conf/gcs/catalog.yml").read_text(encoding="utf-8"))
        assert written["companies"] == {
            "type": "pandas.CSVDataset",
            "filepath": "gs://bucket/path/data/01_raw/companies.csv",
        }
        assert set(written) == {
            "companies",
            "shuttles",
            "reviews",
            "preprocessed_companies",
            "preprocessed_shuttles",
            "model_input_table",
            "regressor",
            "metrics",
            "shuttle_passenger_capacity_plot",
        }
        assert written["regressor"]["versioned"] is True
        assert done.stdout.splitlines()[-3:] == [
            "Upload the raw inputs:",
            "  gcloud storage cp -r data/01_raw gs://bucket/path/data/01_raw",
            "Next: kedro airflow create -j templates/gcs_bridge.j2 -e gcs",
        ]

        again = _kedro(project, "gcs-bridge", "catalog", "--root", "gs://other")
        assert again.returncode == 1
        assert "conf/gcs/catalog.yml exists; --force overwrites it." in _said(again)
        assert "gs://bucket/path" in (project / "conf/gcs/catalog.yml").read_text()

        plan = _kedro(project, "gcs-bridge", "plan", "-e", "gcs", *strict)
        assert plan.returncode == 0, _said(plan)
        # Kedro loaded the env: the datasets it reads and writes are on GCS.
        assert "    metrics (gs://bucket/path/data/08_reporting/metrics.json)" in plan.stdout
        assert "error:" not in plan.stdout

        valid = _kedro(project, "gcs-bridge", "validate", "-p", "__default__", "-e", "gcs", *strict)
        assert valid.returncode == 0, _said(valid)
        assert "__default__: ok, 5 task(s)" in _said(valid)


def _spaceflights_catalog(prefix: str) -> str:
    """The example's local-disk entries (a versioned model, a pattern, one outside the
    project), every project filepath starting with `prefix`."""
    return f"""
companies:
  type: pandas.CSVDataset
  filepath: {prefix}/01_raw/companies.csv
preprocessed_companies:
  type: pandas.ParquetDataset
  filepath: {prefix}/02_intermediate/preprocessed_companies.parquet
regressor:
  type: pickle.PickleDataset
  filepath: {prefix}/06_models/regressor.pickle
  versioned: true
"{{namespace}}.metrics":
  type: json.JSONDataset
  filepath: {prefix}/08_reporting/{{namespace}}_metrics.json
elsewhere:
  type: json.JSONDataset
  filepath: /mnt/shared/m.json
plain:
  type: pandas.CSVDataset
  filepath: data/01_raw/plain.csv
"""


class TestGlobals:
    """Issue 23: filepaths that derive from one global are moved by overriding it, as Kedro's
    config loader resolves them (checked in-process with Kedro's own OmegaConfigLoader)."""

    @staticmethod
    def _conf(tmp_path: Path, files: dict[str, str]) -> Path:
        conf = tmp_path / "conf"
        for name, text in files.items():
            (conf / name).parent.mkdir(parents=True, exist_ok=True)
            (conf / name).write_text(text, encoding="utf-8")
        (conf / "local").mkdir(exist_ok=True)
        return conf

    @staticmethod
    def _catalog(conf: Path, env: str) -> dict[str, Any]:
        from kedro.config import OmegaConfigLoader

        loader = OmegaConfigLoader(str(conf), base_env="base", default_run_env=env)
        return dict(loader["catalog"])

    @staticmethod
    def _write(conf: Path, env: Any) -> None:
        target = conf / "gcs"
        target.mkdir(exist_ok=True)
        if env.globals:
            (target / "globals.yml").write_text(env.globals_yaml(ROOT, "gcs"), encoding="utf-8")
        if env.entries:
            (target / "catalog.yml").write_text(env.yaml(ROOT, "gcs"), encoding="utf-8")

    def _moved(self, tmp_path: Path, files: dict[str, str]) -> tuple[Any, dict[str, Any]]:
        from kedro_gcs_bridge.cli.project import _raw_conf

        conf = self._conf(tmp_path, files)
        project = str(tmp_path)
        env = catalog_env(self._catalog(conf, "local"), ROOT, project, _raw_conf(conf / "base"))
        self._write(conf, env)
        on_gcs = self._catalog(conf, "gcs")
        for name, (_, new) in env.moved.items():
            assert on_gcs[name]["filepath"] == new, name
        return env, on_gcs

    def test_one_global_override_moves_every_entry_that_derives_from_it(
        self, tmp_path: Path
    ) -> None:
        env, on_gcs = self._moved(
            tmp_path,
            {
                "base/globals.yml": "base_location: data/\nother: 3\n",
                "base/catalog.yml": _spaceflights_catalog("${globals:base_location}"),
            },
        )
        assert env.globals == {"base_location": f"{ROOT}/data"}
        assert set(env.entries) == {"plain"}  # the rest is still copied
        assert on_gcs["companies"]["filepath"] == f"{ROOT}/data/01_raw/companies.csv"
        assert on_gcs["regressor"]["versioned"] is True
        assert on_gcs["elsewhere"]["filepath"] == "/mnt/shared/m.json"
        assert env.through["companies"] == "${globals:base_location}"

    def test_a_nested_global_keeps_its_siblings(self, tmp_path: Path) -> None:
        env, _ = self._moved(
            tmp_path,
            {
                "base/globals.yml": "paths:\n  data: data\n  logs: logs\n",
                "base/catalog.yml": _spaceflights_catalog("${globals:paths.data}"),
            },
        )
        assert env.globals == {"paths": {"data": f"{ROOT}/data", "logs": "logs"}}

    def test_catalog_variables_are_set_once_and_the_entries_copied(self, tmp_path: Path) -> None:
        """Kedro resolves `_` variables inside each env's folder: an override alone in
        conf/gcs would leave conf/base's entries on local disk (the loader says so)."""
        files = {
            "base/catalog_globals.yml": "_base_location: data/\n",
            "base/catalog.yml": _spaceflights_catalog("${_base_location}"),
        }
        conf = self._conf(tmp_path / "alone", files)
        (conf / "gcs").mkdir()
        (conf / "gcs/catalog_globals.yml").write_text(f"_base_location: {ROOT}/data\n")
        assert self._catalog(conf, "gcs")["companies"]["filepath"].startswith("data/")

        env, _ = self._moved(tmp_path, files)
        assert env.variables == {"_base_location": f"{ROOT}/data"}
        assert env.entries["companies"]["filepath"] == "${_base_location}/01_raw/companies.csv"
        assert not env.globals

    def test_no_globals_copies_every_entry_as_before(self, tmp_path: Path) -> None:
        env, _ = self._moved(tmp_path, {"base/catalog.yml": _spaceflights_catalog("data")})
        assert not env.globals and not env.variables and not env.through
        assert len(env.entries) == 5

    def test_a_global_some_entries_use_differently_is_copied(self, tmp_path: Path) -> None:
        """`${globals:root}` then `/x` in one entry and `x` in another: no one value moves
        both exactly where the copy would, so both are copied."""
        catalog = """
a:
  type: pandas.CSVDataset
  filepath: ${globals:root}/a.csv
b:
  type: pandas.CSVDataset
  filepath: ${globals:root}b.csv
"""
        env, _ = self._moved(
            tmp_path, {"base/globals.yml": "root: data/\n", "base/catalog.yml": catalog}
        )
        assert not env.globals
        assert set(env.entries) == {"a", "b"}


class TestGlobalsOnTheExample:
    def test_the_command_overrides_the_global_and_plan_reads_gcs(self, tmp_path: Path) -> None:
        """The example with every filepath under `${globals:base_location}`: the command
        writes conf/gcs/globals.yml alone, and Kedro then plans with every path on GCS."""
        project = make_project(tmp_path, "spaceflights", Job(()))
        catalog = project / "conf/base/catalog.yml"
        text = catalog.read_text(encoding="utf-8")
        catalog.write_text(
            text.replace("filepath: data/", "filepath: ${globals:base_location}/"), "utf-8"
        )
        (project / "conf/base/globals.yml").write_text("base_location: data\n", "utf-8")

        done = _kedro(project, "gcs-bridge", "catalog", "--root", ROOT)
        assert done.returncode == 0, _said(done)
        assert not (project / "conf/gcs/catalog.yml").exists()
        written = yaml.safe_load((project / "conf/gcs/globals.yml").read_text(encoding="utf-8"))
        assert written == {"base_location": f"{ROOT}/data"}
        lines = done.stdout.splitlines()
        wrote = (
            f"wrote conf/gcs/globals.yml: ${{globals:base_location}} moved to {ROOT}, which "
            "moves 9 local-disk entries"
        )
        assert wrote in lines
        assert (
            f"  companies: data/01_raw/companies.csv -> {ROOT}/data/01_raw/companies.csv "
            "(through ${globals:base_location})"
        ) in lines

        plan = _kedro(project, "gcs-bridge", "plan", "-e", "gcs", "--params", "local_disk=error")
        assert plan.returncode == 0, _said(plan)
        assert f"    metrics ({ROOT}/data/08_reporting/metrics.json)" in plan.stdout
