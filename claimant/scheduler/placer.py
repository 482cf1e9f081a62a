"""What placing one instance takes, whichever way it is placed: the choices
made per group, the generations read, the retry budget, the marks in the
scheduler's in-flight set, the claims written and given back, and the
server-group re-check after claiming. ``FlatPlacer`` (flat.py) places a
provider per group; ``TreePlacer`` (tree.py) a candidate of the engine."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

from claimant.model import Claim, GroupPolicyKind, ProviderUsage
from claimant.scheduler.context import PlacementContext, RequestState
from claimant.scheduler.diagnostics import GroupDiag
from claimant.scheduler.results import ScheduleStats
from claimant.store.base import ClaimSpec

if TYPE_CHECKING:
    from claimant.scheduler.scheduler import Scheduler


class Placer(abc.ABC):
    """Places one instance of a request; ``place`` gives its claims or raises
    ``InstanceFailed``. On any error the claims it took are given back."""

    def __init__(
        self,
        scheduler: Scheduler,
        state: RequestState,
        index: int,
        consumer: str,
        stats: ScheduleStats,
        exclude: frozenset[str],
        held: list[Claim],
    ) -> None:
        self.s = scheduler
        self.exclude = exclude
        self.held = held
        self.cfg = scheduler.config
        self.store = scheduler.store
        self.state = state
        self.request = state.request
        self.groups = state.request.groups
        self.index = index
        self.consumer = consumer
        self.stats = stats
        self.budget = self.cfg.max_claim_retries
        self.choice: dict[int, ProviderUsage] = {}
        # Best known generation per provider (generations only grow).
        self.gens: dict[str, int] = {}
        # Group -> providers its choice marked in the scheduler's in-flight set.
        self.marks: dict[int, list[str]] = {}
        self.diags = [GroupDiag(g) for g in self.groups]
        # Server-group hosts the host group's filters saw (hard policies).
        self.members_seen: set[str] = set()
        self.check_group = False

    @abc.abstractmethod
    def place(self) -> list[Claim]:
        """The instance's claims, or ``InstanceFailed``."""

    def host_root(self) -> str:
        return self.choice[0].provider.root_uuid

    def ctx(self, gi: int) -> PlacementContext:
        return PlacementContext(
            state=self.state,
            group=self.groups[gi],
            group_index=gi,
            consumer_uuid=self.consumer,
            instance_index=self.index,
            chosen={j: c for j, c in self.choice.items() if j != gi},
        )

    def spend(self) -> bool:
        if self.budget <= 0:
            return False
        self.budget -= 1
        self.stats.retries += 1
        return True

    # -- the in-flight set -------------------------------------------------
    def own_marks(self) -> dict[str, int]:
        own: dict[str, int] = {}
        for marked in self.marks.values():
            for p in marked:
                own[p] = own.get(p, 0) + 1
        return own

    def unmark(self, gi: int) -> None:
        marked = self.marks.pop(gi, None)
        if marked:
            self.s.in_flight.release(marked)

    def unmark_all(self) -> None:
        """The instance is placed, failed or raised: its claims' outcome is known."""
        for gi in list(self.marks):
            self.unmark(gi)

    # -- claims ------------------------------------------------------------
    def claim_spec(self, uuid: str, generation: int, amounts: dict[str, int]) -> ClaimSpec:
        return ClaimSpec(
            provider_uuid=uuid,
            expected_generation=generation,
            amounts=dict(amounts),
            consumer_uuid=self.consumer,
            request_uuid=self.request.uuid,
            group=self.request.hints.group,
            project_id=self.request.project_id,
            user_id=self.request.user_id,
            ttl=self.cfg.claim_ttl,
        )

    def server_group_race(self, claims: list[Claim]) -> str:
        """Re-read the server group after claiming: a hard policy broken by a
        concurrent placement is reported (the filters saw the group before
        either claim existed). Whoever sees the other gives way, so at worst
        both retry; never both stay."""
        hints = self.request.hints
        policy = hints.group_policy
        if not self.check_group or not hints.group:
            return ""
        root = self.choice[0].provider.root_uuid
        fresh = self.state.read_server_group()
        if policy == GroupPolicyKind.ANTI_AFFINITY:
            # Ours counts one; the filter already kept us off hosts with members.
            if fresh.get(root, 0) > 1:
                return (
                    f"anti-affinity: a concurrent scheduler placed another member of "
                    f"{hints.group!r} on this host"
                )
            return ""
        if self.members_seen:
            return ""  # members existed: the filter pinned us to their hosts
        others = sorted(r for r in fresh if r != root)
        if others:
            return (
                f"affinity: a concurrent scheduler placed the first member of "
                f"{hints.group!r} on another host ({others[0]})"
            )
        return ""

    def give_back(self, taken: list[tuple[int, Claim]], *, quiet: bool = False) -> None:
        """Release ``taken`` (and empty it, so nothing is given back twice).
        A release the store failed raises after every claim was tried, unless
        ``quiet`` (an error is already on its way); either way the claim is
        in ``self.held``."""
        claims = [c for _, c in taken]
        taken.clear()
        released, error = self.s.release_into(claims, self.held)
        self.stats.claims_released += released
        for claim in claims:
            uuid = claim.provider_uuid
            # Our claim and its release each bumped the generation by one.
            self.gens[uuid] = self.gens.get(uuid, 0) + 1
        if error is not None and not quiet:
            raise error

    def drop(self, gi: int, cand: ProviderUsage, reason: str, *, lost: bool) -> None:
        """Give up group ``gi``'s choice ``cand``, saying why; ``lost``: to
        a concurrent claim (its pool may be worth querying again)."""
        self.diags[gi].drop(cand.provider.name, reason)
        self.choice.pop(gi, None)
        self.unmark(gi)
        self.dropped(gi, lost=lost)

    @abc.abstractmethod
    def dropped(self, gi: int, *, lost: bool) -> None:
        """What else a placer forgets when it drops group ``gi``'s choice."""
