"""The conductor's HTTP surface (docs/loop.md has the messages).

POST   /v1/builds[?wait=true]   a request body as POST /v1/requests takes;
                                202 + the pending request (built in the
                                background), or with wait=true 201 + the
                                final request (active or failed)
GET    /v1/builds/{uuid}        the persisted request with its placements
DELETE /v1/builds/{uuid}        destroy every instance, free the allocations
POST   /v1/agents               {"url": ..., "providers": [uuid, ...]}: an
                                agent announces where it listens
GET    /v1/agents               provider uuid -> agent url

With tokens configured every route needs one (``claimant.agent.guard``, checked
before the body is read). A provider the token file lists for a token is
registered by that token only; any other belongs to the identity that
registered it first. An admin may register any (docs/loop.md, "Security").
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from claimant.agent import observe
from claimant.agent.guard import (
    DEFAULT_MAX_BODY,
    Caller,
    ServiceAuth,
    ServiceGate,
    caller_of,
    check_service_url,
    json_body,
)
from claimant.agent.http import HttpAgentClient
from claimant.api.auth import Context, Forbidden
from claimant.api.errors import install_error_handlers
from claimant.api.requests import build_request, request_body
from claimant.api.schemas.requests import RequestCreate
from claimant.api.server import Shutdown
from claimant.conductor.conductor import Conductor, run_in_background
from claimant.model import (
    Conflict,
    InvalidInput,
    NotFound,
    NoValidHost,
    RequestStatus,
    normalize_uuid,
)
from claimant.model.codec import request_to_dict
from claimant.model.errors import BuildFailed
from claimant.scheduler import lifecycle
from claimant.store import Store

MAX_AGENT_PROVIDERS = 256


def create_conductor_app(
    conductor: Conductor,
    *,
    auth: ServiceAuth | None = None,
    token: str | None = None,
    agent_token: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    workers: int = 4,
    shutdown: Shutdown | None = None,
) -> FastAPI:
    """``auth``: the tokens callers and agents present (a token file), or
    ``token``: one shared token (neither: open, for loopback only). The
    conductor calls an agent with ``agent_token`` if given, else with the
    token the agent registered with."""
    if auth is not None and token is not None:
        raise InvalidInput("give the conductor a token file or a shared token, not both")
    service_auth = auth if auth is not None else ServiceAuth.shared(token)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="conductor-request")

    shutdown = shutdown or Shutdown()

    app = FastAPI(
        title="claimant conductor",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan(conductor, pool, shutdown),
    )
    install_error_handlers(app)
    app.add_middleware(ServiceGate, auth=service_auth, max_body=max_body)
    app.state.conductor = conductor
    app.state.max_body = max_body
    store = conductor.store
    observe.install(
        app, lambda: store.list_requests(limit=1), lambda: observe.conductor_samples(conductor)
    )
    _build_routes(app, conductor, pool)
    _agent_routes(app, conductor, service_auth, agent_token)
    return app


def _lifespan(
    conductor: Conductor, pool: ThreadPoolExecutor, shutdown: Shutdown
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # Builds not started are dropped (their records stay pending); those
        # running get what is left of the graceful timeout to finish. One cut
        # by the exit is settled as a lost reply is: its claims expire, and
        # the agent's build is idempotent.
        pool.shutdown(wait=False, cancel_futures=True)
        # A daemon thread joins the pool: asyncio's default executor would be
        # waited for at exit, however long the build.
        joined = threading.Event()

        def join() -> None:
            pool.shutdown(wait=True)
            joined.set()

        threading.Thread(target=join, daemon=True).start()
        until = time.monotonic() + shutdown.final_wait
        while not joined.is_set() and time.monotonic() < until:
            await asyncio.sleep(0.02)
        conductor.close()

    return lifespan


def _build_routes(app: FastAPI, conductor: Conductor, pool: ThreadPoolExecutor) -> None:
    """POST, GET and DELETE /v1/builds."""
    store = conductor.store
    running: set[str] = set()
    running_lock = threading.Lock()

    def done(uuid: str) -> None:
        with running_lock:
            running.discard(uuid)

    def _body(uuid: str) -> dict[str, Any]:
        req = store.get_request(uuid)
        return request_body(req, store.list_claims(request_uuid=uuid))

    @app.post("/v1/builds")
    async def create_build(body: RequestCreate, wait: bool = False) -> Response:
        req = await run_in_threadpool(build_request, body, Context(), store)
        headers = {"Location": f"/v1/builds/{req.uuid}"}
        # Created insert-if-absent either way: a second POST with the same
        # uuid is a 409 (AlreadyExists) and never rewrites the first.
        if wait:
            result = await run_in_threadpool(conductor.build, req)
            final = result.request
            if final.status == RequestStatus.FAILED:
                # Never a 2xx for a build that failed; the record keeps the story.
                cls = NoValidHost if result.no_valid_host else BuildFailed
                raise cls(
                    f"request {final.uuid} failed: {final.reason}",
                    request_uuid=final.uuid,
                    reason=final.reason,
                )
            return JSONResponse(await run_in_threadpool(_body, req.uuid), 201, headers=headers)
        # Recorded before answering, so a GET right after the 202 finds it.
        pending = await run_in_threadpool(lifecycle.create, store, req, event={"event": "accepted"})
        with running_lock:
            running.add(req.uuid)
        run_in_background(pool, conductor, pending, done)
        return JSONResponse(request_to_dict(pending), 202, headers=headers)

    @app.get("/v1/builds/{uuid}")
    async def get_build(uuid: str) -> dict[str, Any]:
        out: dict[str, Any] = await run_in_threadpool(_body, normalize_uuid(uuid))
        return out

    @app.delete("/v1/builds/{uuid}")
    async def delete_build(uuid: str) -> dict[str, Any]:
        uuid = normalize_uuid(uuid)
        with running_lock:
            busy = uuid in running
        if busy:
            raise Conflict(f"request {uuid} is still being built; delete it when it settles")
        await run_in_threadpool(conductor.destroy, uuid)
        out: dict[str, Any] = await run_in_threadpool(_body, uuid)
        return out


def _agent_routes(
    app: FastAPI, conductor: Conductor, service_auth: ServiceAuth, agent_token: str | None
) -> None:
    """POST and GET /v1/agents."""
    store = conductor.store
    register_lock = threading.Lock()

    @app.post("/v1/agents", status_code=204)
    async def register_agent(request: Request) -> Response:
        data = await json_body(request)
        if not isinstance(data, dict) or "url" not in data:
            raise InvalidInput('an agent announces {"url": ..., "providers": [uuid, ...]}')
        url = check_service_url(data["url"])
        providers = data.get("providers")
        if not isinstance(providers, list) or not providers:
            raise InvalidInput("providers must be a non-empty list of uuids", field="providers")
        if len(providers) > MAX_AGENT_PROVIDERS:
            # Each may cost a store read (check_listed); an agent has a few.
            raise InvalidInput(
                f"an agent registers at most {MAX_AGENT_PROVIDERS} providers",
                field="providers",
                max=MAX_AGENT_PROVIDERS,
            )
        uuids = [normalize_uuid(p, "providers") for p in providers]
        caller = caller_of(request.scope)
        send = agent_token if agent_token is not None else caller.token
        if all(conductor.agents.registered(u, url, caller.identity, send) for u in uuids):
            # Agents announce with every heartbeat: a repeat of what this very
            # identity registered and was allowed before costs no store read.
            return Response(status_code=204)
        if not caller.is_admin and (caller.providers is not None or service_auth.listed):
            await run_in_threadpool(_check_listed, store, service_auth, caller, uuids)
        with register_lock:
            _register(conductor, agent_token, caller, url, uuids)
        return Response(status_code=204)

    @app.get("/v1/agents")
    async def list_agents() -> dict[str, Any]:
        return {"agents": conductor.agents.listing()}


def _check_listed(
    store: Store, service_auth: ServiceAuth, caller: Caller, uuids: list[str]
) -> None:
    """A token that lists providers registers those only; one that lists
    none may not register a provider another token lists. A provider is
    named by its uuid or by the name the store gives it."""
    refused = []
    for uuid in uuids:
        keys = {uuid}
        with contextlib.suppress(NotFound):
            keys.add(store.get_provider(uuid).name)
        if caller.providers is not None:
            ok = bool(keys & caller.providers)
        else:
            ok = not keys & service_auth.listed
        if not ok:
            refused.append(uuid)
    if refused:
        raise Forbidden(
            f"the token file does not let this token register provider(s) "
            f"{', '.join(sorted(refused))}",
            providers=sorted(refused),
        )


def _register(
    conductor: Conductor, agent_token: str | None, caller: Caller, url: str, uuids: list[str]
) -> None:
    """Under the caller's register lock: one registration at a time, so the
    ownership check and the update never interleave with another agent's."""
    agents = conductor.agents
    taken = sorted(u for u in uuids if agents.owner(u) not in (None, caller.identity))
    if taken and not caller.is_admin:
        raise Forbidden(
            f"provider(s) {', '.join(taken)} are registered by another agent; "
            "only it or an admin may register them again",
            providers=taken,
        )
    send = agent_token if agent_token is not None else caller.token
    if not all(agents.registered(u, url, caller.identity, send) for u in uuids):
        agents.add(
            uuids,
            HttpAgentClient(url, token=send),
            url,
            owner=caller.identity,
            token=send,
        )
