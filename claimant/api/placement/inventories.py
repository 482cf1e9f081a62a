"""Inventories: /resource_providers/{uuid}/inventories[/{resource_class}]."""

from __future__ import annotations

import copy
from typing import Any

from claimant.api.bounds import MAX_INT64
from claimant.api.placement import errors
from claimant.api.placement.common import (
    MAX_INT,
    RC_PATTERN,
    SQL_SP_FLOAT_MAX,
    class_order,
    get_provider,
    provider_url,
)
from claimant.api.placement.errors import bad_request, conflict, not_found
from claimant.api.placement.framework import Req, Resp
from claimant.model import GenerationConflict, InUse, Inventory, NotFound, Provider

_INT = {"type": "integer", "maximum": MAX_INT}
RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "resource_provider_generation": {"type": "integer"},
        "total": {**_INT, "minimum": 1},
        "reserved": {**_INT, "minimum": 0},
        "min_unit": {**_INT, "minimum": 1},
        "max_unit": {**_INT, "minimum": 1},
        "step_size": {**_INT, "minimum": 1},
        "allocation_ratio": {"type": "number", "maximum": SQL_SP_FLOAT_MAX},
    },
    "required": ["total", "resource_provider_generation"],
    "additionalProperties": False,
}
POST_SCHEMA = copy.deepcopy(RECORD_SCHEMA)
POST_SCHEMA["properties"]["resource_class"] = {"type": "string", "pattern": RC_PATTERN}
POST_SCHEMA["required"] = ["total", "resource_class"]
PUT_RECORD_SCHEMA = copy.deepcopy(RECORD_SCHEMA)
PUT_RECORD_SCHEMA["required"] = ["total"]
PUT_ALL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "resource_provider_generation": {"type": "integer"},
        "inventories": {"type": "object", "patternProperties": {RC_PATTERN: PUT_RECORD_SCHEMA}},
    },
    "required": ["resource_provider_generation", "inventories"],
    "additionalProperties": False,
}
FIELDS = ("total", "reserved", "min_unit", "max_unit", "step_size", "allocation_ratio")


def serialize_one(inv: Inventory) -> dict[str, Any]:
    return {f: getattr(inv, f) for f in FIELDS}


def _send_all(req: Req, p: Provider) -> Resp:
    body = {
        "resource_provider_generation": p.generation,
        "inventories": {rc: serialize_one(inv) for rc, inv in p.inventories.items()},
    }
    return Resp(200, body).modified(req, p.updated_at or p.created_at)


def _send_one(req: Req, p: Provider, rc: str, status: int = 200) -> Resp:
    body = serialize_one(p.inventories[rc])
    body["resource_provider_generation"] = p.generation
    return Resp(status, body).modified(req, p.updated_at or p.created_at)


def make(req: Req, p: Provider, rc: str, data: dict[str, Any], verb: str = "update") -> Inventory:
    fields = {f: data[f] for f in FIELDS if f in data}
    inv = Inventory(resource_class=rc, **fields)
    # Placement floors capacity the same way; <1.26 reserved must stay below total.
    capacity = (inv.total - inv.reserved) * inv.allocation_ratio
    if req.want(26):
        if capacity < 0:
            raise _capacity_error(p, rc, "greater than total", verb)
    elif capacity <= 0:
        raise _capacity_error(p, rc, "greater than or equal to total", verb)
    if capacity > MAX_INT64:
        raise bad_request(
            f"Bad inventory {rc} for resource provider {p.uuid}: capacity "
            f"(total - reserved) * allocation_ratio must be at most {MAX_INT64}"
        )
    if inv.min_unit > inv.max_unit or inv.allocation_ratio <= 0:
        raise bad_request(
            f"Bad inventory {rc} for resource provider {p.uuid}: invalid inventory values"
        )
    return inv


def _capacity_error(p: Provider, rc: str, what: str, verb: str) -> Exception:
    return bad_request(
        f"Unable to {verb} inventory for resource provider {p.uuid}: Invalid inventory for "
        f"'{rc}' on resource provider '{p.uuid}'. The reserved value is {what}."
    )


def _known_classes(req: Req) -> set[str]:
    return {rc.name for rc in req.store.list_resource_classes()}


def _write(req: Req, p: Provider, inventories: dict[str, Inventory], inuse_msg: str) -> Provider:
    try:
        return req.store.set_inventories(p.uuid, p.generation, inventories, allow_overcapacity=True)
    except GenerationConflict as exc:
        raise conflict(f"update conflict: {exc.message}", errors.CONCURRENT_UPDATE) from None
    except InUse:
        # Placement names only the removed classes that still hold
        # allocations, not every class the request removes (Nova's report
        # client logs these names).
        removed = _in_use(req, p, set(p.inventories) - set(inventories))
        raise conflict(
            inuse_msg.format(classes=", ".join(removed), detail=_inuse_detail(p, removed)),
            errors.INVENTORY_INUSE,
        ) from None


