"""``claimant serve``: the HTTP API (native /v1 and Placement-compatible) on uvicorn."""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import tempfile

import click

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


def default_store() -> str:
    from claimant.store import default_store_url

    url = default_store_url()
    os.makedirs(os.path.dirname("/" + url[len("sqlite:///") :]), exist_ok=True)
    return url


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
    default=None,
    help="An oslo.config file such as placement.conf; its [keystone_authtoken] "
    "section configures --auth keystone.",
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
    default=300.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a claim lives until it is confirmed (the scheduler's claim_ttl).",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve(
    store_url: str | None,
    host: str,
    port: int,
    auth_mode: str,
    token_file: str | None,
    config_file: str | None,
    workers: int,
    migrate: bool,
    expire_interval: float,
    policy_file: str | None,
    max_body_size: int,
    limit_concurrency: int,
    timeout_keep_alive: int,
    header_timeout: float,
    claim_ttl: float,
    access_log: bool,
    log_level: str,
) -> None:
    """Serve the native API under /v1 and the Placement-compatible API at /."""
    if auth_mode == "noauth2" and not is_loopback(host):
        raise click.UsageError(
            f"refusing to bind {host} with --auth noauth2 (anyone could act as admin); "
            "use --auth tokens --token-file FILE, or bind 127.0.0.1"
        )
    if auth_mode == "tokens" and not token_file:
        raise click.UsageError("--auth tokens needs --token-file FILE")
    if auth_mode == "keystone" and not config_file:
        raise click.UsageError("--auth keystone needs --config-file FILE ([keystone_authtoken])")
    from claimant.api.app import (
        ENV_AUTH,
        ENV_CLAIM_TTL,
        ENV_CONFIG_FILE,
        ENV_EXPIRE_INTERVAL,
        ENV_HOST,
        ENV_MAX_BODY,
        ENV_POLICY_FILE,
        ENV_STORE,
        ENV_TOKEN_FILE,
    )
    from claimant.api.auth import load_tokens
    from claimant.api.policy import load_policy
    from claimant.api.server import ENV_HEADER_TIMEOUT, PROTOCOL
    from claimant.store import open_store

    url = store_url or default_store()
    try:
        # Fail here, not in every worker.
        if token_file:
            load_tokens(token_file)
        if auth_mode == "keystone":
            from claimant.api.auth import AuthConfig

            AuthConfig.keystone(config_file or "")
        load_policy(policy_file)
        store = open_store(url)
        try:
            if migrate:
                version = store.migrate()
                click.echo(f"store {url}: schema version {version}", err=True)
        finally:
            store.close()
    except ClaimantError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc

    os.environ[ENV_STORE] = url
    os.environ[ENV_AUTH] = auth_mode
    os.environ[ENV_EXPIRE_INTERVAL] = str(expire_interval)
    os.environ[ENV_MAX_BODY] = str(max_body_size)
    os.environ[ENV_HOST] = host
    os.environ[ENV_HEADER_TIMEOUT] = str(header_timeout)
    os.environ[ENV_CLAIM_TTL] = str(claim_ttl)
    if token_file:
        os.environ[ENV_TOKEN_FILE] = os.path.abspath(token_file)
    if policy_file:
        os.environ[ENV_POLICY_FILE] = os.path.abspath(policy_file)
    if config_file:
        os.environ[ENV_CONFIG_FILE] = os.path.abspath(config_file)
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Workers are separate processes: metrics are summed through files.
        metrics_dir = tempfile.mkdtemp(prefix="claimant-metrics-")
        atexit.register(shutil.rmtree, metrics_dir, ignore_errors=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir

    import uvicorn

    uvicorn.run(
        "claimant.api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level=log_level,
        http=PROTOCOL,
        limit_concurrency=limit_concurrency,
        timeout_keep_alive=timeout_keep_alive,
        h11_max_incomplete_event_size=64 * 1024,
    )
