"""/v1/providers/{uuid}/aggregates."""

from __future__ import annotations

from typing import Any

from claimant.api.deps import ProviderPath, StoreDep, provider_ref
from claimant.api.schemas.aggregates import ProviderAggregatesPut
from claimant.model import Provider


def _body(p: Provider) -> dict[str, Any]:
    return {"provider_uuid": p.uuid, "generation": p.generation, "aggregates": sorted(p.aggregates)}


def get_provider_aggregates(uuid: ProviderPath, store: StoreDep) -> dict[str, Any]:
    return _body(store.get_provider(provider_ref(store, uuid)))


def set_provider_aggregates(
    uuid: ProviderPath, body: ProviderAggregatesPut, store: StoreDep
) -> dict[str, Any]:
    return _body(store.set_aggregates(provider_ref(store, uuid), body.generation, body.aggregates))
