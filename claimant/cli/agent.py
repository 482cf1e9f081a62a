"""``claimant agent``: run the compute-node agent, or read one's state."""

from __future__ import annotations

import json
import logging

import click

from claimant.model.errors import ClaimantError


@click.group()
def agent() -> None:
    """The compute-node agent (register, heartbeat, build on claims)."""


def _announce(conductor: str, url: str, providers: list[str], token: str | None) -> None:
    import httpx

    headers = {"X-Auth-Token": token} if token else {}
    r = httpx.post(
        conductor.rstrip("/") + "/v1/agents",
        json={"url": url, "providers": providers},
        headers=headers,
        timeout=10,
    )
    r.raise_for_status()


@agent.command("run")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="TOML or JSON: [provider], [driver], [agent] (docs/loop.md).",
)
@click.option("--store", "store_url", envvar="CLAIMANT_STORE", required=True, help="Store URL.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8790, show_default=True, type=click.IntRange(1, 65535))
@click.option("--conductor", default=None, help="Conductor URL to announce this agent to.")
@click.option("--advertise", default=None, help="URL the conductor reaches us at.")
@click.option(
    "--token", envvar="CLAIMANT_LOOP_TOKEN", default=None, help="Shared X-Auth-Token (optional)."
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def agent_run(
    config_path: str,
    store_url: str,
    host: str,
    port: int,
    conductor: str | None,
    advertise: str | None,
    token: str | None,
    log_level: str,
) -> None:
    """Register the provider, heartbeat, resync, and serve build/destroy."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    from claimant.agent import Agent, AgentConfig
    from claimant.agent.http import create_agent_app
    from claimant.store import open_store

    url = advertise or f"http://{host}:{port}"
    try:
        config = AgentConfig.load(config_path)
        store = open_store(store_url)
        hook = None
        if conductor:

            def hook() -> None:
                _announce(conductor, url, [a.uuid], token)

        a = Agent(store, config, after_sync=hook)
        a.start()
    except ClaimantError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    click.echo(f"agent {a.name} ({a.uuid}) serving on {url}", err=True)
    import uvicorn

    try:
        uvicorn.run(create_agent_app(a, token=token), host=host, port=port, log_level=log_level)
    finally:
        a.stop()
        store.close()


@agent.command("state")
@click.option("--url", default="http://127.0.0.1:8790", show_default=True)
@click.option("--token", envvar="CLAIMANT_LOOP_TOKEN", default=None)
def agent_state(url: str, token: str | None) -> None:
    """Print an agent's provider, usages, instances and last resync (JSON)."""
    from claimant.agent.http import HttpAgentClient

    client = HttpAgentClient(url, token=token, timeout=30)
    try:
        click.echo(json.dumps(client.state(), indent=2, sort_keys=True))
    except ClaimantError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    finally:
        client.close()
