"""/v1/providers/{uuid}/inventories: show and replace, with the generation."""

from __future__ import annotations

from typing import Any

from claimant.api.deps import ProviderPath, StoreDep, check_resource_classes, provider_ref
from claimant.api.schemas.inventories import InventoriesPut, inventory_to_dict
from claimant.model import Provider


def _body(p: Provider) -> dict[str, Any]:
    return {
        "provider_uuid": p.uuid,
        "generation": p.generation,
        "inventories": {rc: inventory_to_dict(inv) for rc, inv in sorted(p.inventories.items())},
    }


def get_inventories(uuid: ProviderPath, store: StoreDep) -> dict[str, Any]:
    return _body(store.get_provider(provider_ref(store, uuid)))


def set_inventories(uuid: ProviderPath, body: InventoriesPut, store: StoreDep) -> dict[str, Any]:
    uuid = provider_ref(store, uuid)
    check_resource_classes(store, body.inventories)
    classes = {rc.name: rc for rc in store.list_resource_classes()}
    inventories = {
        rc: inv.to_model(rc).validate(discrete=classes[rc].discrete if rc in classes else False)
        for rc, inv in body.inventories.items()
    }
    return _body(store.set_inventories(uuid, body.generation, inventories))
