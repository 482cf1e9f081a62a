"""/v1/claims/{uuid} (show, confirm, release) and /v1/providers/{uuid}/claims."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Response

from claimant.api.auth import Context
from claimant.api.deps import (
    ContextDep,
    ProviderPath,
    StoreDep,
    caller_project,
    path_uuid,
    provider_ref,
    visible,
)
from claimant.model import Claim, ClaimStatus, NotFound
from claimant.model.codec import claim_to_dict
from claimant.store import Store


def _own_claim(store: Store, ctx: Context, uuid: str) -> Claim:
    """The claim, if the caller's project owns it (a project's claim is
    another project's 404). A claim's project never changes, so checking
    before confirming or releasing is not a race."""
    claim = store.get_claim(path_uuid(uuid))
    if not visible(ctx, claim.project_id):
        raise NotFound(f"no claim {claim.uuid}", kind="claim", uuid=claim.uuid)
    return claim


def get_claim(uuid: str, store: StoreDep, ctx: ContextDep) -> dict[str, Any]:
    return claim_to_dict(_own_claim(store, ctx, uuid))


def confirm_claim(uuid: str, store: StoreDep, ctx: ContextDep) -> dict[str, Any]:
    claim = _own_claim(store, ctx, uuid)
    return claim_to_dict(store.confirm_claim(claim.uuid))


def release_claim(uuid: str, store: StoreDep, ctx: ContextDep) -> Response:
    claim = _own_claim(store, ctx, uuid)
    store.release_claim(claim.uuid)
    return Response(status_code=204)


def list_provider_claims(
    uuid: ProviderPath,
    store: StoreDep,
    ctx: ContextDep,
    status: Literal["claimed", "confirmed"] | None = None,
    consumer_uuid: str | None = None,
) -> dict[str, Any]:
    uuid = provider_ref(store, uuid)
    store.get_provider(uuid)  # 404 for an unknown provider, not an empty list
    claims = store.list_claims(
        provider_uuid=uuid,
        consumer_uuid=path_uuid(consumer_uuid, "consumer_uuid") if consumer_uuid else None,
        status=ClaimStatus(status) if status else None,
    )
    scope = caller_project(ctx)
    if scope is not None:
        claims = [c for c in claims if c.project_id == scope]
    return {"provider_uuid": uuid, "claims": [claim_to_dict(c) for c in claims]}
