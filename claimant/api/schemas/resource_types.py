from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictStr

from claimant.api.schemas.common import Body, TypeName
from claimant.model.types import AttributeSpec, ResourceType


class AttributeSpecBody(Body):
    name: TypeName
    kind: Literal["string", "integer", "number", "boolean"]
    required: StrictBool = False
    description: Annotated[StrictStr, Field(max_length=1000)] = ""


class ResourceTypeCreate(Body):
    name: TypeName
    description: Annotated[StrictStr, Field(max_length=1000)] = ""
    attributes: list[AttributeSpecBody] = []

    def to_model(self) -> ResourceType:
        return ResourceType(
            self.name,
            tuple(
                AttributeSpec(a.name, a.kind, a.required, a.description) for a in self.attributes
            ),
            self.description,
            builtin=False,
        )
