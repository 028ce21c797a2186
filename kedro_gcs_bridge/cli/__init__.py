"""`kedro gcs-bridge ...`: the command line, registered as a Kedro project command through the
`kedro.project_commands` entry point (`kedro_gcs_bridge.cli:commands`).

Kedro loads this module for every `kedro` command, a pod's `kedro run` included, so it holds
only the groups: each command family is a module of this package, loaded when one of its
commands is named. `BridgeGroup` is the one error handler: an error of the package
(`kedro_gcs_bridge.errors`) becomes `Error: <what is wrong>` on stderr and exit code 1.
"""

from __future__ import annotations

import importlib

import click

from kedro_gcs_bridge.errors import GCSBridgeError

__all__ = ["BridgeGroup", "commands"]

#: Command -> the module of this package that defines it, and its name there.
_COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("project", "init"),
    "catalog": ("project", "catalog"),
    "plan": ("plan", "plan"),
    "validate": ("plan", "validate"),
    "replay": ("replay", "replay"),
    "suggest": ("suggest", "suggest"),
    "runs": ("runs", "runs"),
    "finalize": ("runs", "finalize"),
    "deploy": ("deploy", "deploy"),
    "trigger": ("deploy", "trigger"),
}


class BridgeGroup(click.Group):
    """`kedro gcs-bridge`: loads a command family on first use, and turns the package's errors
    into one `Error: ...` on stderr and exit code 1 (for every command, the `runs` group's
    included, since they run inside this group's `invoke`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = _COMMANDS.get(cmd_name)
        if found is None:
            return super().get_command(ctx, cmd_name)
        module, name = found
        command: click.Command = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        return command

    def invoke(self, ctx: click.Context) -> object:
        from kedro.config import MissingConfigException

        try:
            return super().invoke(ctx)
        except GCSBridgeError as exc:
            raise click.ClickException(str(exc)) from exc
        except MissingConfigException as exc:  # e.g. `-e` names no folder under conf/
            raise click.ClickException(
                f"{exc} (check -e/--env: it names a folder of conf/)"
            ) from exc


@click.group(name="kedro-gcs-bridge")
def commands() -> None:
    """kedro-gcs-bridge commands."""


@commands.group(name="gcs-bridge", cls=BridgeGroup)
def gcs_bridge() -> None:
    """Run a Kedro project on Airflow + GKE, one pod per node group, data through GCS."""
