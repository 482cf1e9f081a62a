"""/v1/requests/{uuid}/events and /v1/providers/{uuid}/events: what happened,
oldest first (docs/api.md, "Events")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from claimant.api.deps import ContextDep, StoreDep, caller_project, path_uuid, visible
from claimant.model import NotFound
from claimant.model.events import Subject


def request_events(
    uuid: str,
    store: StoreDep,
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The request's lifecycle (its record's history) merged with what the
    store saw happen to its claims."""
    request = store.get_request(path_uuid(uuid))
    if not visible(ctx, request.project_id):
        raise NotFound(f"no request {request.uuid}", kind="request", uuid=request.uuid)
    events = [dict(h) for h in request.history]
    events += [e.to_dict() for e in store.list_events(Subject.REQUEST, request.uuid, limit=limit)]
    events.sort(key=lambda e: e.get("at", 0.0))
    return {"request_uuid": request.uuid, "events": events[-limit:]}


def provider_events(
    uuid: str,
    store: StoreDep,
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    uuid = path_uuid(uuid)
    store.get_provider(uuid)  # 404 for an unknown provider, not an empty list
    events = [e.to_dict() for e in store.list_events(Subject.PROVIDER, uuid, limit=limit)]
    scope = caller_project(ctx)
    if scope is not None:
        # Another project's claims are not this caller's to see (as /claims).
        events = [e for e in events if e.get("project_id") in (None, scope)]
    return {"provider_uuid": uuid, "events": events}
