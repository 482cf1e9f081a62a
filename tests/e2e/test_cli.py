"""The agent and conductor commands against loopback servers."""

from __future__ import annotations

import json

from click.testing import CliRunner

from claimant.agent.http import create_agent_app
from claimant.cli.main import main
from claimant.conductor import AgentDirectory, Conductor
from claimant.conductor.http import create_conductor_app
from claimant.scheduler import Scheduler
from claimant.store import Store

from .conftest import AgentFactory, LoopbackServer


def test_conductor_and_agent_commands(sqlite_store: Store, make_agent: AgentFactory) -> None:
    agent = make_agent(sqlite_store, "host-a")
    agents = AgentDirectory()
    agents.add([agent.uuid], agent)
    conductor = Conductor(sqlite_store, Scheduler(sqlite_store), agents)
    cli = CliRunner()
    with (
        LoopbackServer(create_conductor_app(conductor)) as url,
        LoopbackServer(create_agent_app(agent)) as agent_url,
    ):
        built = cli.invoke(
            main,
            ["conductor", "build", "--url", url, "--vcpus", "1", "--memory-mb", "256", "--json"],
        )
        assert built.exit_code == 0, built.output
        uuid = json.loads(built.output)["uuid"]
        shown = cli.invoke(main, ["conductor", "show", "--url", url, uuid])
        assert shown.exit_code == 0, shown.output
        assert f"request {uuid}: active" in shown.output
        assert "- built" in shown.output

        state = cli.invoke(main, ["agent", "state", "--url", agent_url])
        assert state.exit_code == 0, state.output
        assert json.loads(state.output)["instances"] == agent.instances() != []

        gone = cli.invoke(main, ["conductor", "destroy", "--url", url, uuid])
        assert gone.exit_code == 0, gone.output
        assert "deleted" in gone.output

        missing = cli.invoke(main, ["conductor", "show", "--url", url, "not-a-uuid"])
        assert missing.exit_code != 0
        assert "invalid_input" in missing.output
