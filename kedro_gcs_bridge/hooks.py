"""The Kedro hook of kedro-gcs-bridge: connects the stock `kedro airflow create` to the planner.

Registered through the `kedro.hooks` entry point, so every KedroSession of a project that has
kedro-gcs-bridge installed imports this module, a pod's `kedro run` included. It therefore
imports nothing of the DAG side at module level: only under `kedro airflow create` with the
bridge's template (read from the click context, as Kedro's own session store does) does it
import `dag.create`, which plans the pipelines before kedro-airflow writes any file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kedro.framework.hooks import hook_impl

if TYPE_CHECKING:
    from kedro.framework.context import KedroContext


def _airflow_create_params() -> Mapping[str, Any] | None:
    """The params of a running `kedro airflow create`, or None under any other command."""
    import click

    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.command.name != "create":
        return None
    parent = ctx.parent
    if parent is None or parent.command.name != "airflow":
        return None
    return ctx.params


def _template_uses_bridge(params: Mapping[str, Any]) -> bool:
    """Whether the `-j` template reads the `gcs_bridge` variable this hook provides (parsed
    by Jinja: a comment or text that merely names it does not count)."""
    jinja_file = params.get("jinja_file")
    if not jinja_file:
        return False
    import jinja2  # kedro-airflow's dependency: present under `kedro airflow create`
    from jinja2 import meta, nodes

    environment = jinja2.Environment(autoescape=True)
    try:
        with open(jinja_file, encoding="utf-8") as handle:  # noqa: PTH123
            parsed = environment.parse(handle.read())
    except (OSError, UnicodeDecodeError, jinja2.TemplateSyntaxError):
        return False  # kedro-airflow reports it when it renders the template
    # kedro-airflow renders with its own filters (`slugify` in the stock template): stand-ins
    # let Jinja's analysis compile the template without them.
    for used in parsed.find_all(nodes.Filter):
        environment.filters.setdefault(used.name, _identity_filter)
    for used in parsed.find_all(nodes.Test):
        environment.tests.setdefault(used.name, _identity_filter)
    return "gcs_bridge" in meta.find_undeclared_variables(parsed)


def _identity_filter(value: Any, *_: Any, **__: Any) -> Any:
    return value


class AirflowCreateHook:
    """Validates and plans the pipelines of `kedro airflow create` before any file is written."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        params = _airflow_create_params()
        if params is None or not _template_uses_bridge(params):
            return
        from kedro_gcs_bridge.dag.create import prepare_create

        prepare_create(context, params)


hooks = AirflowCreateHook()
