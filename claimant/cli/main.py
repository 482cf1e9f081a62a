"""Entry point of the ``claimant`` command.

Each subcommand group lives in its own module and is imported lazily, so
``claimant cluster ...`` does not pay for importing the HTTP stack and
``claimant serve`` does not import the Cassandra launcher.
"""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command or group.
SUBCOMMANDS: dict[str, str] = {
    "serve": "claimant.cli.serve:serve",
    "store": "claimant.cli.store:store",
    "cluster": "claimant.cli.cluster:cluster",
    "provider": "claimant.cli.client:provider",
    "inventory": "claimant.cli.client:inventory",
    "request": "claimant.cli.client:request",
    "claim": "claimant.cli.client:claim",
    "agent": "claimant.cli.agent:agent",
    "conductor": "claimant.cli.conductor:conductor",
    "sim": "claimant.cli.sim:sim",
    "torture": "claimant.cli.torture:torture",
    "import": "claimant.cli.importer:import_",
    "config": "claimant.cli.config:config",
}


class LazyGroup(click.Group):
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
