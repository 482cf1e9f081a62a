"""What the candidate engine is asked and what it answers."""

from __future__ import annotations

from dataclasses import dataclass, field

from claimant.model import ProviderUsage

#: Placement's trait for a provider whose inventory is shared with every tree
#: that has a provider in one of its aggregates.
SHARING_TRAIT = "MISC_SHARES_VIA_AGGREGATE"


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """One request group. ``granular`` groups (Placement's suffixed ones) are
    met by one provider; the unnumbered group may take each class from a
    different provider of one tree, or from a sharing provider linked to it."""

    suffix: str = ""
    resources: dict[str, int] = field(default_factory=dict)
    # AND of any-of sets: each set needs at least one of its traits.
    required: tuple[frozenset[str], ...] = ()
    forbidden: frozenset[str] = frozenset()
    # AND of any-of sets of aggregates.
    member_of: tuple[frozenset[str], ...] = ()
    forbidden_aggs: frozenset[str] = frozenset()
    in_tree: str | None = None
    granular: bool = False

    def traits_ok(self, traits: frozenset[str]) -> bool:
        return all(s & traits for s in self.required) and not (self.forbidden & traits)


@dataclass(frozen=True, slots=True)
class CandidateRequest:
    groups: tuple[GroupSpec, ...]
    # "isolate": granular groups on distinct providers; anything else: no rule.
    group_policy: str | None = None
    # Each set of suffixes: their providers all lie under one of those providers.
    same_subtrees: tuple[frozenset[str], ...] = ()
    root_required: frozenset[str] = frozenset()
    root_forbidden: frozenset[str] = frozenset()
    limit: int | None = None
    # False (Placement before 1.29): a candidate may not use two providers of
    # one tree, and summaries show only the providers used.
    nested_aware: bool = True
    #: every candidate of one tree before the next (Placement's depth-first);
    #: default: one per tree in turn
    depth_first: bool = False


@dataclass(frozen=True, slots=True)
class AllocationRequest:
    """One way to satisfy every group: amounts per provider, and which
    providers met which group."""

    anchor: str
    allocations: dict[str, dict[str, int]]
    mappings: dict[str, tuple[str, ...]]


@dataclass(slots=True)
class SearchStats:
    """Deterministic costs of one search (tests assert on these, never on time)."""

    nodes: int = 0
    trees: int = 0
    pages: int = 0


@dataclass(slots=True)
class CandidateResult:
    allocation_requests: list[AllocationRequest]
    # Providers to summarise, by uuid order, with the usage they were decided on.
    summaries: list[ProviderUsage]
    stats: SearchStats
