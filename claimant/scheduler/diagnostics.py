"""Why a group's candidates were not used: counts and the first few reasons,
for ``NoValidHost`` details, and the fit arithmetic the reasons quote."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from claimant.model import ProviderUsage, RequestGroup
from claimant.store.base import CandidateQuery

# Reasons kept per filter and group in NoValidHost details; the counts are exact.
MAX_EXAMPLES = 5
# Who rejects a candidate for its cell in a group's diagnostics (not a filter
# plugin: a request's cell is always honoured, whatever filters are on).
CELL = "cell"


@dataclass(slots=True)
class GroupDiag:
    """Why one group's candidates were not used, for NoValidHost details."""

    group: RequestGroup
    queries: int = 0
    candidates: int = 0
    passed: int = 0
    rejected: dict[str, list[str]] = field(default_factory=dict)
    rejected_counts: dict[str, int] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    lost_count: int = 0
    store: str = ""
    empty_query: CandidateQuery | None = None

    def reject(self, who: str, candidate: ProviderUsage, reason: str) -> None:
        self.rejected_counts[who] = self.rejected_counts.get(who, 0) + 1
        examples = self.rejected.setdefault(who, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(f"{candidate.provider.name} ({candidate.provider.uuid}): {reason}")

    def drop(self, provider: str, reason: str) -> None:
        self.lost_count += 1
        if len(self.lost) < MAX_EXAMPLES:
            self.lost.append(f"{provider}: {reason}")

    def summary(self) -> str:
        if self.queries and not self.candidates:
            return self.store or "the store found no provider that fits"
        parts = [f"{self.candidates} candidate(s) from the store"]
        for who, n in sorted(self.rejected_counts.items()):
            parts.append(f"{n} rejected by {who} (first: {self.rejected[who][0]})")
        if self.lost_count:
            parts.append(f"{self.lost_count} dropped ({'; '.join(self.lost[:2])})")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "group": self.group.name,
            "resources": dict(self.group.resources),
            "queries": self.queries,
            "candidates": self.candidates,
            "passed_filters": self.passed,
            "rejected": {
                who: {"count": self.rejected_counts[who], "examples": ex}
                for who, ex in sorted(self.rejected.items())
            },
            "lost": {"count": self.lost_count, "examples": self.lost},
        }
        if self.store:
            out["store"] = self.store
        return out


class InstanceFailed(Exception):
    """One instance could not be placed; carries the group that ran out."""

    def __init__(self, group_index: int, why: str) -> None:
        super().__init__(why)
        self.group_index = group_index
        self.why = why


def amount_problems(usage: ProviderUsage, amounts: dict[str, int]) -> list[str]:
    """Why ``amounts`` do not fit ``usage`` now, with the numbers."""
    reasons = []
    for rc, amount in sorted(amounts.items()):
        u = usage.usages.get(rc)
        if u is None:
            reasons.append(f"{rc}: provider has no inventory of this class")
        elif u.used + amount > u.capacity:
            reasons.append(
                f"{rc}: requested {amount}, used {u.used}, capacity {u.capacity} (free {u.free})"
            )
    return reasons


def add_amounts(total: dict[str, int], amounts: dict[str, int]) -> None:
    for rc, n in amounts.items():
        total[rc] = total.get(rc, 0) + n
