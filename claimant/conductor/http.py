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
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from claimant.agent.http import HttpAgentClient, check_token, json_body
from claimant.api.errors import install_error_handlers
from claimant.api.requests import build_request, request_body
from claimant.api.schemas.requests import RequestCreate
from claimant.conductor.conductor import Conductor, run_in_background
from claimant.model import Conflict, InvalidInput, normalize_uuid
from claimant.model.codec import request_to_dict
from claimant.scheduler import lifecycle


@dataclass(frozen=True, slots=True)
class _Caller:
    project_id: str = ""
    user_id: str = ""


def create_conductor_app(
    conductor: Conductor,
    *,
    token: str | None = None,
    agent_token: str | None = None,
    workers: int = 4,
) -> FastAPI:
    pool = ThreadPoolExecutor(workers, thread_name_prefix="conductor-request")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown(wait=False, cancel_futures=True)
        conductor.close()

    app = FastAPI(
        title="claimant conductor",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    install_error_handlers(app)
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
    async def create_build(body: RequestCreate, request: Request, wait: bool = False) -> Response:
        check_token(request, token)
        req = await run_in_threadpool(build_request, body, _Caller(), store)
        headers = {"Location": f"/v1/builds/{req.uuid}"}
        # Created insert-if-absent either way: a second POST with the same
        # uuid is a 409 (AlreadyExists) and never rewrites the first.
        if wait:
            await run_in_threadpool(conductor.build, req)
            return JSONResponse(await run_in_threadpool(_body, req.uuid), 201, headers=headers)
        # Recorded before answering, so a GET right after the 202 finds it.
        pending = await run_in_threadpool(lifecycle.create, store, req, event={"event": "accepted"})
        with running_lock:
            running.add(req.uuid)
        run_in_background(pool, conductor, pending, done)
        return JSONResponse(request_to_dict(pending), 202, headers=headers)

    @app.get("/v1/builds/{uuid}")
    async def get_build(uuid: str, request: Request) -> dict[str, Any]:
        check_token(request, token)
        out: dict[str, Any] = await run_in_threadpool(_body, normalize_uuid(uuid))
        return out

    @app.delete("/v1/builds/{uuid}")
    async def delete_build(uuid: str, request: Request) -> dict[str, Any]:
        check_token(request, token)
        uuid = normalize_uuid(uuid)
        with running_lock:
            busy = uuid in running
        if busy:
            raise Conflict(f"request {uuid} is still being built; delete it when it settles")
        await run_in_threadpool(conductor.destroy, uuid)
        out: dict[str, Any] = await run_in_threadpool(_body, uuid)
        return out

    @app.post("/v1/agents", status_code=204)
    async def register_agent(request: Request) -> Response:
        check_token(request, token)
        data = await json_body(request)
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            raise InvalidInput('an agent announces {"url": ..., "providers": [uuid, ...]}')
        url = data["url"]
        if not url.startswith(("http://", "https://")):
            raise InvalidInput("url must be http:// or https://", field="url")
        providers = data.get("providers")
        if not isinstance(providers, list) or not providers:
            raise InvalidInput("providers must be a non-empty list of uuids", field="providers")
        uuids = [normalize_uuid(p, "providers") for p in providers]
        known = conductor.agents.listing()
        if any(known.get(u) != url for u in uuids):
            conductor.agents.add(uuids, HttpAgentClient(url, token=agent_token), url)
        return Response(status_code=204)

    @app.get("/v1/agents")
    async def list_agents(request: Request) -> dict[str, Any]:
        check_token(request, token)
        return {"agents": conductor.agents.listing()}

    return app
