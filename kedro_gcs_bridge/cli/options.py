"""What several commands share: the `-p/-e/--params` options, and `-o/--output` with the one
way machine-readable output is written (a file, or stdout with a note on stderr)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

DEFAULT_PIPELINE = "__default__"
DEFAULT_ENV = "local"

#: Said on stderr when machine-readable output goes to stdout: Kedro's CLI prints its own log
#: record ("Using ... as logging configuration") there before any plugin code runs.
STDOUT_NOTE = (
    "note: Kedro may print its own log record on stdout before this output; "
    "-o FILE writes the output alone to FILE."
)


def _split_params(ctx: click.Context, param: Any, value: str) -> dict[str, Any]:
    from kedro.framework.cli.utils import _split_params as kedro_split_params

    return kedro_split_params(ctx, param, value)


pipeline_option = click.option(
    "-p", "--pipeline", "pipeline_name", default=DEFAULT_PIPELINE, show_default=True
)
env_option = click.option("-e", "--env", default=DEFAULT_ENV, show_default=True)
params_option = click.option(
    "--params", default="", callback=_split_params, help="Config overrides k=v,..."
)
output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file, not stdout (where Kedro's own log record may precede it).",
)


def emit(text: str, output: Path | None, machine_readable: bool) -> None:
    """Writes a command's output to `output`, or to stdout.

    Args:
        text: The whole output.
        output: The `-o` file, or None for stdout.
        machine_readable: A format for programs (json, yaml, mermaid, dot): on stdout, a note
            on stderr says that Kedro's log record may precede it and that `-o` avoids it.
    """
    if output is None:
        if machine_readable:
            click.echo(STDOUT_NOTE, err=True)
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.FileError(str(output), hint=exc.strerror or str(exc)) from exc
    click.echo(f"wrote {output}")
