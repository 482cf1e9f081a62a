"""``claimant config show``: what ``claimant serve`` would run with, and why.

Each setting comes from, strongest first: the environment (an option's
``CLAIMANT_*`` variable), the config file, the built-in default. Flags are
not part of it: they are on the command line you are about to type.
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

from claimant.cli.errors import error_text
from claimant.model.errors import ClaimantError


def effective(config_file: str | None, command_name: str = "serve") -> list[dict[str, Any]]:
    """One row per setting of ``serve``, ``conductor`` (serve) or ``agent``
    (run): name, value, source."""
    from claimant.cli import settings

    loaded = settings.load(config_file) if config_file else settings.Settings()
    command: click.Command
    if command_name == "serve":
        from claimant.cli.serve import serve as command

        from_file = loaded.serve
    else:
        from claimant.cli import tunables

        if command_name == "conductor":
            from claimant.cli.conductor import conductor_serve as command
        else:
            from claimant.cli.agent import agent_run as command
        from_file = (
            tunables.file_defaults(
                config_file, command, command_name, scheduler=command_name == "conductor"
            )
            if config_file
            else {}
        )
        loaded = settings.Settings(path=loaded.path)
    where = f"file {loaded.path}" if loaded.path else "file"
    rows: list[dict[str, Any]] = []
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in (None, "config_file"):
            continue
        name = param.name
        envvar = param.envvar if isinstance(param.envvar, str) else None
        value: Any
        if envvar and envvar in os.environ:
            value, source = os.environ[envvar], f"env {envvar}"
        elif name in from_file:
            value, source = from_file[name], where
        else:
            value, source = param.default, "default"
            if param.multiple and not isinstance(value, list | tuple):
                value = ()  # click's "unset" marker for a repeatable option
        rows.append({"setting": param.opts[-1].lstrip("-"), "value": value, "source": source})
    for entry in loaded.no_effect:
        rows.append({"setting": entry, "value": "(always on)", "source": where})
    for entry in loaded.ignored:
        rows.append({"setting": entry, "value": "(not used)", "source": where})
    return rows


@click.group()
def config() -> None:
    """Inspect claimant's configuration."""


@config.command("show")
@click.option(
    "--config-file",
    type=click.Path(exists=True, dir_okay=False),
    envvar="CLAIMANT_CONFIG_FILE",
    default=None,
    help="A placement.conf or claimant.toml, as given to claimant serve.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--for",
    "command_name",
    type=click.Choice(["serve", "conductor", "agent"]),
    default="serve",
    show_default=True,
    help="Whose settings: serve, conductor serve or agent run.",
)
def show(config_file: str | None, as_json: bool, command_name: str) -> None:
    """Print each setting of a command, its value, and where it came from."""
    try:
        rows = effective(config_file, command_name)
    except ClaimantError as exc:
        raise click.ClickException(error_text(exc)) from exc
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=80)
    if config_file:
        console.print(f"config file: {escape(config_file)}")
    table = Table(box=None, pad_edge=False)
    for column in ("setting", "value", "source"):
        table.add_column(column, overflow="fold")
    notes = []
    for row in rows:
        if row["setting"].startswith("["):
            notes.append(f"{row['setting']} {row['value']}")
            continue
        value = row["value"]
        shown = ",".join(value) if isinstance(value, list | tuple) else value
        source = "file" if row["source"].startswith("file") else row["source"]
        table.add_row(row["setting"], escape("" if shown is None else str(shown)), source)
    console.print(table)
    for note in notes:
        # escape: "[section] option" is not rich markup
        console.print(escape(note))
