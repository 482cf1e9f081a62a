"""Resource providers: /resource_providers and /resource_providers/{uuid}."""

from __future__ import annotations

import copy
import uuid as uuidlib
from typing import Any

from claimant.api.placement import errors
from claimant.api.placement.common import (
    Filters,
    check_classes_exist,
    check_traits_exist,
    get_provider,
    parse_in_tree,
    parse_member_of,
    parse_required,
    parse_resources,
    provider_url,
)
from claimant.api.placement.errors import bad_request, conflict, not_found
from claimant.api.placement.framework import Req, Resp
from claimant.model import (
    AlreadyExists,
    InUse,
    InvalidInput,
    NotFound,
    Provider,
    check_fit,
    deadline,
)
from claimant.store.base import ProviderFilter

POST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 200},
        "uuid": {"type": "string", "format": "uuid"},
    },
    "required": ["name"],
    "additionalProperties": False,
}
PUT_SCHEMA = copy.deepcopy(POST_SCHEMA)
PUT_SCHEMA["properties"].pop("uuid")
# 1.14: parent_provider_uuid
POST_SCHEMA_1_14 = copy.deepcopy(POST_SCHEMA)
POST_SCHEMA_1_14["properties"]["parent_provider_uuid"] = {
    "anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]
}
PUT_SCHEMA_1_14 = copy.deepcopy(POST_SCHEMA_1_14)
PUT_SCHEMA_1_14["properties"].pop("uuid")

LIST_SCHEMA_1_0: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "uuid": {"type": "string", "format": "uuid"}},
    "additionalProperties": False,
}
# 1.3: member_of
LIST_SCHEMA_1_3 = copy.deepcopy(LIST_SCHEMA_1_0)
LIST_SCHEMA_1_3["properties"]["member_of"] = {"type": "string"}
# 1.4: resources
LIST_SCHEMA_1_4 = copy.deepcopy(LIST_SCHEMA_1_3)
LIST_SCHEMA_1_4["properties"]["resources"] = {"type": "string"}
# 1.14: in_tree
LIST_SCHEMA_1_14 = copy.deepcopy(LIST_SCHEMA_1_4)
LIST_SCHEMA_1_14["properties"]["in_tree"] = {"type": "string", "format": "uuid"}
# 1.18: required
LIST_SCHEMA_1_18 = copy.deepcopy(LIST_SCHEMA_1_14)
LIST_SCHEMA_1_18["properties"]["required"] = {"type": "string"}


def serialize(req: Req, p: Provider) -> dict[str, Any]:
    url = provider_url(p.uuid)
    rels = ["inventories", "usages"]
    if req.want(1):
        rels.append("aggregates")
    if req.want(6):
        rels.append("traits")
    if req.want(11):
        rels.append("allocations")
    data: dict[str, Any] = {
        "uuid": p.uuid,
        "name": p.name,
        "generation": p.generation,
        "links": [{"rel": "self", "href": url}] + [{"rel": r, "href": f"{url}/{r}"} for r in rels],
    }
    if req.want(14):
        data["parent_provider_uuid"] = p.parent_uuid
        data["root_provider_uuid"] = p.root_uuid
    return data


def _changed(p: Provider) -> float:
    return p.updated_at or p.created_at


def create(req: Req) -> Resp:
    data = req.json(POST_SCHEMA_1_14 if req.want(14) else POST_SCHEMA)
    uuid = str(uuidlib.UUID(data["uuid"])) if data.get("uuid") else str(uuidlib.uuid4())
    name = data["name"]
    parent = data.get("parent_provider_uuid")
    if parent is not None:
        parent = str(uuidlib.UUID(parent))
        fail = f'Unable to create resource provider "{name}", {uuid}: Object action create '
        if parent == uuid:
            raise bad_request(
                fail + "failed because: parent provider UUID cannot be same as UUID. Please "
                "set parent provider UUID to None if there is no parent."
            )
        try:
            req.store.get_provider(parent)
        except NotFound:
            raise bad_request(
                fail + "failed because: parent provider UUID does not exist."
            ) from None
    _refuse_duplicate(req, uuid, name)
    try:
        p = req.store.create_provider(Provider(uuid=uuid, name=name, parent_uuid=parent))
    except AlreadyExists:
        # lost a race with another create: word it as Placement does
        _refuse_duplicate(req, uuid, name)
        raise
    headers = {"location": provider_url(uuid)}
    if req.want(20):
        return Resp(200, serialize(req, p), headers).modified(req, _changed(p))
    return Resp(201, None, headers)


def _refuse_duplicate(req: Req, uuid: str, name: str) -> None:
    dupes = []
    if req.store.list_providers(ProviderFilter(uuid=uuid)):
        dupes.append(f"uuid: {uuid}")
    if req.store.list_providers(ProviderFilter(name=name)):
        dupes.append(f"name: {name}")
    if dupes:
        raise conflict(
            f"Conflicting resource provider {', '.join(dupes)} already exists.",
            errors.DUPLICATE_NAME,
        )


