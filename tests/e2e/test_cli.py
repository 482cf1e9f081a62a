"""The agent and conductor commands against loopback servers."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from claimant.agent.http import create_agent_app
from claimant.api import AuthConfig, create_app
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
        shown = cli.invoke(main, ["conductor", "show", "--url", url, uuid], env={"COLUMNS": "80"})
        assert shown.exit_code == 0, shown.output
        assert f"request {uuid}" in shown.output and "active" in shown.output
        assert re.search(r"ago\s+built", shown.output)
        # issue 11: it printed 246-character JSON lines
        assert max(len(line.rstrip()) for line in shown.output.splitlines()) <= 80

        state = cli.invoke(main, ["agent", "state", "--url", agent_url])
        assert state.exit_code == 0, state.output
        assert json.loads(state.output)["instances"] == agent.instances() != []

        gone = cli.invoke(main, ["conductor", "destroy", "--url", url, uuid])
        assert gone.exit_code == 0, gone.output
        assert "deleted" in gone.output

        missing = cli.invoke(main, ["conductor", "show", "--url", url, "not-a-uuid"])
        assert missing.exit_code != 0
        assert "invalid_input" in missing.output


def test_a_failed_build_exits_non_zero(sqlite_store: Store) -> None:
    # issue 11: the conductor answered 200 for a failed build and the CLI exited 0
    conductor = Conductor(sqlite_store, Scheduler(sqlite_store), AgentDirectory())
    cli = CliRunner()
    with LoopbackServer(create_conductor_app(conductor)) as url:
        args = ["conductor", "build", "--url", url, "--vcpus", "1", "--memory-mb", "256"]
        built = cli.invoke(main, args, env={"COLUMNS": "80"})
        assert built.exit_code == 5, built.output  # no provider at all: no valid host
        assert "reason:" in built.stdout and "failed" in built.stdout
        assert "Error: no_valid_host" in built.stderr
        as_json = cli.invoke(main, [*args, "--json"])
        assert as_json.exit_code == 5
        assert json.loads(as_json.stdout)["status"] == "failed"
        assert json.loads(as_json.stderr)["error"]["code"] == "no_valid_host"


def test_operator_views_on_every_store(store: Store, make_agent: AgentFactory) -> None:
    """``provider list`` and ``top`` over the real API on each backend (issue 11):
    used and free from Store.list_usages, health from a real agent's heartbeat."""
    agent = make_agent(store, "host-a")
    cli = CliRunner()
    with LoopbackServer(create_app(store, auth=AuthConfig.noauth2())) as url:
        env = {"COLUMNS": "80", "CLAIMANT_URL": url, "CLAIMANT_TOKEN": "admin"}
        made = cli.invoke(
            main, ["provider", "create", "pool", "--inventory", "DISK_GB=100"], env=env
        )
        assert made.exit_code == 0, made.output
        req = cli.invoke(main, ["request", "create", "--resources", "VCPU=1", "--json"], env=env)
        assert req.exit_code == 0, req.output
        listed = cli.invoke(main, ["provider", "list", "--json"], env=env)
        by_name = {p["name"]: p for p in json.loads(listed.stdout)["providers"]}
        assert by_name["host-a"]["health"] == "up" and by_name["pool"]["health"] == "no_agent"
        assert by_name["host-a"]["usages"]["VCPU"]["used"] == 1
        assert by_name[agent.name]["uuid"] == agent.uuid
        table = cli.invoke(main, ["provider", "list"], env=env)
        assert table.exit_code == 0 and "host-a" in table.stdout and " up " in table.stdout
        top = cli.invoke(main, ["top", "--json"], env=env)
        cap = json.loads(top.stdout)
        assert cap["providers"]["health"]["up"] == 1 and cap["providers"]["total"] == 2
        assert cap["resource_classes"]["VCPU"]["used"] == 1
        assert cap["resource_classes"]["DISK_GB"]["free"] == 100
        assert cli.invoke(main, ["top"], env=env).exit_code == 0
