"""Requests: first-class, persisted objects. A flavor is only a template."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from claimant.model.errors import InvalidInput
from claimant.model.resources import validate_amounts
from claimant.model.types import AttributeConstraint


class GroupPolicy(StrEnum):
    NONE = "none"  # groups may share a provider
    ISOLATE = "isolate"  # every group on a different provider


class Span(StrEnum):
    """Where one group's resources may come from."""

    PROVIDER = "provider"  # one provider meets the whole group
    # Each class from any provider of one tree (Placement's unnumbered group).
    TREE = "tree"


class Strategy(StrEnum):
    SPREAD = "spread"  # prefer the emptiest providers
    PACK = "pack"  # prefer the fullest providers that still fit


class GroupPolicyKind(StrEnum):
    """Server-group policies, as in Nova."""

    AFFINITY = "affinity"
    ANTI_AFFINITY = "anti-affinity"
    SOFT_AFFINITY = "soft-affinity"
    SOFT_ANTI_AFFINITY = "soft-anti-affinity"


class RequestStatus(StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"  # claims written, not yet confirmed
    # Some instances placed (or built), not all: all_or_nothing was off.
    PARTIAL = "partial"
    BUILDING = "building"
    ACTIVE = "active"  # every claim confirmed into an allocation
    FAILED = "failed"  # ``reason`` says why
    # Scheduled, but every claim expired before anyone confirmed it.
    EXPIRED = "expired"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class RequestGroup:
    """What one provider must satisfy. Every field is a condition the store query
    can express, except where noted in the scheduler."""

    name: str = ""
    resources: dict[str, int] = field(default_factory=dict)
    required_traits: frozenset[str] = frozenset()
    forbidden_traits: frozenset[str] = frozenset()
    # Each set: the provider has at least one of these traits.
    any_traits: tuple[frozenset[str], ...] = ()
    attributes: tuple[AttributeConstraint, ...] = ()
    # Each set: the provider is in at least one of these aggregates.
    member_of: tuple[frozenset[str], ...] = ()
    forbidden_aggregates: frozenset[str] = frozenset()
    in_tree: str | None = None
    provider_type: str | None = None
    span: Span = Span.PROVIDER

    def validate(self) -> RequestGroup:
        if not self.resources:
            raise InvalidInput(f"request group {self.name or '(default)'} asks for no resources")
        if not isinstance(self.span, Span):
            raise InvalidInput(f"unknown span {self.span!r}", field="span")
        validate_amounts(self.resources)
        clash = self.required_traits & self.forbidden_traits
        if clash:
            raise InvalidInput(f"traits both required and forbidden: {', '.join(sorted(clash))}")
        return self

    def evolve(self, **changes: Any) -> RequestGroup:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Hints:
    """Placement hints: filters and weighers a store query cannot express."""

    group: str | None = None  # server-group name
    group_policy: GroupPolicyKind | None = None
    same_host: tuple[str, ...] = ()  # consumer uuids
    different_host: tuple[str, ...] = ()
    strategy: Strategy = Strategy.SPREAD


@dataclass(frozen=True, slots=True)
class Request:
    uuid: str
    groups: tuple[RequestGroup, ...]
    project_id: str = ""
    user_id: str = ""
    group_policy: GroupPolicy = GroupPolicy.NONE
    # Each set of group names: their providers all lie under one of those
    # providers (Placement's same_subtree); placed like a span=tree request.
    same_subtree: tuple[frozenset[str], ...] = ()
    hints: Hints = field(default_factory=Hints)
    count: int = 1
    all_or_nothing: bool = True
    # Each instance i gets consumer uuid consumers[i]; generated if empty.
    consumers: tuple[str, ...] = ()
    status: RequestStatus = RequestStatus.PENDING
    # Claim uuids, in the order they were written.
    claims: tuple[str, ...] = ()
    history: tuple[dict[str, Any], ...] = ()
    # Why the request is failed, partial or expired ("" otherwise).
    reason: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    # The cell (data centre, docs/cells.md) the request is confined to; None:
    # the service's own cell first, then any other.
    cell: str | None = None

    def validate(self) -> Request:
        if not self.groups:
            raise InvalidInput("a request needs at least one request group")
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise InvalidInput("request group names must be unique")
        for g in self.groups:
            g.validate()
        for subtree in self.same_subtree:
            unknown = sorted(set(subtree) - {n for n in names if n})
            if not subtree or unknown:
                raise InvalidInput(
                    "same_subtree lists names of named groups"
                    + (f"; not found: {', '.join(map(repr, unknown))}" if unknown else ""),
                    field="same_subtree",
                )
        if self.spans_trees:
            for g in self.groups:
                # The candidate engine matches traits, aggregates and trees;
                # attributes and types are per provider and it has no notion of them.
                if g.attributes or g.provider_type:
                    raise InvalidInput(
                        f"request group {g.name or '(default)'}: attributes and "
                        "provider_type cannot be used in a request with a span=tree "
                        "group or same_subtree",
                        field="span",
                    )
        if not 1 <= self.count <= 1000:
            raise InvalidInput("count must be between 1 and 1000", field="count")
        if self.consumers and len(self.consumers) != self.count:
            raise InvalidInput("consumers must list one uuid per instance", field="consumers")
        return self

    @property
    def spans_trees(self) -> bool:
        """Placed through the candidate engine (a group may span a tree)."""
        return bool(self.same_subtree) or any(g.span == Span.TREE for g in self.groups)

    def evolve(self, **changes: Any) -> Request:
        return replace(self, **changes)
