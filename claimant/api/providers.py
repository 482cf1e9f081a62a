"""/v1/providers: create, list (with filters), show, update, delete."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from fastapi import Query, Response

from claimant.api import query
from claimant.api.deps import (
    HeartbeatTimeoutDep,
    ProviderPath,
    StoreDep,
    check_resource_classes,
    check_traits,
    provider_ref,
    resolve_aggregates,
)
from claimant.api.schemas.providers import ProviderCreate, ProviderUpdate, provider_to_dict
from claimant.model import (
    InvalidInput,
    NotFound,
    Provider,
    RequestGroup,
    Usage,
    new_uuid,
    provider_health,
)
from claimant.model.provider import normalize_uuid
from claimant.model.resources import validate_amounts
from claimant.store import UNSET, ProviderFilter, Store


def parse_resources(value: str) -> dict[str, int]:
    """``VCPU:2,MEMORY_MB:512`` (Placement's syntax) -> {"VCPU": 2, "MEMORY_MB": 512}."""
    out: dict[str, int] = {}
    for part in value.split(","):
        rc, sep, amount = part.partition(":")
        rc = rc.strip()
        if not sep or not rc or not amount.strip().lstrip("-").isdigit():
            raise InvalidInput(
                f"resources must look like VCPU:2,MEMORY_MB:512; got {value!r}", field="resources"
            )
        if rc in out:
            raise InvalidInput(f"resources names {rc} twice", field="resources")
        out[rc] = int(amount)
    return validate_amounts(out)


def parse_required(values: list[str]) -> tuple[set[str], set[str], list[frozenset[str]]]:
    """``required=A,!B`` and ``required=in:C,D`` -> (required, forbidden, any-of sets)."""
    required: set[str] = set()
    forbidden: set[str] = set()
    any_of: list[frozenset[str]] = []
    for value in values:
        try:
            traits = query.parse_traits(value)
        except query.QuerySyntaxError as exc:
            raise _syntax_error("required", exc) from None
        for names in traits.required:
            if value.startswith("in:"):
                any_of.append(names)
            else:
                required |= names
        forbidden |= traits.forbidden
        _check_lengths("required", value, [*traits.required, traits.forbidden])
    return required, forbidden, any_of


def parse_member_of(store: Store, values: list[str]) -> tuple[list[frozenset[str]], set[str]]:
    """``member_of=in:A1,A2`` or ``member_of=A1,A2`` or ``member_of=A1`` (any
    of), ``member_of=!A3`` or ``!in:A3,A4`` (none of); each A a uuid or an
    aggregate's name."""
    any_of: list[frozenset[str]] = []
    forbidden: set[str] = set()
    for value in values:
        try:
            term = query.parse_member_of(value)
        except query.QuerySyntaxError as exc:
            raise _syntax_error("member_of", exc) from None
        refs = [r.strip() for r in (term.any_of if term.any_of is not None else term.none_of)]
        if not all(refs):
            raise _syntax_error(
                "member_of", query.QuerySyntaxError(query.Problem.EMPTY_NAME, value)
            )
        _check_lengths("member_of", value, [refs])
        aggs = resolve_aggregates(store, refs, "member_of")
        if term.any_of is not None:
            any_of.append(frozenset(aggs))
        else:
            forbidden |= aggs
    return any_of, forbidden


_SYNTAX = {
    query.Problem.EMPTY_NAME: "an empty name in a comma-separated list",
    query.Problem.FORBIDDEN_IN_ANY_OF: "in: takes no forbidden (!) names",
}


def _syntax_error(field: str, exc: query.QuerySyntaxError) -> InvalidInput:
    why = _SYNTAX.get(exc.problem, str(exc.problem))
    return InvalidInput(f"{field}: {exc.value!r}: {why}", field=field)


def _check_lengths(field: str, value: str, names: Iterable[Iterable[str]]) -> None:
    if any(len(n) > 255 for group in names for n in group):
        raise InvalidInput(f"{field}: {value!r}: a name is longer than 255 characters", field=field)


def usage_to_dict(u: Usage) -> dict[str, int]:
    return {"capacity": u.capacity, "used": u.used, "free": u.free}


def _with_state(
    p: Provider, now: float, timeout: float | None, usages: dict[str, Usage] | None = None
) -> dict[str, Any]:
    out = provider_to_dict(p)
    out["health"] = provider_health(p.heartbeat_at, now, timeout).value
    if usages is not None:
        out["usages"] = {rc: usage_to_dict(u) for rc, u in sorted(usages.items())}
    return out


Include = Annotated[
    Literal["usage"] | None,
    Query(description="usage: each provider's capacity, used and free per class"),
]


def list_providers(
    store: StoreDep,
    timeout: HeartbeatTimeoutDep,
    include: Include = None,
    name: str | None = None,
    uuid: str | None = None,
    in_tree: str | None = None,
    member_of: Annotated[list[str] | None, Query()] = None,
    required: Annotated[list[str] | None, Query()] = None,
    resources: str | None = None,
    type: str | None = None,
) -> dict[str, Any]:
    group = None
    if member_of or required or resources or type:
        amounts = parse_resources(resources) if resources else {}
        check_resource_classes(store, amounts)
        req, forbidden, any_traits = parse_required(required or [])
        check_traits(store, req | forbidden | {t for s in any_traits for t in s})
        aggregates, forbidden_aggregates = parse_member_of(store, member_of or [])
        group = RequestGroup(
            resources=amounts,
            required_traits=frozenset(req),
            forbidden_traits=frozenset(forbidden),
            any_traits=tuple(any_traits),
            member_of=tuple(aggregates),
            forbidden_aggregates=frozenset(forbidden_aggregates),
            provider_type=type,
        )
    flt = ProviderFilter(
        uuid=normalize_uuid(uuid, "uuid") if uuid else None,
        name=name,
        in_tree=provider_ref(store, in_tree, "in_tree") if in_tree else None,
        group=group,
    )
    now = store.clock()
    if include == "usage":
        rows = [_with_state(pu.provider, now, timeout, pu.usages) for pu in store.list_usages(flt)]
    else:
        rows = [_with_state(p, now, timeout) for p in store.list_providers(flt)]
    return {"providers": rows}


def _validate_attributes(
    store: Store, type_name: str, attributes: dict[str, Any]
) -> dict[str, Any]:
    try:
        rtype = store.get_resource_type(type_name)
    except NotFound:
        raise InvalidInput(f"no such resource type: {type_name}", field="type") from None
    return rtype.validate_attributes(attributes)


def create_provider(body: ProviderCreate, store: StoreDep, response: Response) -> dict[str, Any]:
    check_resource_classes(store, body.inventories)
    check_traits(store, body.traits)
    attributes = _validate_attributes(store, body.type, body.attributes)
    classes = {rc.name: rc for rc in store.list_resource_classes()} if body.inventories else {}
    inventories = {}
    for rc, inv in body.inventories.items():
        discrete = classes[rc].discrete if rc in classes else False
        inventories[rc] = inv.to_model(rc).validate(discrete=discrete)
    provider = Provider(
        uuid=body.uuid or new_uuid(),
        name=body.name,
        type=body.type,
        parent_uuid=body.parent_uuid,
        attributes=attributes,
        traits=frozenset(body.traits),
        aggregates=frozenset(resolve_aggregates(store, body.aggregates, "aggregates")),
        inventories=inventories,
        enabled=body.enabled,
        cell=body.cell,
    )
    created = store.create_provider(provider)
    response.headers["Location"] = f"/v1/providers/{created.uuid}"
    return provider_to_dict(created)


def get_provider(
    uuid: ProviderPath, store: StoreDep, timeout: HeartbeatTimeoutDep, include: Include = None
) -> dict[str, Any]:
    ref = provider_ref(store, uuid)
    if include == "usage":
        pu = store.get_usage(ref)
        return _with_state(pu.provider, store.clock(), timeout, pu.usages)
    return _with_state(store.get_provider(ref), store.clock(), timeout)


def update_provider(uuid: ProviderPath, body: ProviderUpdate, store: StoreDep) -> dict[str, Any]:
    uuid = provider_ref(store, uuid)
    given = body.model_fields_set
    changes: dict[str, Any] = {}
    if "name" in given:
        changes["name"] = body.name
    if "parent_uuid" in given:
        changes["parent_uuid"] = body.parent_uuid
    if "attributes" in given:
        current = store.get_provider(uuid)
        changes["attributes"] = _validate_attributes(store, current.type, body.attributes)
    if "enabled" in given:
        changes["enabled"] = body.enabled
    updated = store.update_provider(
        uuid,
        body.generation,
        name=changes.get("name", UNSET),
        parent_uuid=changes.get("parent_uuid", UNSET),
        attributes=changes.get("attributes", UNSET),
        enabled=changes.get("enabled", UNSET),
    )
    return provider_to_dict(updated)


def delete_provider(uuid: ProviderPath, store: StoreDep) -> Response:
    store.delete_provider(provider_ref(store, uuid))
    return Response(status_code=204)
