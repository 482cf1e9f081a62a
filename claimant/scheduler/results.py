"""What ``Scheduler.place`` gives back: the claims of each instance placed,
and counts of what it took to place them."""

from __future__ import annotations

from dataclasses import dataclass

from claimant.model import Claim, NoValidHost, Request


@dataclass(slots=True)
class ScheduleStats:
    queries: int = 0  # find_candidates calls (diagnostic ones included)
    candidates_seen: int = 0  # candidates the store returned, summed over queries
    conflicts: int = 0  # claims the store refused (lost compare-and-set, or no longer fits)
    retries: int = 0  # re-reads and re-queries spent from max_claim_retries
    claims_released: int = 0  # claims this call took and gave back
    elapsed_s: float = 0.0

    def add(self, other: ScheduleStats) -> None:
        self.queries += other.queries
        self.candidates_seen += other.candidates_seen
        self.conflicts += other.conflicts
        self.retries += other.retries
        self.claims_released += other.claims_released
        self.elapsed_s += other.elapsed_s


@dataclass(slots=True)
class InstancePlacement:
    consumer_uuid: str
    # One per request group, in group order; for a request with a span=tree
    # group, one per provider used, in provider-uuid order.
    claims: list[Claim]

    @property
    def providers(self) -> list[str]:
        return [c.provider_uuid for c in self.claims]


@dataclass(slots=True)
class ScheduleResult:
    request: Request
    placements: list[InstancePlacement]
    stats: ScheduleStats
    # Set when all_or_nothing is off and not every instance could be placed.
    partial: NoValidHost | None = None
    # The request's record, when place() wrote it with the last claim.
    recorded: Request | None = None