def show(req: Req) -> Resp:
    p = get_provider(req, req.args["uuid"])
    return Resp(200, serialize(req, p)).modified(req, _changed(p))


def update(req: Req) -> Resp:
    uuid = req.args["uuid"]
    p = get_provider(req, uuid)
    data = req.json(PUT_SCHEMA_1_14 if req.want(14) else PUT_SCHEMA)
    changes: dict[str, Any] = {}
    if "name" in data and data["name"] != p.name:
        others = req.store.list_providers(ProviderFilter(name=data["name"]))
        if any(o.uuid != uuid for o in others):
            raise conflict(
                f"Conflicting resource provider {data['name']} already exists.",
                errors.DUPLICATE_NAME,
            )
        changes["name"] = data["name"]
    if "parent_provider_uuid" in data:
        parent = data["parent_provider_uuid"]
        parent = str(uuidlib.UUID(parent)) if parent else None
        fail = f"Unable to save resource provider {uuid}: Object action update failed because: "
        if parent != p.parent_uuid:
            if parent is not None:
                try:
                    req.store.get_provider(parent)
                except NotFound:
                    raise bad_request(
                        fail.replace("action update", "action create")
                        + "parent provider UUID does not exist."
                    ) from None
                if p.parent_uuid is not None and not req.want(37):
                    raise bad_request(fail + "re-parenting a provider is not currently allowed.")
                tree = {t.uuid: t for t in req.store.list_providers(ProviderFilter(in_tree=uuid))}
                if parent == uuid or parent in _descendants(uuid, tree.values()):
                    raise bad_request(fail + "creating loop in the provider tree is not allowed.")
            elif not req.want(37):
                raise bad_request(fail + "un-parenting a provider is not currently allowed.")
            changes["parent_uuid"] = parent
    if changes:
        try:
            p = req.store.update_provider_quietly(uuid, **changes)
        except AlreadyExists:
            raise conflict(
                f"Conflicting resource provider {data['name']} already exists.",
                errors.DUPLICATE_NAME,
            ) from None
        except InvalidInput as exc:
            raise bad_request(f"Unable to save resource provider {uuid}: {exc.message}") from None
    return Resp(200, serialize(req, p)).modified(req, _changed(p))


def _descendants(uuid: str, providers: Any) -> set[str]:
    children: dict[str, list[str]] = {}
    for p in providers:
        if p.parent_uuid:
            children.setdefault(p.parent_uuid, []).append(p.uuid)
    out: set[str] = set()
    todo = [uuid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def delete(req: Req) -> Resp:
    uuid = req.args["uuid"]
    try:
        req.store.get_provider(uuid)
    except NotFound:
        raise not_found(f"No resource provider with uuid {uuid} found for delete") from None
    tree = req.store.list_providers(ProviderFilter(in_tree=uuid))
    if any(t.parent_uuid == uuid for t in tree):
        raise conflict(
            f"Unable to delete parent resource provider {uuid}: It has child resource providers.",
            errors.PROVIDER_CANNOT_DELETE_PARENT,
        )
    try:
        req.store.delete_provider(uuid)
    except InUse:
        raise conflict(
            f"Unable to delete resource provider {uuid}: Resource provider has allocations.",
            errors.PROVIDER_IN_USE,
        ) from None
    except NotFound:
        raise not_found(f"No resource provider with uuid {uuid} found for delete") from None
    return Resp(204)


def list_all(req: Req) -> Resp:
    if req.want(18):
        schema = LIST_SCHEMA_1_18
    elif req.want(14):
        schema = LIST_SCHEMA_1_14
    elif req.want(4):
        schema = LIST_SCHEMA_1_4
    elif req.want(3):
        schema = LIST_SCHEMA_1_3
    else:
        schema = LIST_SCHEMA_1_0
    q = req.validate_query(schema)
    f = Filters()
    if "member_of" in q:
        f.member_of, f.forbidden_aggs = parse_member_of(req)
    if "required" in q:
        f.required, f.forbidden = parse_required(req)
        check_traits_exist(req, f.trait_names(), 'Invalid trait(s) in "required" parameter: ')
    if "in_tree" in q:
        f.in_tree = parse_in_tree(q["in_tree"])
    if "resources" in q:
        f.resources = parse_resources(q["resources"])
        check_classes_exist(
            req, set(f.resources), "Invalid resource class in resources parameter: "
        )
    f.check_bounds()
    providers = req.store.list_providers(
        ProviderFilter(uuid=q.get("uuid"), name=q.get("name"), in_tree=f.in_tree)
    )
    out = []
    for p in providers:
        deadline.check("listing resource providers")
        if not (f.traits_ok(p.traits) and f.aggs_ok(p.aggregates)):
            continue
        if f.resources:
            usage = req.store.get_usage(p.uuid)
            used = {rc: u.used for rc, u in usage.usages.items()}
            if not check_fit(usage.provider.inventories, used, f.resources).fits:
                continue
        out.append(p)
    when = max((_changed(p) for p in out), default=None)
    body = {"resource_providers": [serialize(req, p) for p in out]}
    return Resp(200, body).modified(req, when)
