"""Resource classes: /resource_classes and /resource_classes/{name}."""

from __future__ import annotations

from typing import Any

from claimant.api.placement.common import CUSTOM_PATTERN
from claimant.api.placement.errors import bad_request, conflict, not_found
from claimant.api.placement.framework import Req, Resp, require_json, validate
from claimant.model import AlreadyExists, InUse, InvalidInput, NotFound, ResourceClass
from claimant.model.names import default_discrete, is_standard_resource_class

POST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string", "pattern": CUSTOM_PATTERN, "maxLength": 255}},
    "required": ["name"],
    "additionalProperties": False,
}
# 1.2-1.6: PUT renames a custom class, with the same body.
PUT_SCHEMA_1_2 = POST_SCHEMA


def serialize(name: str) -> dict[str, Any]:
    return {"name": name, "links": [{"rel": "self", "href": f"/resource_classes/{name}"}]}


def _get(req: Req, name: str) -> ResourceClass:
    try:
        return req.store.get_resource_class(name)
    except NotFound:
        raise not_found(f"No such resource class {name}.") from None


def list_all(req: Req) -> Resp:
    names = [rc.name for rc in req.store.list_resource_classes()]
    return Resp(200, {"resource_classes": [serialize(n) for n in names]}).modified(req, None)


def show(req: Req) -> Resp:
    rc = _get(req, req.args["name"])
    return Resp(200, serialize(rc.name)).modified(req, None)


def _new(name: str) -> ResourceClass:
    return ResourceClass(name=name, discrete=default_discrete(name))


def create(req: Req) -> Resp:
    name = req.json(POST_SCHEMA)["name"]
    try:
        req.store.create_resource_class(_new(name))
    except AlreadyExists:
        raise conflict(f"Conflicting resource class already exists: {name}") from None
    return Resp(201, None, {"location": f"/resource_classes/{name}"})


def _rename(req: Req) -> Resp:
    """1.2-1.6. The store has no rename: a class no inventory uses is
    re-created under the new name; one in use cannot be renamed."""
    require_json(req)
    name = req.args["name"]
    new = req.json(PUT_SCHEMA_1_2)["name"]
    _get(req, name)
    if is_standard_resource_class(name):
        raise bad_request(f"Cannot update standard resource class {name}")
    try:
        req.store.create_resource_class(_new(new))
    except AlreadyExists:
        raise conflict(f"Resource class already exists: {new}") from None
    try:
        req.store.delete_resource_class(name)
    except InUse:
        req.store.delete_resource_class(new)
        raise conflict(
            f"Cannot rename resource class {name}: Class is in use in inventory."
        ) from None
    return Resp(200, serialize(new))


def put(req: Req) -> Resp:
    """1.2-1.6 rename; 1.7+ a bodiless create, 204 when it already exists."""
    if not req.want(7):
        return _rename(req)
    name = req.args["name"]
    validate({"name": name}, POST_SCHEMA)
    try:
        req.store.get_resource_class(name)
        status = 204
    except NotFound:
        try:
            req.store.create_resource_class(_new(name))
            status = 201
        except AlreadyExists:
            status = 204
    return Resp(status, None, {"location": f"/resource_classes/{name}"})


def delete(req: Req) -> Resp:
    name = req.args["name"]
    _get(req, name)
    if is_standard_resource_class(name):
        raise bad_request(
            f"Error in delete resource class: Cannot delete standard resource class {name}."
        )
    try:
        req.store.delete_resource_class(name)
    except InUse:
        raise conflict(
            f"Error in delete resource class: Cannot delete resource class {name}. "
            "Class is in use in inventory."
        ) from None
    except InvalidInput as exc:
        raise bad_request(f"Error in delete resource class: {exc.message}") from None
    return Resp(204)
