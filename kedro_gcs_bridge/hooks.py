"""The Kedro hook of kedro-gcs-bridge: connects the stock `kedro airflow create` to the planner.

Registered through the `kedro.hooks` entry point, so every KedroSession of a project that has
kedro-gcs-bridge installed imports this module, a pod's `kedro run` included. It therefore
imports nothing of the DAG side at module level: only under `kedro airflow create` with the
bridge's template (read from the click context, as Kedro's own session store does) does it
import `dag.create`, which plans the pipelines before kedro-airflow writes any file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
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
    by Jinja: a comment or text that merely names it does not count, nor a template that
    binds the name itself).

    Only the parse tree is read (Jinja's `meta.find_undeclared_variables` compiles the whole
    template, which this hook would pay on every create). A template whose text never names
    the variable is not parsed at all, nor the one `kedro gcs-bridge init` copied, unchanged
    (equal to the shipped template byte for byte).
    """
    jinja_file = params.get("jinja_file")
    if not jinja_file:
        return False
    try:
        with open(jinja_file, encoding="utf-8") as handle:  # noqa: PTH123
            text = handle.read()
    except (OSError, UnicodeDecodeError):
        return False  # kedro-airflow reports it when it renders the template
    if _VARIABLE not in text:
        return False
    if text == _shipped_template():
        return True
    import jinja2  # kedro-airflow's dependency: present under `kedro airflow create`
    from jinja2 import nodes

    try:
        parsed = jinja2.Environment(autoescape=True).parse(text)
    except jinja2.TemplateSyntaxError:
        return False  # kedro-airflow reports it when it renders the template
    contexts = {name.ctx for name in parsed.find_all(nodes.Name) if name.name == _VARIABLE}
    bound = any(
        _VARIABLE in (_imported_as(name) for name in node.names)
        if isinstance(node, nodes.FromImport)
        else node.target == _VARIABLE
        for node in parsed.find_all((nodes.Import, nodes.FromImport))
    )
    return contexts == {"load"} and not bound


#: The template variable the hook provides (`dag.create.CONFIG_KEY`, not imported: this
#: module imports nothing of the DAG side).
_VARIABLE = "gcs_bridge"


def _shipped_template() -> str | None:
    """The text of the template `init` copies: in the wheel, or at a source checkout's root."""
    package = Path(__file__).parent
    for path in (package / "_resources" / "templates", package.parent / "templates"):
        try:
            return (path / "gcs_bridge.j2").read_text(encoding="utf-8")
        except OSError:
            continue
    return None


def _imported_as(name: str | tuple[str, str]) -> str:
    return name[1] if isinstance(name, tuple) else name


class AirflowCreateHook:
    """Validates and plans the pipelines of `kedro airflow create` before any file is written."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        params = _airflow_create_params()
        if params is None or not _template_uses_bridge(params):
            return
        _pause_collection()
        import click

        from kedro_gcs_bridge.dag.create import prepare_create
        from kedro_gcs_bridge.errors import GCSBridgeError

        try:
            prepare_create(context, params)
        except GCSBridgeError as exc:  # one error, not a traceback (as validate says it)
            raise click.ClickException(f"kedro-gcs-bridge: no DAG file written.\n{exc}") from exc


def _pause_collection() -> None:
    """Switches Python's cyclic garbage collector off until `kedro airflow create` ends.

    Loading the pipelines, planning them and rendering the DAG file allocate tens of thousands
    of small objects that hold no reference cycle; every few hundred allocations CPython scans
    the young objects, and now and then all of Kedro's heap (0.1-0.2 s of a 2,000-node
    create). Nothing they leave is cyclic garbage worth collecting in a process that ends with
    the command; the collector is switched back on when the command's click context closes.
    """
    import gc

    import click

    ctx = click.get_current_context(silent=True)
    if ctx is None or not gc.isenabled():
        return
    gc.disable()
    ctx.call_on_close(gc.enable)


hooks = AirflowCreateHook()
