from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StrictInt

from claimant.api.bounds import MAX_INT64
from claimant.api.schemas.common import Body, Generation, Integral, ResourceClassName
from claimant.model import InvalidInput, Inventory
from claimant.model.resources import MAX_INT

_Total = Annotated[StrictInt, Field(ge=1, le=MAX_INT), Integral]
_Count = Annotated[StrictInt, Field(ge=0, le=MAX_INT), Integral]


def _number(value: object) -> object:
    """A JSON number (not a string or a boolean, which lax floats accept)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return float(value)


class InventoryBody(Body):
    total: _Total
    reserved: _Count = 0
    min_unit: _Total = 1
    max_unit: _Total = MAX_INT
    step_size: _Total = 1
    # a JSON number, integer or not (a bound on a union is lost from the JSON schema)
    allocation_ratio: Annotated[float, Field(gt=0), BeforeValidator(_number)] = 1.0

    def to_model(self, resource_class: str) -> Inventory:
        if (self.total - self.reserved) * self.allocation_ratio > MAX_INT64:
            raise InvalidInput(
                f"{resource_class}: capacity (total - reserved) * allocation_ratio must be "
                f"at most {MAX_INT64}",
                field="allocation_ratio",
            )
        return Inventory(
            resource_class=resource_class,
            total=self.total,
            reserved=self.reserved,
            min_unit=self.min_unit,
            max_unit=self.max_unit,
            step_size=self.step_size,
            allocation_ratio=float(self.allocation_ratio),
        )


class InventoriesPut(Body):
    generation: Generation
    inventories: dict[ResourceClassName, InventoryBody]


def inventory_to_dict(inv: Inventory) -> dict[str, Any]:
    return {
        "total": inv.total,
        "reserved": inv.reserved,
        "min_unit": inv.min_unit,
        "max_unit": inv.max_unit,
        "step_size": inv.step_size,
        "allocation_ratio": inv.allocation_ratio,
        "capacity": inv.capacity,
    }
