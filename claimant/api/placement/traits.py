"""Traits: /traits, /traits/{name} and /resource_providers/{uuid}/traits."""

from __future__ import annotations

import copy
import re
from typing import Any

from claimant.api.placement import errors
from claimant.api.placement.common import CUSTOM_PATTERN, get_provider
from claimant.api.placement.errors import PlacementError, bad_request, conflict, not_found
from claimant.api.placement.framework import Req, Resp
from claimant.model import GenerationConflict, InUse, InvalidInput, NotFound

TRAIT: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 255}
SET_FOR_PROVIDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "traits": {"type": "array", "items": copy.deepcopy(TRAIT)},
        "resource_provider_generation": {"type": "integer"},
    },
    "required": ["traits", "resource_provider_generation"],
    "additionalProperties": False,
}
LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "associated": {"type": "string"}},
    "additionalProperties": False,
}


def _exists(req: Req, name: str) -> bool:
    return name in set(req.store.list_traits())


def put(req: Req) -> Resp:
    name = req.args["name"]
    if not re.match(CUSTOM_PATTERN, name) or len(name) > 255:
        raise bad_request(
            "The trait is invalid. A valid trait must be no longer than 255 characters, start "
            'with the prefix "CUSTOM_" and use following characters: "A"-"Z", "0"-"9" and "_"'
        )
    created = req.store.create_trait(name)
    return Resp(201 if created else 204, None, {"location": f"/traits/{name}"}).modified(req, None)


def show(req: Req) -> Resp:
    name = req.args["name"]
    if not _exists(req, name):
        raise not_found(f"No such trait(s): {name}.")
    return Resp(204).modified(req, None)


def delete(req: Req) -> Resp:
    name = req.args["name"]
    if not _exists(req, name):
        raise not_found(f"No such trait(s): {name}.")
    try:
        req.store.delete_trait(name)
    except InUse:
        raise conflict(f"The trait {name} is in use by a resource provider.") from None
    except InvalidInput:
        raise bad_request(f"Cannot delete standard trait {name}.") from None
    except NotFound:
        raise not_found(f"No such trait(s): {name}.") from None
    return Resp(204)


def list_all(req: Req) -> Resp:
    q = req.validate_query(LIST_SCHEMA)
    names = req.store.list_traits()
    if "name" in q:
        op, sep, value = q["name"].partition(":")
        if not sep:
            raise bad_request(
                "Badly formatted name parameter. Expected name query string parameter in "
                f'form: ?name=[in|startswith]:[name1,name2|prefix]. Got: "{q["name"]}"'
            )
        if op == "in":
            wanted = set(value.split(","))
            names = [n for n in names if n in wanted]
        elif op == "startswith":
            names = [n for n in names if n.startswith(value)]
    if "associated" in q:
        flag = q["associated"].lower()
        if flag not in ("true", "false"):
            raise bad_request('The query parameter "associated" only accepts "true" or "false"')
        used = req.store.traits_in_use()
        names = [n for n in names if (n in used) == (flag == "true")]
    return Resp(200, {"traits": names}).modified(req, None)


def list_for_provider(req: Req) -> Resp:
    uuid = req.args["uuid"]
    p = get_provider(req, uuid, f"No resource provider with uuid {uuid} found: ")
    body = {"traits": sorted(p.traits), "resource_provider_generation": p.generation}
    return Resp(200, body).modified(req, p.updated_at)


def set_for_provider(req: Req) -> Resp:
    uuid = req.args["uuid"]
    data = req.json(SET_FOR_PROVIDER_SCHEMA)
    p = get_provider(req, uuid)
    if p.generation != data["resource_provider_generation"]:
        raise conflict(
            "Resource provider's generation already changed. Please update the generation "
            "and try again.",
            errors.CONCURRENT_UPDATE,
        )
    missing = set(data["traits"]) - set(req.store.list_traits())
    if missing:
        raise bad_request(f"No such trait {', '.join(sorted(missing))}")
    try:
        p = req.store.set_traits(uuid, p.generation, data["traits"])
    except GenerationConflict as exc:
        raise conflict(exc.message, errors.CONCURRENT_UPDATE) from None
    body = {"traits": sorted(p.traits), "resource_provider_generation": p.generation}
    return Resp(200, body).modified(req, p.updated_at)


def delete_for_provider(req: Req) -> Resp:
    uuid = req.args["uuid"]
    p = get_provider(req, uuid)
    try:
        req.store.set_traits(uuid, p.generation, [])
    except GenerationConflict as exc:
        raise PlacementError(409, exc.message, errors.CONCURRENT_UPDATE) from None
    return Resp(204)
