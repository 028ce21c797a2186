"""What `kedro airflow create` reads of a project to plan it: the catalog from its config
(factories resolved, credentials applied, no parameter datasets), the parameters only when a
node reads one, and no module a catalog without pandas datasets does not need."""

from __future__ import annotations

import itertools
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from conftest import TEMPLATE, kedro_env
from kedro.framework.hooks import hook_impl

from kedro_gcs_bridge.dag.create import prepare_create
from kedro_gcs_bridge.dag.storage_check import planning_catalog
from kedro_gcs_bridge.planning.storage import Where
from kedro_gcs_bridge.pod.catalog import catalog_locations

_NAMES = itertools.count()

_PYPROJECT = """\
[project]
name = "{package}"
version = "0.1.0"

[tool.kedro]
package_name = "{package}"
project_name = "{package}"
kedro_init_version = "1.7.0"
source_dir = "src"
"""

_SETTINGS = '''\
"""Only kedro-gcs-bridge's plugin hooks."""

DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow",)
'''

_REGISTRY = '''\
"""Three nodes: a raw input and a local output from catalog factories, a remote intermediate."""

from kedro.pipeline import Node, Pipeline


def step(*values):
    return len(values)


def register_pipelines():
    pipeline = Pipeline(
        [
            Node(step, {prepare_inputs}, "features", name="prepare"),
            Node(step, "features", "scores_remote", name="score"),
            Node(step, "scores_remote", "report_local", name="report"),
        ]
    )
    other = Pipeline([Node(step, "companies_raw", "side", name="side_node")])
    return {{"__default__": pipeline, "other": other}}
'''

_CATALOG = """\
"{name}_raw":
  type: json.JSONDataset
  filepath: data/01_raw/{name}.json

"{name}_local":
  type: pickle.PickleDataset
  filepath: data/02_intermediate/{name}.pkl

scores_remote:
  type: json.JSONDataset
  filepath: gs://tiny-bucket/scores.json
  credentials: tiny_gcs
"""

_AIRFLOW = """\
default:
  gcp_project_id: tiny-project
  gcp_region: europe-west1
  gcp_gke_cluster_name: tiny-autopilot
  docker_image: europe-west1-docker.pkg.dev/tiny-project/kedro/tiny:0.1.0
  gcs_bridge_root: gs://tiny-bucket/kedro-gcs-bridge
  start_date: [2023, 1, 1]
"""

#: Runs the kedro CLI as `kedro` does, then says whether pandas was imported.
_RUN_KEDRO = """\
import json, sys
from kedro.framework.cli import main
sys.argv = ["kedro", *sys.argv[1:]]
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "pandas": "pandas" in sys.modules}))
"""


def write_project(root: Path, reads_parameter: bool = False) -> Path:
    """A minimal project whose catalog holds no pandas dataset (and whose code imports none):
    a factory-made raw input and local output, a remote intermediate with credentials."""
    package = f"tiny_create_{next(_NAMES)}"
    project = root / package
    source = project / "src" / package
    source.mkdir(parents=True)
    inputs = '["companies_raw", "params:alpha"]' if reads_parameter else '"companies_raw"'
    files = {
        "pyproject.toml": _PYPROJECT.format(package=package),
        f"src/{package}/__init__.py": '"""Tiny project."""\n',
        f"src/{package}/settings.py": _SETTINGS,
        f"src/{package}/pipeline_registry.py": _REGISTRY.format(prepare_inputs=inputs),
        "conf/base/catalog.yml": _CATALOG,
        "conf/base/parameters.yml": "alpha: 1\n",
        "conf/base/airflow.yml": _AIRFLOW,
        "conf/local/credentials.yml": "tiny_gcs:\n  token: anon\n",
        "data/01_raw/companies.json": "{}\n",
    }
    for relative, text in files.items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(text, encoding="utf-8")
    return project


