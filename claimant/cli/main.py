"""Entry point of the ``claimant`` command.

Each subcommand group lives in its own module and is imported lazily, so
``claimant cluster ...`` does not pay for importing the HTTP stack and
``claimant serve`` does not import the Cassandra launcher.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import click

# name -> "module:attribute" of a click command or group.
SUBCOMMANDS: dict[str, str] = {
    "serve": "claimant.cli.serve:serve",
    "store": "claimant.cli.store:store",
    "cluster": "claimant.cli.cluster:cluster",
    "provider": "claimant.cli.providers:provider",
    "inventory": "claimant.cli.providers:inventory",
    "request": "claimant.cli.requests:request",
    "claim": "claimant.cli.requests:claim",
    "top": "claimant.cli.top:top",
    "resource-class": "claimant.cli.catalog:resource_class",
    "trait": "claimant.cli.catalog:trait",
    "resource-type": "claimant.cli.catalog:resource_type",
    "aggregate": "claimant.cli.catalog:aggregate",
    "agent": "claimant.cli.agent:agent",
    "conductor": "claimant.cli.conductor:conductor",
    "sim": "claimant.cli.sim:sim",
    "torture": "claimant.cli.torture:torture",
    "import": "claimant.cli.importer:import_",
    "config": "claimant.cli.config:config",
}


def _wants_json(args: list[str]) -> bool:
    """Whether the command line asks for machine output (its errors are JSON too)."""
    machine = ("json", "yaml")
    for i, a in enumerate(args):
        if a == "--json" or a in [f"-o{m}" for m in machine] + [f"--output={m}" for m in machine]:
            return True
        if a in ("-o", "--output") and args[i + 1 : i + 2] in (["json"], ["yaml"]):
            return True
    return False


class LazyGroup(click.Group):
    # click types main() as overloads on standalone_mode; this one forwards either.
    def main(self, args: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        if not _wants_json(argv):
            return super().main(argv, **kwargs)
        try:
            super().main(argv, standalone_mode=False, **kwargs)
            sys.exit(0)
        except click.UsageError as exc:
            # A script that asked for JSON gets its usage errors as JSON too.
            click.echo(
                json.dumps({"error": {"code": "usage", "message": exc.format_message()}}),
                err=True,
            )
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in SUBCOMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A subcommand whose module is not written yet is simply absent;
            # any other missing module is a real error and must surface.
            if exc.name == module_name:
                return None
            raise
        command = getattr(module, attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="claimant")
def main() -> None:
    """claimant: a race-free resource scheduler for clouds."""