def _in_use(req: Req, p: Provider, classes: set[str]) -> list[str]:
    usages = req.store.get_usage(p.uuid).usages
    busy = [rc for rc in classes if rc in usages and usages[rc].used > 0]
    return class_order(busy or classes)


def _inuse_detail(p: Provider, classes: list[str]) -> str:
    return f"Inventory for '{', '.join(classes)}' on resource provider '{p.uuid}' in use."


def list_for_provider(req: Req) -> Resp:
    uuid = req.args["uuid"]
    p = get_provider(req, uuid, f"No resource provider with uuid {uuid} found : ")
    return _send_all(req, p)


def show(req: Req) -> Resp:
    uuid, rc = req.args["uuid"], req.args["resource_class"]
    p = get_provider(req, uuid, f"No resource provider with uuid {uuid} found : ")
    if rc not in p.inventories:
        raise not_found(f"No inventory of class {rc} for {uuid}")
    return _send_one(req, p, rc)


def create(req: Req) -> Resp:
    p = get_provider(req, req.args["uuid"])
    data = req.json(POST_SCHEMA)
    rc = data["resource_class"]
    inv = make(req, p, rc, data, "create")
    if rc not in _known_classes(req):
        raise bad_request(
            f"Unable to create inventory for resource provider {p.uuid}: "
            f"No such resource class {rc}."
        )
    if rc in p.inventories:
        raise conflict(
            f"Update conflict: Inventory for '{rc}' on resource provider '{p.uuid}' "
            "already exists.",
            errors.CONCURRENT_UPDATE,
        )
    p = _write(req, p, {**p.inventories, rc: inv}, "update conflict: {detail}")
    return Resp(
        201,
        _send_one(req, p, rc).body,
        {"location": f"{provider_url(p.uuid)}/inventories/{rc}"},
    ).modified(req, p.updated_at)


def replace_all(req: Req) -> Resp:
    p = get_provider(req, req.args["uuid"])
    data = req.json(PUT_ALL_SCHEMA)
    if data["resource_provider_generation"] != p.generation:
        raise conflict("resource provider generation conflict", errors.CONCURRENT_UPDATE)
    invs = {rc: make(req, p, rc, raw) for rc, raw in data["inventories"].items()}
    unknown = sorted(set(invs) - _known_classes(req))
    if unknown:
        raise bad_request(
            f"Unknown resource class in inventory for resource provider {p.uuid}: "
            f"No such resource class {unknown[0]}."
        )
    p = _write(req, p, invs, "update conflict: {detail}")
    return _send_all(req, p)


def delete_all(req: Req) -> Resp:
    p = get_provider(req, req.args["uuid"])
    _write(req, p, {}, "{detail}")
    return Resp(204)


def update_one(req: Req) -> Resp:
    uuid, rc = req.args["uuid"], req.args["resource_class"]
    p = get_provider(req, uuid)
    data = req.json(RECORD_SCHEMA)
    if data["resource_provider_generation"] != p.generation:
        raise conflict("resource provider generation conflict", errors.CONCURRENT_UPDATE)
    inv = make(req, p, rc, data)
    if rc not in p.inventories:
        raise bad_request(
            f"No inventory record with resource class for resource provider {uuid}: "
            f"No inventory of class {rc} found."
        )
    p = _write(req, p, {**p.inventories, rc: inv}, "update conflict: {detail}")
    return _send_one(req, p, rc)


def delete_one(req: Req) -> Resp:
    uuid, rc = req.args["uuid"], req.args["resource_class"]
    p = get_provider(req, uuid)
    if rc not in p.inventories:
        raise not_found(
            f"No inventory of class {rc} found for delete: "
            f"No inventory of class {rc} found for delete"
        )
    rest = {k: v for k, v in p.inventories.items() if k != rc}
    try:
        req.store.set_inventories(p.uuid, p.generation, rest, allow_overcapacity=True)
    except (GenerationConflict, InUse) as exc:
        detail = _inuse_detail(p, [rc]) if isinstance(exc, InUse) else exc.message
        raise conflict(
            f"Unable to delete inventory of class {rc}: {detail}", errors.CONCURRENT_UPDATE
        ) from None
    except NotFound:
        raise not_found(f"No inventory of class {rc} found for delete") from None
    return Resp(204)
