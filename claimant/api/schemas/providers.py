from __future__ import annotations

from typing import Any

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr

from claimant.api.schemas.aggregates import AggregateRef
from claimant.api.schemas.common import (
    Body,
    CellName,
    Generation,
    Name,
    ResourceClassName,
    TraitName,
)
from claimant.api.schemas.common import UuidStr as Uuid
from claimant.api.schemas.inventories import InventoryBody, inventory_to_dict
from claimant.model import Provider

AttributeValueIn = StrictStr | StrictBool | StrictInt | StrictFloat


class ProviderCreate(Body):
    uuid: Uuid | None = None
    name: Name
    type: StrictStr = "compute"
    parent_uuid: Uuid | None = None
    attributes: dict[StrictStr, AttributeValueIn] = {}
    traits: list[TraitName] = []
    aggregates: list[AggregateRef] = []  # uuids or names (resolved by the handler)
    inventories: dict[ResourceClassName, InventoryBody] = {}
    enabled: StrictBool = True
    # The home cell; left out: the cell of the service that creates it.
    cell: CellName | None = None


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


# May be left out, may not be null.
Omittable: Any = Field(default=None, json_schema_extra=_no_default)


class ProviderUpdate(Body):
    """Only the fields given change; ``parent_uuid: null`` makes it a root.
    The others may be left out but are not nullable (the schema says so:
    issue 9, "no nullable fields that are refused as null")."""

    generation: Generation
    name: Name = Omittable
    parent_uuid: Uuid | None = None
    attributes: dict[StrictStr, AttributeValueIn] = Omittable
    enabled: StrictBool = Omittable


def provider_to_dict(p: Provider) -> dict[str, Any]:
    return {
        "uuid": p.uuid,
        "name": p.name,
        "type": p.type,
        "parent_uuid": p.parent_uuid,
        "root_uuid": p.root_uuid,
        "generation": p.generation,
        "enabled": p.enabled,
        "attributes": dict(p.attributes),
        "traits": sorted(p.traits),
        "aggregates": sorted(p.aggregates),
        "inventories": {rc: inventory_to_dict(inv) for rc, inv in sorted(p.inventories.items())},
        "heartbeat_at": p.heartbeat_at,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "cell": p.cell,
    }
