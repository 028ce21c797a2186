"""The hook under `kedro airflow create`: which templates it serves, and one plan per pipeline
shared by the hook (before any file is written) and the template (that renders it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from conftest import EXAMPLE, TEMPLATE
from kedro.pipeline import Pipeline, node

from kedro_gcs_bridge.dag import dagfile
from kedro_gcs_bridge.dag.dagfile import DagFileFactory
from kedro_gcs_bridge.hooks import _template_uses_bridge


class TestTemplateCheck:
    @pytest.mark.parametrize(
        ("text", "uses"),
        [
            ("{% set dag = gcs_bridge.dag_file() %}{{ dag.dag_id }}", True),
            ("{% if gcs_bridge is defined %}ok{% endif %}", True),
            # Naming it is not using it: kedro-airflow's own template, with a note.
            ("{# not the gcs_bridge template #}{{ dag_name }}", False),
            ("# run with gcs_bridge later\n{{ pipeline_name }}", False),
            ("{% set gcs_bridge = 1 %}{{ gcs_bridge }}", False),
            ("{% if gcs_bridge %}", False),  # a syntax error: kedro-airflow reports it
            # kedro-airflow's own filter, unknown to a plain Jinja environment.
            ("{{ dag_name | slugify }}{{ gcs_bridge.dag_file() }}", True),
            ("{{ dag_name | slugify }}{% if x is odd_one %}{% endif %}", False),
            ("{% for gcs_bridge in x %}{{ gcs_bridge }}{% endfor %}", False),
            ("{% macro m(gcs_bridge) %}{{ gcs_bridge }}{% endmacro %}", False),
            ("{% import 'x.j2' as gcs_bridge %}{{ gcs_bridge.dag_file() }}", False),
            ("{% from 'x.j2' import m as gcs_bridge %}{{ gcs_bridge() }}", False),
        ],
        ids=[
            *("calls", "tests", "comment", "text", "own-variable", "broken", "filter", "test"),
            *("loop-variable", "macro-argument", "import", "from-import"),
        ],
    )
    def test_the_template_must_read_the_variable(
        self, text: str, uses: bool, tmp_path: Path
    ) -> None:
        path = tmp_path / "dag.j2"
        path.write_text(text, encoding="utf-8")
        assert _template_uses_bridge({"jinja_file": str(path)}) is uses

    def test_the_shipped_template_is_recognised(self) -> None:
        assert _template_uses_bridge({"jinja_file": str(TEMPLATE)})

    def test_an_unchanged_copy_is_recognised_without_parsing_an_edited_one_parsed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The copy `init` made is the shipped template to the byte: recognised by equality
        (Jinja's parse is ~25 ms of every create); an edited copy is parsed as any template."""
        parsed: list[str] = []
        parse = jinja2.Environment.parse

        def counted(env: jinja2.Environment, source: str, *args: Any, **kwargs: Any) -> Any:
            parsed.append(source)
            return parse(env, source, *args, **kwargs)

        monkeypatch.setattr(jinja2.Environment, "parse", counted)
        copy = tmp_path / "gcs_bridge.j2"
        copy.write_bytes(TEMPLATE.read_bytes())
        assert _template_uses_bridge({"jinja_file": str(copy)})
        assert parsed == []
        copy.write_text(TEMPLATE.read_text("utf-8") + "{# edited #}\n", encoding="utf-8")
        assert _template_uses_bridge({"jinja_file": str(copy)})
        assert len(parsed) == 1
        copy.write_text("{% set gcs_bridge = 1 %}" + TEMPLATE.read_text("utf-8"), "utf-8")
        assert not _template_uses_bridge({"jinja_file": str(copy)})

    def test_kedro_airflows_stock_template_is_not(self) -> None:
        import kedro_airflow

        stock = Path(kedro_airflow.__file__).parent / "airflow_dag_template.j2"
        assert stock.is_file()
        assert not _template_uses_bridge({"jinja_file": str(stock)})

    def test_no_or_missing_template_is_not(self, tmp_path: Path) -> None:
        assert not _template_uses_bridge({})
        assert not _template_uses_bridge({"jinja_file": str(tmp_path / "missing.j2")})


class TestCollector:
    def test_it_is_off_while_create_runs_and_back_on_after(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import gc

        import click

        from kedro_gcs_bridge import hooks
        from kedro_gcs_bridge.dag import create

        seen: list[bool] = []
        monkeypatch.setattr(create, "prepare_create", lambda *_: seen.append(gc.isenabled()))
        monkeypatch.setattr(hooks, "_template_uses_bridge", lambda _: True)
        airflow = click.Context(click.Group("airflow"))
        with click.Context(click.Command("create"), parent=airflow) as ctx:
            ctx.params = {"jinja_file": "gcs_bridge.j2"}
            hooks.hooks.after_context_created(context=None)
            assert not gc.isenabled()
        assert seen == [False]
        assert gc.isenabled()


def _identity(value: Any) -> Any:
    return value


def _render(factory: DagFileFactory, variables: dict[str, Any], target: Path) -> None:
    """Renders the shipped template as kedro-airflow does (its own variables + the config)."""
    environment = jinja2.Environment(
        autoescape=True, loader=jinja2.FileSystemLoader(TEMPLATE.parent), lstrip_blocks=True
    )
    environment.filters["slugify"] = _identity
    environment.get_template(TEMPLATE.name).stream(
        dag_name=variables["package_name"], node_objs={}, **variables, gcs_bridge=factory
    ).dump(str(target))


class TestOnePlan:
    def test_the_template_renders_the_plan_the_hook_made(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        planned: list[str] = []
        plan_tasks = dagfile.plan_tasks

        def counting(name: str, *args: Any, **kwargs: Any) -> Any:
            planned.append(name)
            return plan_tasks(name, *args, **kwargs)

        monkeypatch.setattr(dagfile, "plan_tasks", counting)
        example = yaml.safe_load((EXAMPLE / "conf/base/airflow.yml").read_text(encoding="utf-8"))
        pipeline = Pipeline([node(_identity, "a", "b", name="n1"), node(_identity, "b", "c")])
        variables = {
            **example["default"],
            "local_disk": "warn",
            "pipeline": pipeline,
            "pipeline_name": "__default__",
            "env": "local",
            "package_name": "pkg",
            "conf_source": "",
        }
        factory = DagFileFactory(str(tmp_path))
        dag = factory.plan(variables)  # the hook, before kedro-airflow writes
        assert dag.error is None and planned == ["__default__"]
        _render(factory, variables, tmp_path / "pkg_dag.py")
        assert planned == ["__default__"]
        assert f"dag_id={dag.dag_id!r}".replace("'", '"') in (tmp_path / "pkg_dag.py").read_text(
            encoding="utf-8"
        )
        # Another config is another plan.
        factory.plan({**variables, "retries": 3})
        assert planned == ["__default__", "__default__"]
