"""The candidate engine: every way a request of several groups can be met
by provider trees and sharing providers, found by a depth-first search with
pruning. Both APIs call it; ``api/`` only translates."""

from claimant.scheduler.candidates.engine import find_allocation_candidates
from claimant.scheduler.candidates.request import (
    SHARING_TRAIT,
    AllocationRequest,
    CandidateRequest,
    CandidateResult,
    GroupSpec,
    SearchStats,
)

__all__ = [
    "SHARING_TRAIT",
    "AllocationRequest",
    "CandidateRequest",
    "CandidateResult",
    "GroupSpec",
    "SearchStats",
    "find_allocation_candidates",
]
