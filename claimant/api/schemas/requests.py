from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr

from claimant.api.bounds import (
    MAX_CLASSES_PER_GROUP,
    MAX_GROUPS,
    MAX_LIST,
    MAX_MEMBER_OF,
    MAX_PLACEMENTS,
)
from claimant.api.schemas.aggregates import AggregateRef
from claimant.api.schemas.common import (
    Amount,
    Body,
    CellName,
    Integral,
    ResourceClassName,
    TraitName,
    TypeName,
    UuidStr,
)
from claimant.model.errors import InvalidInput
from claimant.model.resources import MAX_INT

Scalar = StrictStr | StrictBool | StrictInt | StrictFloat
GroupName = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_-]{0,64}$")]
# Issue 9: every list is bounded, so one request cannot hold the scheduler.
Capped = Field(max_length=MAX_LIST)


class AttributeConstraintBody(Body):
    name: TypeName
    op: Literal["==", "!=", "<", "<=", ">", ">=", "in"]
    value: Scalar | Annotated[list[Scalar], Field(min_length=1, max_length=MAX_LIST)]


class GroupBody(Body):
    """What one provider must satisfy."""

    name: GroupName = ""
    resources: Annotated[
        dict[ResourceClassName, Amount], Field(min_length=1, max_length=MAX_CLASSES_PER_GROUP)
    ]
    required_traits: Annotated[list[TraitName], Capped] = []
    forbidden_traits: Annotated[list[TraitName], Capped] = []
    # Each inner list: the provider has at least one of these traits.
    any_traits: Annotated[
        list[Annotated[list[TraitName], Field(min_length=1, max_length=MAX_LIST)]], Capped
    ] = []
    attributes: Annotated[list[AttributeConstraintBody], Capped] = []
    # Each inner list: the provider is in at least one of these aggregates.
    member_of: Annotated[
        list[Annotated[list[AggregateRef], Field(min_length=1, max_length=MAX_LIST)]],
        Field(max_length=MAX_MEMBER_OF),
    ] = []
    forbidden_aggregates: Annotated[list[AggregateRef], Capped] = []
    in_tree: UuidStr | None = None
    provider_type: TypeName | None = None
    span: Annotated[
        Literal["provider", "tree"],
        Field(
            description="provider: one provider meets the whole group; tree: each class may "
            "come from a different provider of one tree (placed by the candidate engine)"
        ),
    ] = "provider"


class FlavorBody(Body):
    """A template for one (unnamed) group. ``extra`` holds more resources
    (``{"VGPU": 1}`` or Nova's ``{"resources:VGPU": "1"}``) and traits
    (``{"trait:HW_CPU_X86_AVX2": "required"}``)."""

    name: Annotated[StrictStr, Field(max_length=200)] = ""
    vcpus: Amount
    memory_mb: Amount
    disk_gb: Annotated[StrictInt, Field(ge=0, le=MAX_INT), Integral] = 0
    extra: Annotated[
        dict[Annotated[StrictStr, Field(max_length=300)], StrictInt | StrictStr],
        Field(max_length=MAX_CLASSES_PER_GROUP),
    ] = {}


class HintsBody(Body):
    group: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    group_policy: (
        Literal["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"] | None
    ) = None
    same_host: Annotated[list[UuidStr], Capped] = []
    different_host: Annotated[list[UuidStr], Capped] = []
    strategy: Literal["spread", "pack"] = "spread"


class RequestCreate(Body):
    uuid: UuidStr | None = None
    groups: Annotated[list[GroupBody], Field(max_length=MAX_GROUPS)] = []
    flavor: FlavorBody | None = None
    project_id: Annotated[StrictStr, Field(max_length=255)] | None = None
    user_id: Annotated[StrictStr, Field(max_length=255)] | None = None
    group_policy: Literal["none", "isolate"] = "none"
    same_subtree: Annotated[
        list[Annotated[list[GroupName], Field(min_length=1, max_length=MAX_GROUPS)]],
        Field(
            max_length=MAX_GROUPS,
            description="each list of group names: their providers all lie under one of "
            "those providers (Placement's same_subtree); placed by the candidate engine",
        ),
    ] = []
    hints: HintsBody = HintsBody()
    count: Annotated[StrictInt, Field(ge=1, le=1000), Integral] = 1
    all_or_nothing: StrictBool = True
    consumers: Annotated[list[UuidStr], Capped] = []
    # Confined to this cell; left out: the service's own cell first, then
    # any other (docs/cells.md).
    cell: CellName | None = None

    def check_bounds(self) -> None:
        """Rules across fields (JSON schema cannot say them): 400s."""
        groups = len(self.groups) + (self.flavor is not None)
        if groups > MAX_GROUPS:
            raise InvalidInput(
                f"at most {MAX_GROUPS} groups, counting the flavor's", field="groups"
            )
        if groups * self.count > MAX_PLACEMENTS:
            raise InvalidInput(
                f"groups x count is {groups * self.count}: one request makes at most "
                f"{MAX_PLACEMENTS} placements",
                field="count",
            )
