"""/v1/claims/{uuid} (show, confirm, release) and /v1/providers/{uuid}/claims."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Response

from claimant.api.deps import StoreDep, path_uuid
from claimant.model import ClaimStatus
from claimant.model.codec import claim_to_dict


def get_claim(uuid: str, store: StoreDep) -> dict[str, Any]:
    return claim_to_dict(store.get_claim(path_uuid(uuid)))


def confirm_claim(uuid: str, store: StoreDep) -> dict[str, Any]:
    return claim_to_dict(store.confirm_claim(path_uuid(uuid)))


def release_claim(uuid: str, store: StoreDep) -> Response:
    store.release_claim(path_uuid(uuid))
    return Response(status_code=204)


def list_provider_claims(
    uuid: str,
    store: StoreDep,
    status: Literal["claimed", "confirmed"] | None = None,
    consumer_uuid: str | None = None,
) -> dict[str, Any]:
    uuid = path_uuid(uuid)
    store.get_provider(uuid)  # 404 for an unknown provider, not an empty list
    claims = store.list_claims(
        provider_uuid=uuid,
        consumer_uuid=path_uuid(consumer_uuid, "consumer_uuid") if consumer_uuid else None,
        status=ClaimStatus(status) if status else None,
    )
    return {"provider_uuid": uuid, "claims": [claim_to_dict(c) for c in claims]}
