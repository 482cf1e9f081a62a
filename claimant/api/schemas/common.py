"""Field types shared by every schema. Bodies forbid unknown fields and take
JSON types strictly: ``"1"`` is not an integer, ``1`` is not a boolean."""

from __future__ import annotations

import uuid as uuidlib
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
)

from claimant.model.resources import MAX_INT


def _uuid(value: str) -> str:
    try:
        return str(uuidlib.UUID(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a UUID") from None


def _integral(value: object) -> object:
    """JSON has one number type: 3.0 is the integer 3, as JSON Schema says;
    3.5, "3" and true are still not integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Any form uuid.UUID parses is accepted; the canonical dashed form is returned.
UuidStr = Annotated[StrictStr, AfterValidator(_uuid), Field(json_schema_extra={"format": "uuid"})]
Name = Annotated[StrictStr, Field(min_length=1, max_length=200)]
# A cell: a data centre's name as the snitch reports it (docs/cells.md).
CellName = Annotated[
    StrictStr,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="a cell (data centre, docs/cells.md); unknown ones are 400 unknown_cell",
    ),
]
ResourceClassName = Annotated[StrictStr, Field(pattern=r"^[A-Z0-9_]+$", max_length=255)]
TraitName = Annotated[StrictStr, Field(pattern=r"^[A-Z0-9_]+$", max_length=255)]
CustomName = Annotated[StrictStr, Field(pattern=r"^CUSTOM_[A-Z0-9_]+$", max_length=255)]
TypeName = Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
# The integer bounds go inside, before the validator, so that the JSON schema
# shows them as minimum/maximum.
Integral = BeforeValidator(_integral)
Amount = Annotated[StrictInt, Field(ge=1, le=MAX_INT), Integral]
# At most 2^53-1: validators that read JSON numbers as doubles (JavaScript,
# jsonschema-rs) cannot tell larger neighbours apart.
Generation = Annotated[StrictInt, Field(ge=0, le=2**53 - 1), Integral]
