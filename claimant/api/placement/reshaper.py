"""POST /reshaper (1.30): move inventories and allocations in one step, e.g.
when a compute node's VGPUs move into child providers."""

from __future__ import annotations

import copy
import uuid as uuidlib
from typing import Any

from claimant.api.placement import allocations, errors, inventories
from claimant.api.placement.common import UUID_PATTERN, class_order
from claimant.api.placement.errors import bad_request, conflict
from claimant.api.placement.framework import Req, Resp
from claimant.model import (
    ConsumerAllocations,
    ConsumerGenerationConflict,
    GenerationConflict,
    InsufficientCapacity,
    InUse,
    InvalidInput,
    NotFound,
)
from claimant.store.base import ReshapeSpec


def _allocations(post_schema: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(post_schema)
    schema["minProperties"] = 0
    return schema


POST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "inventories": {
            "type": "object",
            "patternProperties": {UUID_PATTERN: inventories.PUT_ALL_SCHEMA},
            "minProperties": 1,
            "additionalProperties": False,
        },
        "allocations": _allocations(allocations.POST_SCHEMA_1_28),
    },
    "required": ["inventories", "allocations"],
    "additionalProperties": False,
}
# 1.34: allocations may carry mappings
POST_SCHEMA_1_34 = copy.deepcopy(POST_SCHEMA)
POST_SCHEMA_1_34["properties"]["allocations"] = _allocations(allocations.POST_SCHEMA_1_34)
# 1.38: allocations carry consumer_type
POST_SCHEMA_1_38 = copy.deepcopy(POST_SCHEMA)
POST_SCHEMA_1_38["properties"]["allocations"] = _allocations(allocations.POST_SCHEMA_1_38)


def _still_allocated(
    req: Req,
    spec_invs: dict[str, tuple[int, dict[str, Any]]],
    writes: list[ConsumerAllocations],
) -> tuple[str, list[str]] | None:
    """The first provider whose removed inventory the reshape's end state
    still allocates, with those classes; None when there is none."""
    moved = {w.consumer_uuid: w for w in writes}
    for puuid, (_, invs) in spec_invs.items():
        removed = set(req.store.get_provider(puuid).inventories) - set(invs)
        if not removed:
            continue
        left: set[str] = set()
        for c in allocations.confirmed(req, provider_uuid=puuid):
            if c.consumer_uuid not in moved:
                left |= {rc for rc, n in c.amounts.items() if rc in removed and n}
        for w in writes:
            left |= {rc for rc, n in w.allocations.get(puuid, {}).items() if rc in removed and n}
        if left:
            return puuid, class_order(left)
    return None


def reshape(req: Req) -> Resp:
    if req.want(38):
        schema = POST_SCHEMA_1_38
    elif req.want(34):
        schema = POST_SCHEMA_1_34
    else:
        schema = POST_SCHEMA
    data = req.json(schema)
    spec_invs = {}
    for puuid, body in data["inventories"].items():
        try:
            p = req.store.get_provider(puuid)
        except NotFound:
            raise bad_request(
                f"Resource provider {puuid} in inventories not found: "
                f"No resource provider with uuid {puuid} found",
                errors.RESOURCE_PROVIDER_NOT_FOUND,
            ) from None
        given = body["resource_provider_generation"]
        if given != p.generation:
            raise conflict(
                f"resource provider generation conflict for provider {puuid}: actual: "
                f"{p.generation}, given: {given}",
                errors.CONCURRENT_UPDATE,
            )
        invs = {rc: inventories.make(req, p, rc, raw) for rc, raw in body["inventories"].items()}
        spec_invs[p.uuid] = (p.generation, invs)
    known = {rc.name for rc in req.store.list_resource_classes()}
    named = {rc for _, invs in spec_invs.values() for rc in invs}
    for body in data["allocations"].values():
        for a in body["allocations"].values():
            named |= set(a["resources"])
    for rc in sorted(named - known):
        raise bad_request(f"malformed reshaper data: No such resource class {rc}.")
    writes = [
        allocations.write_for(req, str(uuidlib.UUID(c)), body)
        for c, body in data["allocations"].items()
    ]
    for w in writes:
        for puuid in w.allocations:
            try:
                req.store.get_provider(puuid)
            except NotFound:
                raise bad_request(
                    f"Allocation for resource provider '{puuid}' that does not exist."
                ) from None
    try:
        req.store.reshape(ReshapeSpec(inventories=spec_invs, allocations=writes))
    except (GenerationConflict, ConsumerGenerationConflict) as exc:
        raise conflict(f"update conflict: {exc.message}", errors.CONCURRENT_UPDATE) from None
    except (InUse, InsufficientCapacity, InvalidInput) as exc:
        # The store sets the new inventories before it moves allocations;
        # Placement moves them over the old and new inventory merged and
        # fails at the end, naming inventory that is still allocated. Nova's
        # report client matches on that code and text.
        left = _still_allocated(req, spec_invs, writes)
        if left is not None:
            puuid, classes = left
            raise conflict(
                f"update conflict: Inventory for '{', '.join(classes)}' on resource "
                f"provider '{puuid}' in use.",
                errors.INVENTORY_INUSE,
            ) from None
        if isinstance(exc, InUse):
            raise conflict(f"update conflict: {exc.message}", errors.INVENTORY_INUSE) from None
        raise conflict(f"Unable to allocate inventory: {exc.message}") from None
    except NotFound as exc:
        raise bad_request(f"malformed reshaper data: {exc.message}") from None
    return Resp(204)
