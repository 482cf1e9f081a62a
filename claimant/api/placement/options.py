"""Placement's ``[placement]`` options for allocation candidates, with
Placement's meanings (``claimant serve --config-file placement.conf``)."""

from __future__ import annotations

from dataclasses import dataclass

DEPTH_FIRST = "depth-first"
BREADTH_FIRST = "breadth-first"


@dataclass(frozen=True, slots=True)
class CandidateOptions:
    #: at most this many candidates are generated per request (-1: no cap);
    #: a request's ``limit`` then picks among them
    max_allocation_candidates: int = -1
    #: depth-first: every candidate of one tree before the next tree;
    #: breadth-first: one candidate per tree in turn. claimant's default is
    #: breadth-first (a ``limit`` leaves candidates on many hosts); Placement's
    #: is depth-first, and an operator's setting is honoured.
    allocation_candidates_generation_strategy: str = BREADTH_FIRST
    #: with a ``limit``, a random sample of all candidates instead of the first
    randomize_allocation_candidates: bool = False

    def __post_init__(self) -> None:
        if self.max_allocation_candidates == 0 or self.max_allocation_candidates < -1:
            raise ValueError("max_allocation_candidates must be -1 or positive")
        if self.allocation_candidates_generation_strategy not in (DEPTH_FIRST, BREADTH_FIRST):
            raise ValueError(
                "allocation_candidates_generation_strategy: depth-first or breadth-first"
            )
