"""The agent's HTTP surface and the client the conductor uses to reach it.

    POST /build    BuildMessage   -> BuildReply (200 even when the build failed:
                                     the reply says why; 4xx only for a bad message).
                                     Idempotent per consumer: a resent message gets
                                     the same reply and builds nothing more.
    GET  /v1/builds/{consumer}    -> the BuildRecord (building, built, failed)
    GET  /v1/instances            -> {"instances": [...]}: what this host runs
    POST /destroy  DestroyMessage -> DestroyReply
    GET  /state                   -> provider, usages, instances, last resync
    POST /resync                  -> {"drift": [...]}

Errors use the native API's one format (``{"error": {"code", "message"}}``).
An optional token (``X-Auth-Token``) guards every route, checked with the
body bound before any route runs (``claimant.agent.guard``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from claimant.agent import observe
from claimant.agent.agent import Agent
from claimant.agent.guard import DEFAULT_MAX_BODY, ServiceAuth, ServiceGate, json_body
from claimant.agent.messages import (
    BuildMessage,
    BuildRecord,
    BuildReply,
    DestroyMessage,
    DestroyReply,
)
from claimant.api.errors import install_error_handlers
from claimant.http_client import JsonClient, Unreachable
from claimant.model.errors import AGENT_UNAVAILABLE, NotFound, StoreUnavailable
from claimant.model.provider import normalize_uuid


class AgentUnavailable(StoreUnavailable):
    """An agent could not be reached or answered with an error. A 503 like a
    store outage: the caller may retry; the code tells the two apart.
    ``delivered`` is False only when the message surely never reached the
    agent (no connection, or an answer refusing it); otherwise the agent may
    have acted on it and only its reply was lost."""

    code = AGENT_UNAVAILABLE

    def __init__(self, message: str, *, delivered: bool = True) -> None:
        super().__init__(message)
        self.delivered = delivered


def create_agent_app(
    agent: Agent, *, token: str | None = None, max_body: int = DEFAULT_MAX_BODY
) -> FastAPI:
    """``token``: the one token callers (the conductor, operators) present;
    None leaves the agent open, for loopback only."""
    app = FastAPI(title="claimant agent", openapi_url=None, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    app.add_middleware(ServiceGate, auth=ServiceAuth.shared(token), max_body=max_body)
    app.state.agent = agent
    app.state.max_body = max_body

    @app.post("/build")
    async def build(request: Request) -> dict[str, Any]:
        msg = BuildMessage.from_dict(await json_body(request))
        reply = await run_in_threadpool(agent.build, msg)
        return reply.to_dict()

    @app.get("/v1/builds/{consumer_uuid}")
    async def get_build(consumer_uuid: str) -> dict[str, Any]:
        return agent.build_record(normalize_uuid(consumer_uuid, "consumer_uuid")).to_dict()

    @app.get("/v1/instances")
    async def instances() -> dict[str, Any]:
        return {"instances": agent.running()}

    @app.post("/destroy")
    async def destroy(request: Request) -> dict[str, Any]:
        msg = DestroyMessage.from_dict(await json_body(request))
        reply = await run_in_threadpool(agent.destroy, msg)
        return reply.to_dict()

    @app.get("/state")
    async def state() -> dict[str, Any]:
        out: dict[str, Any] = await run_in_threadpool(agent.state)
        return out

    @app.post("/resync")
    async def resync() -> dict[str, Any]:
        drift = await run_in_threadpool(agent.sync, "requested")
        return {"drift": drift}

    observe.install(
        app, lambda: agent.store.get_provider(agent.uuid), lambda: observe.agent_samples(agent)
    )

    return app


class HttpAgentClient:
    """The conductor's side of the agent's HTTP surface."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 300.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self._http = JsonClient(self.url, token=token, timeout=timeout)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            reply = self._http.request(method, path, json=body)
        except Unreachable as exc:
            what = "unreachable" if not exc.delivered else "no answer"
            raise AgentUnavailable(
                f"agent at {self.url} {what}: {exc.detail}", delivered=exc.delivered
            ) from exc
        if not reply.ok:
            err = reply.error
            if reply.status == 404 and err.code == "not_found":
                raise NotFound(f"agent at {self.url}: {err.message}")
            raise AgentUnavailable(
                f"agent at {self.url} answered {reply.status}: {err.code}: {err.message}",
                # A 4xx refused the message before acting on it.
                delivered=reply.status >= 500,
            )
        return reply.data

    def build(self, msg: BuildMessage) -> BuildReply:
        return BuildReply.from_dict(self._call("POST", "/build", msg.to_dict()))

    def destroy(self, msg: DestroyMessage) -> DestroyReply:
        return DestroyReply.from_dict(self._call("POST", "/destroy", msg.to_dict()))

    def build_record(self, consumer_uuid: str) -> BuildRecord:
        """NotFound if the agent has no build of this consumer."""
        return BuildRecord.from_dict(self._call("GET", f"/v1/builds/{consumer_uuid}"))

    def instances(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("GET", "/v1/instances")["instances"]
        return out

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", "/state")
        return out

    def close(self) -> None:
        self._http.close()


__all__ = [
    "AGENT_UNAVAILABLE",
    "AgentUnavailable",
    "HttpAgentClient",
    "create_agent_app",
]
