"""Allocations: /allocations/{consumer_uuid}, POST /allocations and
/resource_providers/{uuid}/allocations. Writes go through the store's
``write_allocations``: capacity, provider generations and consumer
generations are checked in one atomic step, so concurrent writers can never
overcommit a provider (Placement on MySQL can, see docs/placement.md)."""

from __future__ import annotations

import copy
import re
import uuid as uuidlib
from collections.abc import Callable
from typing import Any

from claimant.api.placement import errors
from claimant.api.placement.common import (
    INCOMPLETE_PROJECT,
    INCOMPLETE_USER,
    RC_PATTERN,
    UUID_PATTERN,
)
from claimant.api.placement.errors import bad_request, conflict, not_found
from claimant.api.placement.framework import Req, Resp, is_uuid
from claimant.model import (
    Claim,
    ClaimStatus,
    ConsumerAllocations,
    ConsumerGenerationConflict,
    GenerationConflict,
    InsufficientCapacity,
    InvalidInput,
    NotFound,
    Provider,
)
from claimant.model.errors import CROSS_CELL
from claimant.model.names import is_standard_resource_class

_RESOURCES: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "patternProperties": {RC_PATTERN: {"type": "integer", "minimum": 1}},
    "additionalProperties": False,
}
_ID = {"type": "string", "minLength": 1, "maxLength": 255}
PUT_SCHEMA_1_0: dict[str, Any] = {
    "type": "object",
    "properties": {
        "allocations": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "resource_provider": {
                        "type": "object",
                        "properties": {"uuid": {"type": "string", "format": "uuid"}},
                        "additionalProperties": False,
                        "required": ["uuid"],
                    },
                    "resources": _RESOURCES,
                },
                "required": ["resource_provider", "resources"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["allocations"],
    "additionalProperties": False,
}
# 1.8: project_id and user_id required
PUT_SCHEMA_1_8 = copy.deepcopy(PUT_SCHEMA_1_0)
PUT_SCHEMA_1_8["properties"]["project_id"] = _ID
PUT_SCHEMA_1_8["properties"]["user_id"] = _ID
PUT_SCHEMA_1_8["required"] += ["project_id", "user_id"]
# 1.12: allocations keyed by provider uuid
PUT_SCHEMA_1_12: dict[str, Any] = {
    "type": "object",
    "properties": {
        "allocations": {
            "type": "object",
            "minProperties": 1,
            "patternProperties": {
                UUID_PATTERN: {
                    "type": "object",
                    "properties": {"generation": {"type": "integer"}, "resources": _RESOURCES},
                    "required": ["resources"],
                    "additionalProperties": False,
                }
            },
            "additionalProperties": False,
        },
        "project_id": _ID,
        "user_id": _ID,
    },
    "additionalProperties": False,
    "required": ["allocations", "project_id", "user_id"],
}
# 1.13: POST /allocations, where an empty allocations dict removes
DELETABLE = copy.deepcopy(PUT_SCHEMA_1_12)
DELETABLE["properties"]["allocations"]["minProperties"] = 0
POST_SCHEMA_1_13: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "patternProperties": {UUID_PATTERN: DELETABLE},
}
# 1.28: consumer_generation required (null for a new consumer)
PUT_SCHEMA_1_28 = copy.deepcopy(DELETABLE)
PUT_SCHEMA_1_28["properties"]["consumer_generation"] = {"type": ["integer", "null"]}
PUT_SCHEMA_1_28["required"].append("consumer_generation")
POST_SCHEMA_1_28 = copy.deepcopy(POST_SCHEMA_1_13)
POST_SCHEMA_1_28["patternProperties"] = {UUID_PATTERN: PUT_SCHEMA_1_28}
# 1.34: mappings (accepted, not stored, as in Placement)
PUT_SCHEMA_1_34 = copy.deepcopy(PUT_SCHEMA_1_28)
PUT_SCHEMA_1_34["properties"]["mappings"] = {
    "type": "object",
    "minProperties": 1,
    "patternProperties": {
        "[a-zA-Z0-9_-]{1,64}": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "format": "uuid"},
        }
    },
}
POST_SCHEMA_1_34 = copy.deepcopy(POST_SCHEMA_1_28)
POST_SCHEMA_1_34["patternProperties"] = {UUID_PATTERN: PUT_SCHEMA_1_34}
# 1.38: consumer_type required
PUT_SCHEMA_1_38 = copy.deepcopy(PUT_SCHEMA_1_34)
PUT_SCHEMA_1_38["properties"]["consumer_type"] = {
    "type": "string",
    "pattern": RC_PATTERN,
    "minLength": 1,
    "maxLength": 255,
}
PUT_SCHEMA_1_38["required"].append("consumer_type")
POST_SCHEMA_1_38 = copy.deepcopy(POST_SCHEMA_1_34)
POST_SCHEMA_1_38["patternProperties"] = {UUID_PATTERN: PUT_SCHEMA_1_38}


