"""/v1/resource_types: built-in provider types plus operator-defined ones."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from claimant.api.deps import StoreDep
from claimant.api.schemas.resource_types import ResourceTypeCreate


def list_resource_types(store: StoreDep) -> dict[str, Any]:
    return {"resource_types": [t.to_dict() for t in store.list_resource_types()]}


def create_resource_type(
    body: ResourceTypeCreate, store: StoreDep, response: Response
) -> dict[str, Any]:
    rtype = store.create_resource_type(body.to_model().validate_type())
    response.headers["Location"] = f"/v1/resource_types/{rtype.name}"
    return rtype.to_dict()


def get_resource_type(name: str, store: StoreDep) -> dict[str, Any]:
    return store.get_resource_type(name).to_dict()


def delete_resource_type(name: str, store: StoreDep) -> Response:
    store.delete_resource_type(name)
    return Response(status_code=204)
