"""/v1/aggregates (names for aggregate uuids) and /v1/providers/{uuid}/aggregates.

Membership is by uuid, as in Placement; wherever the native API takes an
aggregate it also takes a name, resolved here at the edge."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from claimant.api.deps import ProviderPath, StoreDep, provider_ref, resolve_aggregates
from claimant.api.schemas.aggregates import (
    AggregateCreate,
    ProviderAggregatesPut,
    aggregate_to_dict,
)
from claimant.model import Provider, RequestGroup
from claimant.store import ProviderFilter, Store
from claimant.store.base import AggregateName


def _body(p: Provider) -> dict[str, Any]:
    return {"provider_uuid": p.uuid, "generation": p.generation, "aggregates": sorted(p.aggregates)}


def get_provider_aggregates(uuid: ProviderPath, store: StoreDep) -> dict[str, Any]:
    return _body(store.get_provider(provider_ref(store, uuid)))


def set_provider_aggregates(
    uuid: ProviderPath, body: ProviderAggregatesPut, store: StoreDep
) -> dict[str, Any]:
    aggregates = resolve_aggregates(store, body.aggregates, "aggregates")
    return _body(store.set_aggregates(provider_ref(store, uuid), body.generation, aggregates))


def list_aggregates(store: StoreDep) -> dict[str, Any]:
    members: dict[str, int] = {}
    for p in store.list_providers():
        for agg in p.aggregates:
            members[agg] = members.get(agg, 0) + 1
    return {
        "aggregates": [
            {**aggregate_to_dict(a), "providers": members.get(a.uuid, 0)}
            for a in store.list_aggregates()
        ]
    }


def create_aggregate(body: AggregateCreate, store: StoreDep, response: Response) -> dict[str, Any]:
    a = store.create_aggregate(body.name, body.uuid)
    response.headers["Location"] = f"/v1/aggregates/{a.uuid}"
    return _with_members(store, a)


def get_aggregate(name_or_uuid: str, store: StoreDep) -> dict[str, Any]:
    return _with_members(store, store.get_aggregate(name_or_uuid))


def _with_members(store: Store, a: AggregateName) -> dict[str, Any]:
    group = RequestGroup(member_of=(frozenset({a.uuid}),))
    found = store.list_providers(ProviderFilter(group=group))
    return {
        **aggregate_to_dict(a),
        "providers": len(found),
        "members": [{"uuid": p.uuid, "name": p.name} for p in sorted(found, key=lambda p: p.name)],
    }


def delete_aggregate(name_or_uuid: str, store: StoreDep) -> Response:
    store.delete_aggregate(name_or_uuid)
    return Response(status_code=204)