def _put_schema(req: Req) -> dict[str, Any]:
    for minor, schema in (
        (38, PUT_SCHEMA_1_38),
        (34, PUT_SCHEMA_1_34),
        (28, PUT_SCHEMA_1_28),
        (12, PUT_SCHEMA_1_12),
        (8, PUT_SCHEMA_1_8),
    ):
        if req.want(minor):
            return schema
    return PUT_SCHEMA_1_0


_UUID_KEY = re.compile(UUID_PATTERN)
_RC_NAME = re.compile(RC_PATTERN)
_PUT_KEYS_1_28 = frozenset({"allocations", "project_id", "user_id", "consumer_generation"})
_PUT_KEYS_1_38 = _PUT_KEYS_1_28 | {"consumer_type"}


def _int(value: Any) -> bool:
    return type(value) is int  # bool is not an int here, as in JSON Schema


def _id(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= 255


def _plain_put(data: Any, required: frozenset[str]) -> bool:
    """True if ``data`` is the body Nova sends (1.28 and later, no mappings)
    and valid: PUT_SCHEMA_1_28 / 1_38 checked by a plain loop, a few times
    cheaper than jsonschema on the hot path. False says nothing: jsonschema
    then decides, with its own message."""
    if type(data) is not dict or data.keys() != required:
        return False
    gen = data["consumer_generation"]
    if not (gen is None or _int(gen)) or not (_id(data["project_id"]) and _id(data["user_id"])):
        return False
    ctype = data.get("consumer_type", "")
    if "consumer_type" in required and not (_id(ctype) and _RC_NAME.match(ctype)):
        return False
    allocations = data["allocations"]
    if type(allocations) is not dict:
        return False
    for uuid, alloc in allocations.items():
        if not _UUID_KEY.match(uuid) or type(alloc) is not dict:
            return False
        if not alloc.keys() <= {"generation", "resources"} or not _int(alloc.get("generation", 0)):
            return False
        resources = alloc.get("resources")
        if type(resources) is not dict or not resources:
            return False
        for rc, amount in resources.items():
            if not (_int(amount) and amount >= 1 and _RC_NAME.match(rc)):
                return False
    return True


def _plain_check(req: Req) -> Callable[[Any], bool] | None:
    if req.want(38):
        return lambda data: _plain_put(data, _PUT_KEYS_1_38)
    if req.want(28):
        return lambda data: _plain_put(data, _PUT_KEYS_1_28)
    return None


def _post_schema(req: Req) -> dict[str, Any]:
    for minor, schema in ((38, POST_SCHEMA_1_38), (34, POST_SCHEMA_1_34), (28, POST_SCHEMA_1_28)):
        if req.want(minor):
            return schema
    return POST_SCHEMA_1_13


def confirmed(req: Req, **by: str) -> list[Claim]:
    return req.store.list_claims(status=ClaimStatus.CONFIRMED, **by)


def _consumer_type_name(ctype: str | None) -> str:
    return ctype or "unknown"


# -- reads ------------------------------------------------------------------
def list_for_consumer(req: Req) -> Resp:
    consumer_uuid = req.args["consumer_uuid"]
    claims = confirmed(req, consumer_uuid=consumer_uuid) if is_uuid(consumer_uuid) else []
    allocations: dict[str, Any] = {}
    for c in claims:
        entry = allocations.setdefault(c.provider_uuid, {"resources": {}})
        for rc, n in c.amounts.items():
            entry["resources"][rc] = entry["resources"].get(rc, 0) + n
    for puuid, entry in allocations.items():
        try:
            entry["generation"] = req.store.get_provider(puuid).generation
        except NotFound:
            entry["generation"] = None
    body: dict[str, Any] = {"allocations": allocations}
    if claims and req.want(12):
        consumer = req.store.get_consumer(consumer_uuid)
        body["project_id"] = consumer.project_id if consumer else claims[0].project_id
        body["user_id"] = consumer.user_id if consumer else claims[0].user_id
        if req.want(28):
            body["consumer_generation"] = consumer.generation if consumer else None
        if req.want(38):
            body["consumer_type"] = _consumer_type_name(consumer.consumer_type if consumer else "")
    when = max((c.created_at for c in claims), default=None)
    return Resp(200, body).modified(req, when)


def list_for_provider(req: Req) -> Resp:
    uuid = req.args["uuid"]
    try:
        p = req.store.get_provider(uuid)
    except NotFound:
        raise not_found(
            f"Resource provider '{uuid}' not found: No resource provider with uuid {uuid} found"
        ) from None
    claims = confirmed(req, provider_uuid=uuid)
    allocations: dict[str, Any] = {}
    for c in claims:
        entry = allocations.setdefault(c.consumer_uuid, {"resources": {}})
        for rc, n in c.amounts.items():
            entry["resources"][rc] = entry["resources"].get(rc, 0) + n
    if req.want(28):
        for cuuid, entry in allocations.items():
            consumer = req.store.get_consumer(cuuid)
            entry["consumer_generation"] = consumer.generation if consumer else None
    body = {"allocations": allocations, "resource_provider_generation": p.generation}
    when = max((c.created_at for c in claims), default=None)
    return Resp(200, body).modified(req, when)


# -- writes -----------------------------------------------------------------
def _check_consumer_generation(req: Req, consumer_uuid: str, given: Any) -> None:
    consumer = req.store.get_consumer(consumer_uuid)
    if consumer is not None:
        if consumer.generation != given:
            raise conflict(
                f"consumer generation conflict - expected {consumer.generation} but got {given}",
                errors.CONCURRENT_UPDATE,
            )
    elif given is not None:
        raise conflict(
            f"consumer generation conflict - expected null but got {given}",
            errors.CONCURRENT_UPDATE,
        )


def write_for(req: Req, consumer_uuid: str, data: dict[str, Any]) -> ConsumerAllocations:
    """One consumer's part of a PUT or POST body, as the store's write."""
    allocs = data["allocations"]
    if isinstance(allocs, list):  # before 1.12
        allocs = {a["resource_provider"]["uuid"]: {"resources": a["resources"]} for a in allocs}
    project = data.get("project_id")
    user = data.get("user_id")
    if project is None:
        project, user = INCOMPLETE_PROJECT, INCOMPLETE_USER
    expected: int | str | None = "any"
    if req.want(28):
        _check_consumer_generation(req, consumer_uuid, data.get("consumer_generation"))
        expected = data.get("consumer_generation")
    ctype = data.get("consumer_type") if req.want(38) else None
    return ConsumerAllocations(
        consumer_uuid=consumer_uuid,
        project_id=project,
        user_id=user or INCOMPLETE_USER,
        allocations={str(uuidlib.UUID(puuid)): dict(a["resources"]) for puuid, a in allocs.items()},
        consumer_type=ctype,
        expected_generation=expected,
    )


def _precheck(req: Req, writes: list[ConsumerAllocations], single: bool) -> None:
    """Placement's 400s and 409s with its own messages; the store re-checks
    everything atomically, this only words the common failures."""
    providers: dict[str, Provider] = {}
    # Only the classes named, looked up one by one: listing every class (200
    # and more) on each PUT cost more than the write.
    classes: dict[str, bool] = {}

    def known(rc: str) -> bool:
        if is_standard_resource_class(rc):
            return True  # every store holds the standard classes, undeletable
        if rc not in classes:
            try:
                req.store.get_resource_class(rc)
                classes[rc] = True
            except NotFound:
                classes[rc] = False
        return classes[rc]

    for w in writes:
        for puuid, amounts in w.allocations.items():
            if puuid not in providers:
                try:
                    providers[puuid] = req.store.get_provider(puuid)
                except NotFound:
                    raise bad_request(
                        f"Allocation for resource provider '{puuid}' that does not exist."
                    ) from None
            p = providers[puuid]
            for rc, amount in amounts.items():
                if not known(rc):
                    prefix = (
                        f"Unable to allocate inventory for consumer {w.consumer_uuid}: "
                        if single
                        else "Unable to allocate inventory "
                    )
                    raise bad_request(f"{prefix}No such resource class {rc}.")
                inv = p.inventories.get(rc)
                if inv is None:
                    raise conflict(
                        f"Unable to allocate inventory: Inventory for '{rc}' on resource "
                        f"provider '{puuid}' invalid."
                    )
                if inv.amount_problems(amount):
                    raise conflict(
                        f"Unable to allocate inventory: Unable to create allocation for '{rc}' "
                        f"on resource provider '{puuid}'. The requested amount would violate "
                        "inventory constraints."
                    )


def _store_write(req: Req, writes: list[ConsumerAllocations]) -> None:
    try:
        req.store.write_allocations(writes)
    except InsufficientCapacity as exc:
        puuid = exc.details.get("uuid", "")
        reasons = exc.details.get("reasons") or [""]
        rc = str(reasons[0]).split(":")[0]
        raise conflict(
            f"Unable to allocate inventory: Unable to create allocation for '{rc}' on "
            f"resource provider '{puuid}'. The requested amount would exceed the capacity."
        ) from None
    except ConsumerGenerationConflict as exc:
        raise conflict(
            f"consumer generation conflict - {exc.message}", errors.CONCURRENT_UPDATE
        ) from None
    except GenerationConflict as exc:
        raise conflict(
            f"Inventory and/or allocations changed while attempting to allocate: {exc.message}",
            errors.CONCURRENT_UPDATE,
        ) from None
    except InvalidInput as exc:
        if exc.code == CROSS_CELL:
            # claimant's own stable code: a bad request, not a capacity story.
            raise bad_request(exc.message, CROSS_CELL) from None
        raise conflict(f"Unable to allocate inventory: {exc.message}") from None


def put_for_consumer(req: Req) -> Resp:
    consumer_uuid = req.args["consumer_uuid"]
    if not is_uuid(consumer_uuid):
        raise bad_request(f"Malformed consumer_uuid: {consumer_uuid}")
    consumer_uuid = str(uuidlib.UUID(consumer_uuid))
    data = req.json(_put_schema(req), _plain_check(req))
    write = write_for(req, consumer_uuid, data)
    _precheck(req, [write], True)
    _store_write(req, [write])
    return Resp(204)


def post(req: Req) -> Resp:
    data = req.json(_post_schema(req))
    writes = [write_for(req, str(uuidlib.UUID(c)), body) for c, body in data.items()]
    _precheck(req, writes, False)
    _store_write(req, writes)
    return Resp(204)


def delete_for_consumer(req: Req) -> Resp:
    consumer_uuid = req.args["consumer_uuid"]
    if not (is_uuid(consumer_uuid) and req.store.remove_consumer_allocations(consumer_uuid)):
        raise not_found(f"No allocations for consumer '{consumer_uuid}'")
    return Resp(204)