@pytest.fixture
def session_of() -> Iterator[Callable[[Path], Any]]:
    """`session_of(project)`: a KedroSession of the project (env local), closed after the test."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    opened: list[Any] = []
    path = list(sys.path)

    def session(project: Path) -> Any:
        bootstrap_project(project)
        opened.append(KedroSession.create(project_path=project, env="local"))
        return opened[-1]

    yield session
    for each in opened:
        each.close()
    sys.path[:] = path


def _create_params(**extra: Any) -> dict[str, Any]:
    return {"env": "local", "pipeline_names": ["__default__"], "params": extra}


class TestCatalog:
    def test_create_does_not_import_pandas_for_a_catalog_without_pandas(
        self, tmp_path: Path
    ) -> None:
        project = write_project(tmp_path)
        create = ["airflow", "create", "-j", str(TEMPLATE), "-t", "dags"]
        done = subprocess.run(
            [sys.executable, "-c", _RUN_KEDRO, *create, "--params", "local_disk=warn"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env=kedro_env(),
        )
        said = json.loads(done.stdout.strip().splitlines()[-1])
        assert said["code"] == 0, done.stderr[-3000:]
        assert len(list((project / "dags").glob("*.py"))) == 1
        # The factory-made local output is still found on local disk, and warned about.
        assert "report_local" in done.stdout + done.stderr, done.stdout[-3000:]
        assert said["pandas"] is False

    def test_factory_and_credentialed_datasets_locate_as_in_the_full_catalog(
        self, tmp_path: Path, session_of: Callable[[Path], Any]
    ) -> None:
        context = session_of(write_project(tmp_path)).load_context()
        names = ["companies_raw", "features", "scores_remote", "report_local"]
        planned = catalog_locations(planning_catalog(context), names)
        assert planned == catalog_locations(context.catalog, names)
        assert [planned[name].where for name in names] == [
            Where.LOCAL,
            Where.MEMORY,
            Where.REMOTE,
            Where.LOCAL,
        ]
        assert planned["report_local"].path == str(
            Path(context.project_path) / "data/02_intermediate/report.pkl"
        )

    def test_a_local_output_from_a_factory_stops_create(
        self, tmp_path: Path, session_of: Callable[[Path], Any]
    ) -> None:
        context = session_of(write_project(tmp_path)).load_context()
        with pytest.raises(click.ClickException) as raised:
            prepare_create(context, _create_params())
        assert "report_local" in raised.value.message, raised.value.message

    def test_no_catalog_hook_is_fired(
        self, tmp_path: Path, session_of: Callable[[Path], Any]
    ) -> None:
        context = session_of(write_project(tmp_path)).load_context()
        fired: list[Any] = []

        class Counting:
            @hook_impl
            def after_catalog_created(self, catalog: Any) -> None:
                fired.append(catalog)

        context._hook_manager.register(Counting())
        prepare_create(context, _create_params(local_disk="warn"))
        assert fired == []


class TestGroups:
    def test_an_entry_for_another_pipeline_is_no_warning_and_a_typo_is(
        self, tmp_path: Path, session_of: Callable[[Path], Any]
    ) -> None:
        project = write_project(tmp_path)
        groups = "  groups:\n    mine: [prepare]\n    theirs: [side_node]\n    typo: [sid_node]\n"
        with (project / "conf/base/airflow.yml").open("a", encoding="utf-8") as handle:
            handle.write(groups)
        context = session_of(project).load_context()
        # Kedro's logging setup (the session's) replaces the handler pytest's caplog adds.
        records: list[logging.LogRecord] = []
        handler = logging.Handler(logging.WARNING)
        handler.emit = records.append  # type: ignore[method-assign]
        logger = logging.getLogger("kedro_gcs_bridge")
        logger.addHandler(handler)
        try:
            prepare_create(context, _create_params(local_disk="warn"))
        finally:
            logger.removeHandler(handler)
        said = [r.getMessage() for r in records if "groups:" in r.getMessage()]
        assert len(said) == 1, said
        assert "'sid_node', which matches no node of any registered pipeline" in said[0]


class TestParameters:
    @pytest.mark.parametrize(("reads", "expected_reads"), [(False, 0), (True, 1)])
    def test_read_only_when_a_node_reads_one(
        self,
        tmp_path: Path,
        session_of: Callable[[Path], Any],
        monkeypatch: pytest.MonkeyPatch,
        reads: bool,
        expected_reads: int,
    ) -> None:
        from kedro.framework.context import KedroContext

        context = session_of(write_project(tmp_path, reads_parameter=reads)).load_context()
        calls: list[str] = []
        params = KedroContext.params

        def counted(self: KedroContext) -> Any:
            calls.append("params")
            return params.fget(self)  # type: ignore[attr-defined]

        monkeypatch.setattr(KedroContext, "params", property(counted))
        prepare_create(context, _create_params(local_disk="warn"))
        assert len(calls) == expected_reads

    def test_a_parameter_no_env_defines_still_stops_create(
        self, tmp_path: Path, session_of: Callable[[Path], Any]
    ) -> None:
        project = write_project(tmp_path, reads_parameter=True)
        (project / "conf/base/parameters.yml").write_text("beta: 1\n", encoding="utf-8")
        context = session_of(project).load_context()
        with pytest.raises(click.ClickException) as raised:
            prepare_create(context, _create_params(local_disk="warn"))
        assert "reads params:alpha, which env 'local' does not define" in raised.value.message


class TestStorage:
    @pytest.mark.parametrize("backend", ["gke", "local"])
    def test_each_pipeline_is_classified_once_and_its_assets_are_the_same(
        self,
        tmp_path: Path,
        session_of: Callable[[Path], Any],
        monkeypatch: pytest.MonkeyPatch,
        backend: str,
    ) -> None:
        """Issue 28: the storage checks and the assets read one classification (it was made
        twice per pipeline), and the assets are those `plan_assets` finds on its own (the
        shared entries hold project-relative local paths)."""
        from kedro.framework.project import pipelines

        from kedro_gcs_bridge.dag import storage_check
        from kedro_gcs_bridge.dag.create import CONFIG_KEY
        from kedro_gcs_bridge.planning import assets

        context = session_of(write_project(tmp_path)).load_context()
        calls: list[str] = []
        classify = storage_check.classify

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls.append("classify")
            return classify(*args, **kwargs)

        monkeypatch.setattr(storage_check, "classify", counted)
        monkeypatch.setattr(assets, "classify", counted)
        prepare_create(context, _create_params(local_disk="warn", pod_backend=backend))
        assert calls == ["classify"]
        monkeypatch.undo()

        (dag,) = context.config_loader["airflow"]["default"][CONFIG_KEY].planned.values()
        pipeline = pipelines["__default__"]
        catalog = storage_check.planning_catalog(context)
        path = str(context.project_path)
        alone = storage_check.with_assets(dag, pipeline, pipelines, catalog, path)
        assert dag.assets == alone.assets
        assert dag.assets is not None and dag.assets.outlets  # something to compare
