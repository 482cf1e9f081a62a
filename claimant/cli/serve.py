"""``claimant serve``: the HTTP API (native /v1 and Placement-compatible) on uvicorn."""

from __future__ import annotations

import atexit
import ipaddress
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

import click

from claimant import logs
from claimant.cli.errors import error_text
from claimant.cli.tunables import log_options, scheduler_config, scheduler_options, to_env
from claimant.model.errors import ClaimantError

AUTH_MODES = ("noauth2", "tokens", "keystone")
MIB = 1024 * 1024


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname: it could resolve to anything


def _read_config_file(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Load the file into the command's defaults (flags and environment
    variables still win), and say once what in it claimant does not use."""
    if value is None:
        return None
    from claimant.cli import settings

    try:
        loaded = settings.load(value)
    except ClaimantError as exc:
        raise click.BadParameter(exc.message) from exc
    ctx.default_map = {**(ctx.default_map or {}), **loaded.serve}
    if loaded.ignored:
        click.echo(
            f"{value}: not used by claimant: {', '.join(loaded.ignored)}",
            err=True,
        )
    return value


def default_store() -> str:
    # The store makes its own directory when it first opens its file.
    from claimant.store import default_store_url

    return default_store_url()


@click.command()
@click.option(
    "--store",
    "store_url",
    envvar="CLAIMANT_STORE",
    default=None,
    help="Store URL (sqlite:///path.db or cassandra://h1,h2/keyspace). "
    "Default: an SQLite file in the user's data directory.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8778, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--auth",
    "auth_mode",
    type=click.Choice(AUTH_MODES),
    default="noauth2",
    show_default=True,
    help="noauth2 trusts the token (loopback only); tokens: a token file; "
    "keystone: Keystone tokens ([keystone_authtoken] in --config-file).",
)
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="JSON/YAML file of tokens and roles (with --auth tokens).",
)
@click.option(
    "--config-file",
    type=click.Path(exists=True, dir_okay=False),
    envvar="CLAIMANT_CONFIG_FILE",
    default=None,
    is_eager=True,
    callback=_read_config_file,
    help="A placement.conf (read with Placement's meanings, [keystone_authtoken] "
    "included) or a claimant.toml; flags and environment variables win over it. "
    "See: claimant config show.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="uvicorn worker processes.",
)
@click.option(
    "--migrate/--no-migrate",
    default=True,
    show_default=True,
    help="Create or upgrade the store schema before serving.",
)
@click.option(
    "--expire-interval",
    envvar="CLAIMANT_EXPIRE_INTERVAL",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds between expired-claim sweeps (0: off).",
)
@click.option(
    "--policy-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="JSON/YAML file of policy rules overriding the defaults (Placement's format).",
)
@click.option(
    "--max-body-size",
    default=MIB,
    show_default=True,
    type=click.IntRange(1024),
    help="Largest request body in bytes; larger ones are answered 413 unread.",
)
@click.option(
    "--limit-concurrency",
    default=1000,
    show_default=True,
    type=click.IntRange(1),
    help="Connections and tasks per worker beyond which requests get 503.",
)
@click.option(
    "--timeout-keep-alive",
    default=5,
    show_default=True,
    type=click.IntRange(1),
    help="Seconds an idle kept-alive connection stays open.",
)
@click.option(
    "--header-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds a client has to send a request's line and headers.",
)
@click.option(
    "--claim-ttl",
    envvar="CLAIMANT_CLAIM_TTL",
    default=300.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a claim lives until it is confirmed (the scheduler's claim_ttl).",
)
@click.option(
    "--request-timeout",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a GET, HEAD or OPTIONS request may run; past it: 503 deadline_exceeded.",
)
@click.option(
    "--schedule-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a placement (POST /v1/requests) or any other write may run; "
    "past it: 503 deadline_exceeded, its claims given back.",
)
@click.option(
    "--graceful-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.5),
    help="Seconds SIGTERM lets requests in flight finish (the last part of it: "
    "stop and roll back) before the process exits.",
)
@click.option(
    "--max-allocation-candidates",
    default=-1,
    show_default=True,
    type=click.IntRange(min=-1),
    help="Placement's option: candidates generated per request at most (-1: no cap).",
)
@click.option(
    "--candidate-strategy",
    type=click.Choice(["breadth-first", "depth-first"]),
    default="breadth-first",
    show_default=True,
    help="Placement's allocation_candidates_generation_strategy: one candidate per "
    "host in turn, or every candidate of a host before the next.",
)
@click.option(
    "--randomize-candidates/--no-randomize-candidates",
    default=False,
    show_default=True,
    help="Placement's randomize_allocation_candidates: with a limit, a random sample.",
)
@click.option(
    "--cors-origin",
    multiple=True,
    help="Origins allowed to call the Placement API from a browser (repeat).",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True)
@log_options
@scheduler_options
def serve(**given: Any) -> None:
    """Serve the native API under /v1 and the Placement-compatible API at /."""
    o = ServeOptions(**given)
    _check_auth(o)
    if o.max_allocation_candidates == 0:
        raise click.UsageError("--max-allocation-candidates: -1 (no cap) or a positive number")
    url = o.store_url or default_store()
    # Before the store is opened: its warnings are log lines too (uvicorn
    # sets the same configuration up again in each worker).
    logs.configure(o.log_format, o.log_level)
    _check_and_migrate(o, url)
    _export_env(o, url)
    if o.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Workers are separate processes: metrics are summed through files.
        metrics_dir = tempfile.mkdtemp(prefix="claimant-metrics-")
        atexit.register(shutil.rmtree, metrics_dir, ignore_errors=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    _run_uvicorn(o)


@dataclass(frozen=True)
class ServeOptions:
    """``serve``'s options, as click parses them (one field per option)."""

    store_url: str | None
    host: str
    port: int
    auth_mode: str
    token_file: str | None
    config_file: str | None
    workers: int
    migrate: bool
    expire_interval: float
    policy_file: str | None
    max_body_size: int
    limit_concurrency: int
    timeout_keep_alive: int
    header_timeout: float
    claim_ttl: float
    request_timeout: float
    schedule_timeout: float
    graceful_timeout: float
    max_allocation_candidates: int
    candidate_strategy: str
    randomize_candidates: bool
    cors_origin: tuple[str, ...]
    access_log: bool
    log_level: str
    log_format: str
    host_subset_size: int
    heartbeat_timeout: float
    weigher: tuple[str, ...]
    filter_: tuple[str, ...]
    plugin_option: tuple[str, ...]


