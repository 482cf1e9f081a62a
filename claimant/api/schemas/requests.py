from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr

from claimant.api.schemas.common import (
    Amount,
    Body,
    ResourceClassName,
    TraitName,
    TypeName,
    UuidStr,
)

Scalar = StrictStr | StrictBool | StrictInt | StrictFloat
GroupName = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_-]{0,64}$")]


class AttributeConstraintBody(Body):
    name: TypeName
    op: Literal["==", "!=", "<", "<=", ">", ">=", "in"]
    value: Scalar | Annotated[list[Scalar], Field(min_length=1)]


class GroupBody(Body):
    """What one provider must satisfy."""

    name: GroupName = ""
    resources: Annotated[dict[ResourceClassName, Amount], Field(min_length=1)]
    required_traits: list[TraitName] = []
    forbidden_traits: list[TraitName] = []
    # Each inner list: the provider has at least one of these traits.
    any_traits: list[Annotated[list[TraitName], Field(min_length=1)]] = []
    attributes: list[AttributeConstraintBody] = []
    # Each inner list: the provider is in at least one of these aggregates.
    member_of: list[Annotated[list[UuidStr], Field(min_length=1)]] = []
    forbidden_aggregates: list[UuidStr] = []
    in_tree: UuidStr | None = None
    provider_type: TypeName | None = None


class FlavorBody(Body):
    """A template for one (unnamed) group. ``extra`` holds more resources
    (``{"VGPU": 1}`` or Nova's ``{"resources:VGPU": "1"}``) and traits
    (``{"trait:HW_CPU_X86_AVX2": "required"}``)."""

    name: Annotated[StrictStr, Field(max_length=200)] = ""
    vcpus: Amount
    memory_mb: Amount
    disk_gb: Annotated[StrictInt, Field(ge=0)] = 0
    extra: dict[Annotated[StrictStr, Field(max_length=300)], StrictInt | StrictStr] = {}


class HintsBody(Body):
    group: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    group_policy: (
        Literal["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"] | None
    ) = None
    same_host: list[UuidStr] = []
    different_host: list[UuidStr] = []
    strategy: Literal["spread", "pack"] = "spread"


class RequestCreate(Body):
    uuid: UuidStr | None = None
    groups: list[GroupBody] = []
    flavor: FlavorBody | None = None
    project_id: Annotated[StrictStr, Field(max_length=255)] | None = None
    user_id: Annotated[StrictStr, Field(max_length=255)] | None = None
    group_policy: Literal["none", "isolate"] = "none"
    hints: HintsBody = HintsBody()
    count: Annotated[StrictInt, Field(ge=1, le=1000)] = 1
    all_or_nothing: StrictBool = True
    consumers: list[UuidStr] = []
