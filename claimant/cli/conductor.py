"""``claimant conductor``: serve the conductor, submit builds, follow them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

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
from claimant.cli.errors import CliError, error_text
from claimant.cli.output import Out, out_of, output_options
from claimant.cli.requests import outcome, render_request
from claimant.cli.tunables import (
    config_file_option,
    log_options,
    scheduler_config,
    scheduler_options,
)
from claimant.http_client import JsonClient, Reply, Unreachable
from claimant.model.errors import ClaimantError

DEFAULT_URL = "http://127.0.0.1:8779"


@click.group()
def conductor() -> None:
    """The conductor: request -> scheduler -> agent, with reschedules."""


@conductor.command("serve")
@click.option("--store", "store_url", envvar="CLAIMANT_STORE", required=True, help="Store URL.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8779, show_default=True, type=click.IntRange(1, 65535))
@click.option("--max-attempts", default=3, show_default=True, type=click.IntRange(1, 100))
@click.option(
    "--claim-ttl",
    envvar="CLAIMANT_CLAIM_TTL",
    default=300.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a claim lives until its agent confirms it (the scheduler's claim_ttl).",
)
@click.option(
    "--token-file",
    envvar="CLAIMANT_CONDUCTOR_TOKEN_FILE",
    type=click.Path(dir_okay=False),
    default=None,
    help="JSON/YAML tokens -> role, user_id, providers (claimant serve's format "
    "plus the providers a token alone may register), mode 0600.",
)
@token_option
@click.option(
    "--agent-grace",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="After start-up, seconds a build waits for its host's agent to announce itself "
    "(agents announce with every heartbeat; registrations are kept in memory only).",
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
@scheduler_options
@config_file_option("conductor", scheduler=True)
def conductor_serve(
    store_url: str,
    host: str,
    port: int,
    max_attempts: int,
    claim_ttl: float,
    token_file: str | None,
    token: str | None,
    agent_grace: float,
    max_body_size: int,
    graceful_timeout: float,
    log_level: str,
    log_format: str,
    host_subset_size: int,
    heartbeat_timeout: float,
    weigher: tuple[str, ...],
    filter_: tuple[str, ...],
    plugin_option: tuple[str, ...],
    config_file: str | None,
) -> None:
    """Serve /v1/builds and /v1/agents."""
    if token and token_file:
        raise click.UsageError("give --token or --token-file, not both")
    refuse_open_bind(host, bool(token or token_file))
    from claimant.agent.guard import ServiceAuth
    from claimant.conductor import AgentDirectory, Conductor
    from claimant.conductor.http import create_conductor_app
    from claimant.scheduler import Scheduler
    from claimant.store import open_store

    try:
        auth = ServiceAuth.from_file(token_file) if token_file else ServiceAuth.shared(token)
    except ClaimantError as exc:
        raise click.BadParameter(exc.message, param_hint="--token-file") from None
    log_config = logs.configure(log_format, log_level)
    config = scheduler_config(
        claim_ttl=claim_ttl,
        host_subset_size=host_subset_size,
        heartbeat_timeout=heartbeat_timeout,
        weigher=weigher,
        filter_=filter_,
        plugin_option=plugin_option,
    )
    try:
        store = open_store(store_url)
        store.migrate()
        scheduler = Scheduler(store, config)
        agents = AgentDirectory(grace=agent_grace)
        c = Conductor(store, scheduler, agents, max_attempts=max_attempts)
    except ClaimantError as exc:
        raise click.ClickException(error_text(exc)) from exc
    import uvicorn

    from claimant.api.server import Shutdown

    try:
        app = create_conductor_app(
            c, auth=auth, max_body=max_body_size, shutdown=Shutdown(graceful_timeout)
        )
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
        store.close()


def _call(url: str, token: str | None, out: Out, method: str, path: str, **kw: Any) -> Any:
    reply = _request(url, token, out, method, path, **kw)
    if not reply.ok:
        _raise_for(reply, out)
    return reply.data


def _request(url: str, token: str | None, out: Out, method: str, path: str, **kw: Any) -> Reply:
    try:
        with JsonClient(url, token=token, timeout=600) as http:
            return http.request(method, path, **kw)
    except Unreachable as exc:
        raise CliError(
            "unreachable",
            f"cannot reach {exc}",
            fix="start `claimant conductor serve`, or point --url / $CLAIMANT_CONDUCTOR at it",
            as_json=out.machine,
        ) from None


def _raise_for(reply: Reply, out: Out) -> NoReturn:
    err = reply.error
    raise CliError(err.code, err.message, as_json=out.machine)


def _failed_build_uuid(reply: Reply) -> str | None:
    """The request a waited-for build that failed names (a 409, never a 2xx)."""
    if reply.status != 409:
        return None
    uuid = reply.error.details.get("request_uuid")
    return str(uuid) if uuid else None


def _render(data: dict[str, Any], out: Out) -> None:
    # The conductor answers a request's record, as GET /v1/requests/{uuid} does.
    out.emit(data, lambda d: render_request(out, d, {}))


def _fail_if_failed(data: dict[str, Any], out: Out) -> None:
    """A build that failed exits non-zero, after its record was printed."""
    if data.get("status") != "failed":
        return
    _, reason = outcome(data)
    reason = reason or "the build failed"
    code = "no_valid_host" if "no valid host" in reason else "build_failed"
    # On a terminal the reason is already on screen, in the record.
    raise CliError(
        code, reason if out.machine else f"request {data['uuid']} failed", as_json=out.machine
    )


_url = click.option("--url", envvar="CLAIMANT_CONDUCTOR", default=DEFAULT_URL, show_default=True)


def _token(f: Callable[..., None]) -> Callable[..., None]:
    return token_option(token_file_option(f))


def _json(f: Callable[..., None]) -> Callable[..., None]:
    return output_options(f)


@conductor.command("build")
@_url
@_token
@_json
@click.option("--vcpus", type=click.IntRange(1), required=True)
@click.option("--memory-mb", type=click.IntRange(1), required=True)
@click.option("--disk-gb", type=click.IntRange(0), default=0)
@click.option("--count", type=click.IntRange(1, 1000), default=1, show_default=True)
@click.option("--wait/--no-wait", default=True, show_default=True)
def conductor_build(
    url: str,
    token: str | None,
    token_file: str | None,
    as_json: bool,
    output: str | None,
    vcpus: int,
    memory_mb: int,
    disk_gb: int,
    count: int,
    wait: bool,
) -> None:
    """Build COUNT instances of a flavor."""
    token = one_token(token, token_file)
    out = out_of(as_json, output)
    body = {"flavor": {"vcpus": vcpus, "memory_mb": memory_mb, "disk_gb": disk_gb}, "count": count}
    params = {"wait": str(wait).lower()}
    reply = _request(url, token, out, "POST", "/v1/builds", json=body, params=params)
    failed = _failed_build_uuid(reply)
    if failed is not None:
        # The 409 carries only the reason; the record tells the whole story.
        data = _call(url, token, out, "GET", f"/v1/builds/{failed}")
    elif not reply.ok:
        _raise_for(reply, out)
    else:
        data = reply.data
    _render(data, out)
    _fail_if_failed(data, out)


@conductor.command("show")
@_url
@_token
@_json
@click.argument("uuid")
def conductor_show(
    url: str,
    token: str | None,
    token_file: str | None,
    as_json: bool,
    output: str | None,
    uuid: str,
) -> None:
    """A request's status, placements and history."""
    token = one_token(token, token_file)
    out = out_of(as_json, output)
    _render(_call(url, token, out, "GET", f"/v1/builds/{uuid}"), out)


@conductor.command("destroy")
@_url
@_token
@_json
@click.argument("uuid")
def conductor_destroy(
    url: str,
    token: str | None,
    token_file: str | None,
    as_json: bool,
    output: str | None,
    uuid: str,
) -> None:
    """Destroy a request's instances and free their allocations."""
    token = one_token(token, token_file)
    out = out_of(as_json, output)
    _render(_call(url, token, out, "DELETE", f"/v1/builds/{uuid}"), out)
