"""The ASGI application: native API under /v1, health and metrics at the root,
and the Placement-compatible API (when installed) mounted at "/" after them."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from claimant.api import openapi, ui
from claimant.api.auth import KEYSTONE, NOAUTH2, TOKENS, AuthConfig
from claimant.api.deadlines import (
    DEFAULT_READ_TIMEOUT,
    DEFAULT_WRITE_TIMEOUT,
    DeadlineMiddleware,
    Inflight,
)
from claimant.api.errors import install_error_handlers
from claimant.api.gate import AuthGate, TrustedHostMiddleware
from claimant.api.limits import DEFAULT_MAX_BODY, BodyLimitMiddleware
from claimant.api.metrics import Metrics, MetricsMiddleware
from claimant.api.policy import Policy, default_policy, load_policy
from claimant.api.routes import add_routes
from claimant.api.server import Shutdown, drain_on_signal
from claimant.scheduler import Scheduler, SchedulerConfig, health
from claimant.store import Store

log = logging.getLogger("claimant.api")

API_VERSION = "1.0"


# Native paths anyone may read: the API's description (a trailing "/" is a prefix).
PUBLIC_NATIVE = frozenset({"/openapi.json", openapi.DOCS, openapi.ASSETS + "/"})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


def _placement_app(
    store: Store, auth: AuthConfig, policy: Policy, max_body: int, extra: dict[str, Any]
) -> Any:
    try:
        module = importlib.import_module("claimant.api.placement")
    except ModuleNotFoundError as exc:
        if exc.name == "claimant.api.placement":
            return None
        raise
    factory = getattr(module, "create_placement_app", None)
    if factory is None:
        return None
    return factory(store, auth, policy=policy, max_body=max_body, **extra)


def create_app(
    store: Store,
    *,
    auth: AuthConfig,
    scheduler_config: SchedulerConfig | None = None,
    expire_interval: float | None = None,
    close_store: bool = False,
    schedule_concurrency: int | None = None,
    policy: Policy | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    trusted_hosts: frozenset[str] | None = None,
    request_timeout: float = DEFAULT_READ_TIMEOUT,
    schedule_timeout: float = DEFAULT_WRITE_TIMEOUT,
    shutdown: Shutdown | None = None,
    placement_options: dict[str, Any] | None = None,
) -> FastAPI:
    """Build the app around an open (and migrated) store.

    ``placement_options``: keyword arguments of ``create_placement_app``
    (``candidates``, ``cors_origins``), from Placement's config options.
    ``expire_interval``: seconds between ``store.expire_claims()`` sweeps (None:
    no sweep). ``close_store``: close the store when the app shuts down.
    ``schedule_concurrency``: requests scheduled at once in this process
    (default: the store's ``write_concurrency``). ``policy``: the rules of both APIs
    (default: ``claimant.api.policy.default_policy()``). ``max_body``: the
    largest request body in bytes (413 beyond). ``trusted_hosts``: the only
    Host header values answered (None: any). ``request_timeout``: the
    deadline of a GET, HEAD or OPTIONS; ``schedule_timeout``: of any other
    request (placements and writes); see ``claimant.api.deadlines``.
    ``shutdown``: how SIGTERM drains (``claimant.api.server.Shutdown``)."""
    policy = policy or default_policy()
    metrics = Metrics()
    scheduler = Scheduler(store, scheduler_config)
    metrics.watch_store(store, scheduler.config.heartbeat_timeout)
    if schedule_concurrency is None:
        # As many placements at once as the store has use for writers.
        schedule_concurrency = store.write_concurrency
    # Its own threads, not the shared pool: POST /v1/requests waiting for a
    # slot must not hold threads other routes need.
    executor = ThreadPoolExecutor(schedule_concurrency, thread_name_prefix="schedule")
    inflight = Inflight()
    lifespan = _lifespan(
        store, scheduler, inflight, shutdown or Shutdown(), sweep=expire_interval, close=close_store
    )
    app = FastAPI(
        title="claimant", openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan
    )
    native = _native_app()
    placement = _placement_app(store, auth, policy, max_body, placement_options or {})
    if placement is not None:
        # Added before the error handlers' middleware, so inside it.
        app.add_middleware(PlacementFirst, root=app, placement=placement)
    shared = dict(store=store, auth=auth, policy=policy, metrics=metrics, scheduler=scheduler)
    shared.update(schedule_executor=executor, inflight=inflight)
    for a in (app, native):
        for name, value in shared.items():
            setattr(a.state, name, value)
        install_error_handlers(a)
    # Outermost last: the body limit, then the caller, then FastAPI (which
    # reads and parses the body before any dependency runs).
    native.add_middleware(
        AuthGate, routes_of=native, auth=auth, policy=policy, public=PUBLIC_NATIVE
    )
    native.add_middleware(BodyLimitMiddleware, max_body=max_body)
    _add_root_routes(app, store, metrics)
    app.mount("/v1", native)
    ui.install(app)
    if placement is not None:
        # Placement clients use the root; it comes last so /v1, /ui, /healthz
        # and /metrics are never shadowed.
        app.mount("/", placement)
    _add_outer_middleware(
        app,
        metrics,
        inflight,
        unmatched="/*" if placement else "unmatched",
        timeouts=(request_timeout, schedule_timeout),
        trusted_hosts=trusted_hosts,
    )
    return app


def _add_outer_middleware(
    app: FastAPI,
    metrics: Metrics,
    inflight: Inflight,
    *,
    unmatched: str,
    timeouts: tuple[float, float],
    trusted_hosts: frozenset[str] | None,
) -> None:
    """Deadlines, then metrics, then the Host check, outermost last.
    ``timeouts``: (a read's, any other request's)."""
    app.add_middleware(
        DeadlineMiddleware,
        metrics=metrics,
        inflight=inflight,
        read_timeout=timeouts[0],
        write_timeout=timeouts[1],
        unmatched=unmatched,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics, unmatched=unmatched)
    if trusted_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, hosts=trusted_hosts)


def _lifespan(
    store: Store,
    scheduler: Scheduler,
    inflight: Inflight,
    shutdown: Shutdown,
    *,
    sweep: float | None,
    close: bool,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """The app's lifespan: the expiry sweep every ``sweep`` seconds while it
    runs; at shutdown, what still runs is cut and waited for, then the store
    closes (``close``)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        inflight.open()
        if sweep:
            timeout = scheduler.config.heartbeat_timeout
            task = asyncio.create_task(_sweep(store, sweep, timeout))
        try:
            with drain_on_signal(shutdown, inflight.cancel_all):
                yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            # Whatever still runs stops at its next check: placements give
            # their claims back and record why, before the store closes.
            if inflight.cancel_all() and not await inflight.wait_idle(shutdown.final_wait):
                log.warning("%d request(s) still running at shutdown", len(inflight))
            if close:
                store.close()

    return lifespan


def _native_app() -> FastAPI:
    native = FastAPI(
        title="claimant native API",
        version=API_VERSION,
        description="Providers, inventories, requests and claims. See docs/api.md.",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    add_routes(native)
    openapi.install(native, "/v1")
    return native


def _add_root_routes(app: FastAPI, store: Store, metrics: Metrics) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        try:
            await run_in_threadpool(store.list_requests, limit=1)
        except Exception as exc:  # any failure to read means not healthy
            log.warning("health check failed: %s", exc)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint(request: Request) -> Response:
        data, content_type = metrics.render()
        return Response(data, media_type=content_type)

    @app.get("/v1", include_in_schema=False)
    async def version() -> JSONResponse:
        return JSONResponse({"version": API_VERSION, "openapi": "/v1/openapi.json"})


class PlacementFirst:
    """Sends what the root's own routes do not match straight to the
    Placement app mounted last at "/", as the router would, but past
    FastAPI's exception middleware, exit stack and router: each adds a
    coroutine, and most a wrapper of every ``send``, which came to a tenth of
    a Nova-flow placement's server CPU. The Placement app answers its own
    errors; one it raises still meets ``CatchAllMiddleware`` outside."""

    def __init__(self, app: ASGIApp, *, root: FastAPI, placement: ASGIApp) -> None:
        self.app = app
        self.root = root
        self.placement = placement

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            *before, last = self.root.router.routes
            if (
                getattr(last, "app", None) is self.placement
                and not any(r.matches(scope)[0] is not Match.NONE for r in before)
                and not _under_a_mount(scope["path"], before)
            ):
                _, child = last.matches(scope)
                scope.update(child)
                await self.placement(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _under_a_mount(path: str, routes: list[BaseRoute]) -> bool:
    # A mount's pattern ("^/v1/(?P<path>.*)$") stops at a newline: a
    # percent-encoded one in a /v1 path matches no route, and must get the
    # root's (native) 404, not Placement's.
    return any(isinstance(r, Mount) and path.startswith(r.path + "/") for r in routes)


async def _sweep(store: Store, interval: float, heartbeat_timeout: float | None) -> None:
    """Expired claims out, and an ``agent_stale`` event for each host whose
    agent went stale since the last sweep (scheduler.health.record_stale)."""
    seen_until: float | None = None
    while True:
        await asyncio.sleep(interval)
        try:
            n = await run_in_threadpool(store.expire_claims)
            if n:
                log.info("expired %d claims", n)
        except Exception:  # a failed sweep must not stop the next one
            log.exception("claim expiry sweep failed")
        if heartbeat_timeout is None:
            continue
        until = store.clock() - heartbeat_timeout
        after = seen_until if seen_until is not None else until - interval
        try:
            await run_in_threadpool(health.record_stale, store, after, until, heartbeat_timeout)
            seen_until = until
        except Exception:
            log.exception("stale agent check failed")


# Environment read by ``app_from_env`` (uvicorn workers import the app by name).
ENV_STORE = "CLAIMANT_STORE"
ENV_AUTH = "CLAIMANT_AUTH"
ENV_TOKEN_FILE = "CLAIMANT_TOKEN_FILE"
ENV_CONFIG_FILE = "CLAIMANT_CONFIG_FILE"
ENV_CANDIDATES = "CLAIMANT_CANDIDATE_OPTIONS"
ENV_CORS_ORIGINS = "CLAIMANT_CORS_ORIGINS"
ENV_EXPIRE_INTERVAL = "CLAIMANT_EXPIRE_INTERVAL"
ENV_POLICY_FILE = "CLAIMANT_POLICY_FILE"
ENV_MAX_BODY = "CLAIMANT_MAX_BODY"
ENV_HOST = "CLAIMANT_HOST"
ENV_CLAIM_TTL = "CLAIMANT_CLAIM_TTL"
ENV_REQUEST_TIMEOUT = "CLAIMANT_REQUEST_TIMEOUT"
ENV_SCHEDULE_TIMEOUT = "CLAIMANT_SCHEDULE_TIMEOUT"
# The scheduler's whole config as JSON (claimant.cli.tunables.ENV_SCHEDULER).
ENV_SCHEDULER = "CLAIMANT_SCHEDULER_CONFIG"


def auth_from_env() -> AuthConfig:
    mode = os.environ.get(ENV_AUTH, NOAUTH2)
    if mode == TOKENS:
        return AuthConfig.from_token_file(os.environ[ENV_TOKEN_FILE])
    if mode == KEYSTONE:
        return AuthConfig.keystone(os.environ[ENV_CONFIG_FILE])
    # AuthConfig refuses an unknown mode (a typo must not mean noauth2).
    return AuthConfig(mode)


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: each worker process opens its own store."""
    from claimant.store import open_store

    auth = auth_from_env()
    policy = load_policy(os.environ.get(ENV_POLICY_FILE) or None)
    trusted = None
    if auth.mode == NOAUTH2:
        host = os.environ.get(ENV_HOST, "127.0.0.1").lower()
        trusted = LOOPBACK_HOSTS | {f"[{host}]" if ":" in host else host}
    store = open_store(os.environ[ENV_STORE])
    interval = float(os.environ.get(ENV_EXPIRE_INTERVAL, "0")) or None
    ttl = os.environ.get(ENV_CLAIM_TTL)
    config = None
    if os.environ.get(ENV_SCHEDULER):
        # Set by ``claimant serve`` from its flags, variables and config file.
        config = SchedulerConfig(**json.loads(os.environ[ENV_SCHEDULER]))
    elif ttl:
        config = SchedulerConfig(claim_ttl=float(ttl))
    return create_app(
        store,
        auth=auth,
        expire_interval=interval,
        close_store=True,
        policy=policy,
        max_body=int(os.environ.get(ENV_MAX_BODY, DEFAULT_MAX_BODY)),
        trusted_hosts=trusted,
        scheduler_config=config,
        request_timeout=float(os.environ.get(ENV_REQUEST_TIMEOUT, DEFAULT_READ_TIMEOUT)),
        schedule_timeout=float(os.environ.get(ENV_SCHEDULE_TIMEOUT, DEFAULT_WRITE_TIMEOUT)),
        shutdown=Shutdown.from_env(),
        placement_options=_placement_options_from_env(),
    )


def _placement_options_from_env() -> dict[str, Any]:
    from claimant.api.placement.options import CandidateOptions

    out: dict[str, Any] = {}
    raw = os.environ.get(ENV_CANDIDATES)
    if raw:
        out["candidates"] = CandidateOptions(**json.loads(raw))
    origins = [o for o in os.environ.get(ENV_CORS_ORIGINS, "").split(",") if o]
    if origins:
        out["cors_origins"] = origins
    return out
