"""`kedro airflow create`'s planning step (dag/create.py), in-process on a copy of the example:
it refuses, before any file is written, a DAG whose pods would lack their config."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from conftest import EXAMPLE, REPO, Job, make_project

from kedro_gcs_bridge.dag.create import prepare_create

IGNORE = "docker/Dockerfile.dockerignore"
PARAMETERS = (EXAMPLE / "conf/base/parameters.yml").read_text(encoding="utf-8")
PARAMS_IN_LOCAL = {"conf/base/parameters.yml": None, "conf/local/parameters.yml": PARAMETERS}


@pytest.fixture
def create_in(tmp_path: Path) -> Iterator[Callable[..., None]]:
    """`create_in(files, env)`: prepare_create on a copy of the example with init's ignore
    file and `files` (relative -> text, None deletes), as `kedro airflow create -e env`."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    added: list[str] = []

    def create(files: dict[str, str | None], env: str, names: list[str] | None = None) -> None:
        path = make_project(tmp_path / str(len(added)), "spaceflights", Job(()))
        (path / IGNORE).parent.mkdir(parents=True)
        (path / IGNORE).write_bytes((REPO / IGNORE).read_bytes())
        for relative, text in files.items():
            if text is None:
                (path / relative).unlink()
            else:
                (path / relative).parent.mkdir(parents=True, exist_ok=True)
                (path / relative).write_text(text, encoding="utf-8")
        added.append(str(path / "src"))
        bootstrap_project(path)
        params: dict[str, Any] = {
            "env": env,
            "pipeline_names": names or ["__default__"],
            "params": {"handoff.local_disk": "warn"},
        }
        with KedroSession.create(project_path=path, env=env) as session:
            prepare_create(session.load_context(), params)

    yield create
    sys.path[:] = [entry for entry in sys.path if entry not in added]


class TestThePodsWorld:
    def test_an_env_the_image_leaves_out_stops_create(self, create_in: Callable) -> None:
        with pytest.raises(click.ClickException) as raised:
            create_in(PARAMS_IN_LOCAL, "local")
        message = raised.value.message
        assert "no DAG file written" in message
        for fragment in ("`--env local`", "conf/local/parameters.yml", "'conf/local/**'", "-e"):
            assert fragment in message, message

    def test_a_parameter_the_env_lacks_stops_create(self, create_in: Callable) -> None:
        with pytest.raises(click.ClickException) as raised:
            create_in({**PARAMS_IN_LOCAL, "conf/gcs/catalog.yml": "{}\n"}, "gcs")
        message = raised.value.message
        assert (
            "Pipeline __default__: task 'split' reads params:model_options, which env 'gcs' "
            "does not define"
        ) in message, message

    def test_an_unknown_pipeline_stops_create_naming_the_registered_ones(
        self, create_in: Callable
    ) -> None:
        """kedro-airflow's own message for it is lost (click 8.2+ prints "NoneType: None")."""
        with pytest.raises(click.ClickException) as raised:
            create_in({}, "local", ["data_processing", "data_sciense"])
        message = raised.value.message
        assert "no DAG file written" in message
        assert "pipeline 'data_sciense' is not registered" in message, message
        assert "(did you mean 'data_science'?)" in message, message
        assert "registered: __default__, data_processing, data_science" in message, message

    def test_a_groups_block_pasted_at_the_files_top_level_stops_create(
        self, create_in: Callable
    ) -> None:
        """suggest's `groups:` block pasted unindented would be read by nobody."""
        airflow = (EXAMPLE / "conf/base/airflow.yml").read_text(encoding="utf-8")
        pasted = airflow + "groups:\n  prep: [preprocess_companies_node]\n"
        with pytest.raises(click.ClickException) as raised:
            create_in({"conf/base/airflow.yml": pasted}, "local")
        message = raised.value.message
        assert "no DAG file written" in message
        assert "'groups' is a config key at the file's top level" in message, message

    def test_the_example_as_it_is_passes(self, create_in: Callable) -> None:
        create_in({}, "local")

    def test_a_dockerfile_the_dag_does_not_know_is_logged(
        self, create_in: Callable, caplog: pytest.LogCaptureFixture
    ) -> None:
        dockerfile = "FROM python:3.11\nENV KEDRO_ENV=prod\nRUN pip install kedro-gcs-bridge\n"
        with caplog.at_level("WARNING", logger="kedro_gcs_bridge"):
            create_in({"docker/Dockerfile": dockerfile}, "local")
        said = [r.getMessage() for r in caplog.records if "docker/Dockerfile " in r.getMessage()]
        assert len(said) == 1, said
        assert "sets ENV KEDRO_ENV=prod" in said[0]
