"""Claims and allocations: entries in a provider's own ledger.

In the store a ledger entry holds *negative* amounts (the seed: "the same
format as the compute node record, but with negative amounts"), so that
free = capacity + sum(claims) + sum(allocations). This model carries the
amounts positive, as users think of them; ``ledger_amounts`` gives the
stored form.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

DEFAULT_CLAIM_TTL = 300.0


class ClaimStatus(StrEnum):
    CLAIMED = "claimed"  # reserved by a scheduler; expires unless confirmed
    CONFIRMED = "confirmed"  # an allocation: the provider built the consumer


@dataclass(frozen=True, slots=True)
class Claim:
    uuid: str
    provider_uuid: str
    consumer_uuid: str
    amounts: dict[str, int]
    status: ClaimStatus = ClaimStatus.CLAIMED
    request_uuid: str | None = None
    # Server group the consumer belongs to (affinity filters read it).
    group: str | None = None
    project_id: str = ""
    user_id: str = ""
    created_at: float = 0.0
    # None for confirmed allocations: they do not expire.
    expires_at: float | None = None

    def ledger_amounts(self) -> dict[str, int]:
        return {rc: -n for rc, n in self.amounts.items()}

    def is_live(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now

    def evolve(self, **changes: Any) -> Claim:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Consumer:
    """Who holds allocations. ``generation`` guards Placement-style writes."""

    uuid: str
    project_id: str
    user_id: str
    consumer_type: str = "INSTANCE"
    generation: int = 0


@dataclass(frozen=True, slots=True)
class ConsumerAllocations:
    """The whole set of allocations one consumer should hold after a write.
    An empty ``allocations`` removes the consumer's allocations."""

    consumer_uuid: str
    project_id: str
    user_id: str
    allocations: dict[str, dict[str, int]] = field(default_factory=dict)
    consumer_type: str | None = None
    # None: the consumer must not exist yet (or hold nothing); "any": no check.
    expected_generation: int | str | None = "any"
    # provider uuid -> generation the caller saw; checked when given.
    provider_generations: dict[str, int] = field(default_factory=dict)
