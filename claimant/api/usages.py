"""/v1/providers/{uuid}/usages and /v1/usages?project_id=..."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from claimant.api.auth import Forbidden
from claimant.api.deps import ContextDep, ProviderPath, StoreDep, caller_project, provider_ref


def get_provider_usages(uuid: ProviderPath, store: StoreDep) -> dict[str, Any]:
    pu = store.get_usage(provider_ref(store, uuid))
    return {
        "provider_uuid": pu.provider.uuid,
        "generation": pu.provider.generation,
        "usages": {
            rc: {"capacity": u.capacity, "used": u.used, "free": u.free}
            for rc, u in sorted(pu.usages.items())
        },
    }


def get_project_usages(
    store: StoreDep,
    ctx: ContextDep,
    project_id: Annotated[str, Query(min_length=1, max_length=255)],
    user_id: Annotated[str | None, Query(max_length=255)] = None,
    consumer_type: Annotated[str | None, Query(max_length=255)] = None,
) -> dict[str, Any]:
    scope = caller_project(ctx)
    if scope is not None and scope != project_id:
        raise Forbidden(
            f"this caller may read the usages of its own project ({scope}) only",
            project_id=project_id,
        )
    usages = store.usages_by_project(project_id, user_id, consumer_type)
    return {"project_id": project_id, "user_id": user_id, "usages": usages}
