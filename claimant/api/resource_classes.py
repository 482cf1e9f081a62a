"""/v1/resource_classes: standard classes plus operators' CUSTOM_* ones."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from claimant.api.deps import StoreDep
from claimant.api.schemas.resource_classes import ResourceClassCreate, resource_class_to_dict
from claimant.model import ResourceClass


def list_resource_classes(store: StoreDep) -> dict[str, Any]:
    return {
        "resource_classes": [resource_class_to_dict(rc) for rc in store.list_resource_classes()]
    }


def create_resource_class(
    body: ResourceClassCreate, store: StoreDep, response: Response
) -> dict[str, Any]:
    rc = store.create_resource_class(ResourceClass(body.name, discrete=body.discrete))
    response.headers["Location"] = f"/v1/resource_classes/{rc.name}"
    return resource_class_to_dict(rc)


def get_resource_class(name: str, store: StoreDep) -> dict[str, Any]:
    return resource_class_to_dict(store.get_resource_class(name))


def delete_resource_class(name: str, store: StoreDep) -> Response:
    store.delete_resource_class(name)
    return Response(status_code=204)
