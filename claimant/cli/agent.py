"""``claimant agent``: run the compute-node agent, or read one's state."""

from __future__ import annotations

import dataclasses
import json

import click

from claimant import logs
from claimant.cli.agent_auth import (
    DEFAULT_MAX_BODY,
    MIN_MAX_BODY,
    one_token,
    refuse_open_bind,
    token_file_option,
    token_option,
)
from claimant.cli.errors import error_text
from claimant.cli.tunables import config_file_option, log_options
from claimant.model.errors import ClaimantError


@click.group()
def agent() -> None:
    """The compute-node agent (register, heartbeat, build on claims)."""


def _announce(conductor: str, url: str, providers: list[str], token: str | None) -> None:
    from claimant.http_client import JsonClient

    with JsonClient(conductor, token=token, timeout=10) as http:
        reply = http.request("POST", "/v1/agents", json={"url": url, "providers": providers})
    if not reply.ok:
        err = reply.error
        raise ClaimantError(f"the conductor refused: {err.code}: {err.message}")


def _url(value: str | None, what: str) -> str | None:
    from claimant.agent.guard import check_service_url

    if value is None:
        return None
    try:
        return check_service_url(value, what)
    except ClaimantError as exc:
        raise click.BadParameter(exc.message, param_hint=f"--{what}") from None


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
@token_option
@token_file_option
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where the agent records its builds (default: [agent] state_file of the config).",
)
@click.option(
    "--max-body-size",
    default=DEFAULT_MAX_BODY,
    show_default=True,
    type=click.IntRange(MIN_MAX_BODY),
    help="Largest request body in bytes; larger ones are answered 413 unread.",
)
@click.option(
    "--graceful-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.5),
    help="Seconds SIGTERM lets requests in flight finish before the process exits.",
)
@log_options
@config_file_option("agent", scheduler=False)
def agent_run(
    config_path: str,
    store_url: str,
    host: str,
    port: int,
    conductor: str | None,
    advertise: str | None,
    token: str | None,
    token_file: str | None,
    state_file: str | None,
    max_body_size: int,
    graceful_timeout: float,
    log_level: str,
    log_format: str,
    config_file: str | None,
) -> None:
    """Register the provider, heartbeat, resync, and serve build/destroy.

    The token is the one callers must present here and the one this agent
    registers with at the conductor (which calls back with it)."""
    token = one_token(token, token_file)
    refuse_open_bind(host, token is not None)
    from claimant.agent import Agent, AgentConfig
    from claimant.agent.http import create_agent_app
    from claimant.store import open_store

    url = _url(advertise, "advertise") or f"http://{host}:{port}"
    conductor = _url(conductor, "conductor")
    try:
        config = AgentConfig.load(config_path)
        if state_file is not None:
            config = dataclasses.replace(config, state_file=state_file)
    except ClaimantError as exc:
        raise click.BadParameter(exc.message, param_hint="--config") from None
    log_config = logs.configure(log_format, log_level)
    try:
        store = open_store(store_url)
        hook = None
        if conductor:

            def hook() -> None:
                _announce(conductor, url, [a.uuid], token)

        a = Agent(store, config, announce=hook)
        a.start()
    except ClaimantError as exc:
        raise click.ClickException(error_text(exc)) from exc
    click.echo(f"agent {a.name} ({a.uuid}) serving on {url}", err=True)
    import uvicorn

    from claimant.api.server import Shutdown

    try:
        app = create_agent_app(a, token=token, max_body=max_body_size)
        # uvicorn alone would wait for requests in flight for ever.
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            log_config=log_config,
            # uvicorn annotates an int but waits with asyncio.wait_for: a float works.
            timeout_graceful_shutdown=Shutdown(graceful_timeout).uvicorn_timeout,  # type: ignore[arg-type]
        )
    finally:
        a.stop()
        store.close()


@agent.command("state")
@click.option("--url", default="http://127.0.0.1:8790", show_default=True)
@token_option
@token_file_option
def agent_state(url: str, token: str | None, token_file: str | None) -> None:
    """Print an agent's provider, usages, instances and last resync (JSON)."""
    from claimant.agent.http import HttpAgentClient

    token = one_token(token, token_file)

    client = HttpAgentClient(url, token=token, timeout=30)
    try:
        click.echo(json.dumps(client.state(), indent=2, sort_keys=True))
    except ClaimantError as exc:
        raise click.ClickException(error_text(exc)) from exc
    finally:
        client.close()
