"""/v1/traits (the catalogue) and /v1/providers/{uuid}/traits."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from claimant.api.deps import ProviderPath, StoreDep, check_traits, provider_ref
from claimant.api.schemas.traits import ProviderTraitsPut
from claimant.model import NotFound
from claimant.model.names import validate_custom_name


def list_traits(store: StoreDep, prefix: str | None = None) -> dict[str, Any]:
    names = store.list_traits()
    if prefix:
        names = [n for n in names if n.startswith(prefix)]
    return {"traits": names}


def get_trait(name: str, store: StoreDep) -> dict[str, Any]:
    if name not in set(store.list_traits()):
        raise NotFound(f"no such trait: {name}", name=name)
    return {"name": name}


def create_trait(name: str, store: StoreDep) -> Response:
    created = store.create_trait(validate_custom_name(name, "trait"))
    return Response(status_code=201 if created else 204, headers={"Location": f"/v1/traits/{name}"})


def delete_trait(name: str, store: StoreDep) -> Response:
    store.delete_trait(name)
    return Response(status_code=204)


def _body(uuid: str, generation: int, traits: frozenset[str]) -> dict[str, Any]:
    return {"provider_uuid": uuid, "generation": generation, "traits": sorted(traits)}


def get_provider_traits(uuid: ProviderPath, store: StoreDep) -> dict[str, Any]:
    p = store.get_provider(provider_ref(store, uuid))
    return _body(p.uuid, p.generation, p.traits)


def set_provider_traits(
    uuid: ProviderPath, body: ProviderTraitsPut, store: StoreDep
) -> dict[str, Any]:
    uuid = provider_ref(store, uuid)
    check_traits(store, body.traits)
    p = store.set_traits(uuid, body.generation, body.traits)
    return _body(p.uuid, p.generation, p.traits)