def _check_auth(o: ServeOptions) -> None:
    if o.auth_mode == "noauth2" and not is_loopback(o.host):
        raise click.UsageError(
            f"refusing to bind {o.host} with --auth noauth2 (anyone could act as admin); "
            "use --auth tokens --token-file FILE, or bind 127.0.0.1"
        )
    if o.auth_mode == "tokens" and not o.token_file:
        raise click.UsageError("--auth tokens needs --token-file FILE")
    if o.auth_mode == "keystone" and not o.config_file:
        raise click.UsageError("--auth keystone needs --config-file FILE ([keystone_authtoken])")


def _check_and_migrate(o: ServeOptions, url: str) -> None:
    """Fail here, not in every worker: tokens, Keystone's config, the policy
    file and the store; then migrate the store (``--migrate``)."""
    from claimant.api.auth import AuthConfig, load_tokens
    from claimant.api.policy import load_policy
    from claimant.store import open_store

    try:
        if o.token_file:
            load_tokens(o.token_file)
        if o.auth_mode == "keystone":
            AuthConfig.keystone(o.config_file or "")
        load_policy(o.policy_file)
        store = open_store(url)
        try:
            if o.migrate:
                version = store.migrate()
                click.echo(f"store {url}: schema version {version}", err=True)
        finally:
            store.close()
    except ClaimantError as exc:
        raise click.ClickException(error_text(exc)) from exc


def _export_env(o: ServeOptions, url: str) -> None:
    """What each uvicorn worker reads (``claimant.api.app.app_from_env``)."""
    from claimant.api import app
    from claimant.api.server import ENV_GRACEFUL_TIMEOUT, ENV_HEADER_TIMEOUT

    config = scheduler_config(
        claim_ttl=o.claim_ttl,
        host_subset_size=o.host_subset_size,
        heartbeat_timeout=o.heartbeat_timeout,
        weigher=o.weigher,
        filter_=o.filter_,
        plugin_option=o.plugin_option,
    )
    candidates = {
        "max_allocation_candidates": o.max_allocation_candidates,
        "allocation_candidates_generation_strategy": o.candidate_strategy,
        "randomize_allocation_candidates": o.randomize_candidates,
    }
    env = {
        app.ENV_STORE: url,
        app.ENV_AUTH: o.auth_mode,
        app.ENV_EXPIRE_INTERVAL: str(o.expire_interval),
        app.ENV_MAX_BODY: str(o.max_body_size),
        app.ENV_HOST: o.host,
        ENV_HEADER_TIMEOUT: str(o.header_timeout),
        app.ENV_CLAIM_TTL: str(o.claim_ttl),
        app.ENV_SCHEDULER: to_env(config),
        app.ENV_REQUEST_TIMEOUT: str(o.request_timeout),
        app.ENV_SCHEDULE_TIMEOUT: str(o.schedule_timeout),
        ENV_GRACEFUL_TIMEOUT: str(o.graceful_timeout),
        app.ENV_CANDIDATES: json.dumps(candidates),
        app.ENV_CORS_ORIGINS: ",".join(o.cors_origin),
    }
    for name, path in (
        (app.ENV_TOKEN_FILE, o.token_file),
        (app.ENV_POLICY_FILE, o.policy_file),
        (app.ENV_CONFIG_FILE, o.config_file),
    ):
        if path:
            env[name] = os.path.abspath(path)
    os.environ.update(env)


def _run_uvicorn(o: ServeOptions) -> None:
    import uvicorn

    from claimant.api.server import PROTOCOL, Shutdown

    uvicorn.run(
        "claimant.api.app:app_from_env",
        factory=True,
        host=o.host,
        port=o.port,
        workers=o.workers,
        access_log=o.access_log,
        log_level=o.log_level,
        log_config=logs.log_config(o.log_format, o.log_level),
        http=PROTOCOL,
        limit_concurrency=o.limit_concurrency,
        timeout_keep_alive=o.timeout_keep_alive,
        h11_max_incomplete_event_size=64 * 1024,
        # uvicorn annotates an int but waits with asyncio.wait_for: a float works.
        timeout_graceful_shutdown=Shutdown(o.graceful_timeout).uvicorn_timeout,  # type: ignore[arg-type]
    )
