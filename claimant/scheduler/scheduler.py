"""The scheduler: query the store, filter, weigh, pick among the best, claim.

``Scheduler`` builds the plugins and places a request instance by instance;
one instance is placed by ``FlatPlacer`` (flat.py, a provider per group) or
``TreePlacer`` (tree.py, a request spanning a tree). See docs/scheduler.md
for the exact semantics of retries, multi-group requests and partial
placement.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence

from claimant.model import (
    CellUnavailable,
    Claim,
    ClaimantError,
    ClaimNotActive,
    GroupPolicyKind,
    InvalidInput,
    NotFound,
    NoValidHost,
    Request,
    new_uuid,
    normalize_uuid,
)
from claimant.scheduler.config import SchedulerConfig
from claimant.scheduler.context import FailureCounter, RequestState
from claimant.scheduler.diagnostics import GroupDiag, InstanceFailed
from claimant.scheduler.filters import FILTERS, Filter
from claimant.scheduler.flat import FlatPlacer
from claimant.scheduler.inflight import InFlight
from claimant.scheduler.results import InstancePlacement, ScheduleResult, ScheduleStats
from claimant.scheduler.tree import TreePlacer
from claimant.scheduler.weighers import WEIGHERS, Weigher
from claimant.store.base import Store, check_cell

# An instance that could not be placed: its index, why, and every group's diagnostics.
_Failure = tuple[int, InstanceFailed, list[GroupDiag]]


class Scheduler:
    """Places requests. Thread-safe: one instance may serve many threads; each
    ``schedule`` call keeps its own state and talks only to the store."""

    def __init__(
        self,
        store: Store,
        config: SchedulerConfig | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.config = config if config is not None else SchedulerConfig()
        self.rng = rng if rng is not None else random.Random()
        cfg = self.config
        unknown = set(cfg.options) - set(cfg.filters) - set(cfg.weighers)
        if unknown:
            raise InvalidInput(
                f"scheduler options name plugins that are not configured: "
                f"{', '.join(sorted(unknown))}",
                field="options",
            )
        self.filters: list[Filter] = [FILTERS.build(n, cfg.options.get(n)) for n in cfg.filters]
        self.weighers: list[tuple[Weigher, float]] = [
            (WEIGHERS.build(n, cfg.options.get(n)), float(m)) for n, m in cfg.weighers.items()
        ]
        half_life = next(
            (h for w, _ in self.weighers if (h := w.failure_half_life()) is not None), 600.0
        )
        self.failures = FailureCounter(half_life, clock=lambda: self.store.clock())
        # Providers this scheduler's threads are claiming now; picks avoid them.
        self.in_flight = InFlight()

    # -- build failures ----------------------------------------------------
    def record_build_failure(self, provider_uuid: str) -> float:
        """Count a failed build on a provider; returns its decayed count."""
        return self.failures.record(provider_uuid)

    def record_build_success(self, provider_uuid: str) -> None:
        self.failures.reset(provider_uuid)

    # -- scheduling --------------------------------------------------------
    def schedule(self, request: Request) -> ScheduleResult:
        """Persist, place and record a request (``claimant.scheduler.lifecycle``)."""
        # Imported here: lifecycle builds on this module.
        from claimant.scheduler.lifecycle import schedule

        return schedule(self, request)

    def place(
        self,
        request: Request,
        *,
        exclude: Iterable[str] = (),
        held: list[Claim] | None = None,
        record: Callable[[list[Claim]], Request] | None = None,
    ) -> ScheduleResult:
        """Claims for every instance of ``request``: query, filter, weigh, pick,
        claim. Reads and writes nothing but candidates and claims (the request
        record is the lifecycle's business).

        ``exclude``: providers no candidate query may return (hosts an instance
        already failed on). Raises ``NoValidHost`` when an instance cannot be
        placed (unless ``all_or_nothing`` is off and some were: then the result
        carries ``partial``). On *any* error every claim this call took is given
        back first; a claim the store would not release either (an outage) is
        appended to ``held`` and lives until its TTL.

        ``record``: the request's record once placed, from its claims.
        Where nothing can follow the last claim (one instance, one group, no
        server-group check) it is created with that claim in one write
        (``Store.claim_and_record``, ``AlreadyExists`` if the uuid is taken)
        and the result's ``recorded`` is it; else ``recorded`` is None and
        the caller records.
        """
        started = time.perf_counter()
        request = validate_request(request)
        if request.cell is not None:
            check_cell(self.store, request.cell)
        if not request.consumers:
            request = request.evolve(consumers=tuple(new_uuid() for _ in range(request.count)))
        stuck: list[Claim] = held if held is not None else []
        stats = ScheduleStats()
        state = RequestState(self.store, request, self.failures)
        state.record = record
        placements: list[InstancePlacement] = []
        try:
            failure = self._place_each(state, stats, frozenset(exclude), stuck, placements)
        except BaseException:
            # A store error (or an interrupt) mid-request: give back what the
            # earlier instances took (the placer gave back its own) and let the
            # caller see the original error.
            self._release_all(placements, stats, stuck, quiet=True)
            stats.elapsed_s = time.perf_counter() - started
            raise
        stats.elapsed_s = time.perf_counter() - started
        if failure is None:
            return ScheduleResult(request, placements, stats, recorded=state.recorded)
        nvh = self._no_valid_host(state, failure, placements, stats, stuck)
        if placements and not request.all_or_nothing:
            return ScheduleResult(request, placements, stats, partial=nvh)
        self._release_all(placements, stats, stuck, quiet=False)
        raise nvh

    def _place_each(
        self,
        state: RequestState,
        stats: ScheduleStats,
        exclude: frozenset[str],
        held: list[Claim],
        placements: list[InstancePlacement],
    ) -> _Failure | None:
        """Place the instances in turn, appending to ``placements``; the
        first that cannot be placed ends it."""
        placer_type = TreePlacer if state.request.spans_trees else FlatPlacer
        for index, consumer in enumerate(state.request.consumers):
            placer = placer_type(self, state, index, consumer, stats, exclude, held)
            try:
                claims = placer.place()
            except InstanceFailed as exc:
                return index, exc, placer.diags
            finally:
                placer.unmark_all()
            placements.append(InstancePlacement(consumer, claims))
            state.placed_roots.append(placer.host_root())
        return None

    def _no_valid_host(
        self,
        state: RequestState,
        failure: _Failure,
        placements: list[InstancePlacement],
        stats: ScheduleStats,
        held: list[Claim],
    ) -> NoValidHost:
        """The error for an instance that could not be placed. Where the cells
        it could go to are cut off, placeable nowhere else: every claim is
        given back and ``CellUnavailable`` raised."""
        request = state.request
        index, exc, diags = failure
        if state.down_cells:
            self._release_all(placements, stats, held, quiet=True)
            cells = ", ".join(sorted(state.down_cells))
            raise CellUnavailable(
                f"request {request.uuid}: no reachable cell can place instance {index + 1}"
                f" of {request.count}; unreachable: {cells} ({exc.why})",
                request_uuid=request.uuid,
                cells=sorted(state.down_cells),
            )
        group_name = request.groups[exc.group_index].name or "(default)"
        message = (
            f"no valid host for instance {index + 1} of {request.count} "
            f"(request {request.uuid}), group {group_name!r}: {exc.why}"
        )
        return NoValidHost(
            message,
            request_uuid=request.uuid,
            instance=index,
            placed=len(placements),
            count=request.count,
            group=request.groups[exc.group_index].name,
            groups=[d.to_dict() for d in diags],
        )

    def _release_all(
        self,
        placements: Iterable[InstancePlacement],
        stats: ScheduleStats,
        held: list[Claim],
        *,
        quiet: bool,
    ) -> None:
        error: ClaimantError | None = None
        for p in placements:
            n, exc = self.release_into(p.claims, held)
            stats.claims_released += n
            error = error or exc
        if error is not None and not quiet:
            raise error

    def release_claims(self, claims: Sequence[Claim]) -> int:
        """Give claims back, last first; how many were. Best effort: a claim
        the store would not release (an outage) lives until its TTL."""
        released, _ = self.release_into(claims, [])
        return released

    def release_into(
        self, claims: Sequence[Claim], held: list[Claim]
    ) -> tuple[int, ClaimantError | None]:
        """Give claims back, last first, trying every one. A claim the store
        failed to release is appended to ``held``; returns how many were given
        back and the first error."""
        released = 0
        error: ClaimantError | None = None
        for claim in reversed(claims):
            try:
                self.store.release_claim(claim.uuid)
            except (NotFound, ClaimNotActive):
                pass  # expired or already gone: nothing is held either way
            except ClaimantError as exc:
                # Maybe still held (until its TTL): whoever records the request says so.
                held.append(claim)
                error = error or exc
                continue
            released += 1
        return released, error


def validate_request(request: Request) -> Request:
    if not isinstance(request, Request):
        raise InvalidInput(f"schedule() takes a Request, got {type(request).__name__}")
    request.validate()
    hints = request.hints
    if hints.group_policy is not None and not hints.group:
        raise InvalidInput("hints.group_policy needs hints.group", field="group_policy")
    if hints.group_policy is not None and not isinstance(hints.group_policy, GroupPolicyKind):
        raise InvalidInput(f"unknown group policy {hints.group_policy!r}", field="group_policy")
    for name in ("same_host", "different_host"):
        for uuid in getattr(hints, name):
            normalize_uuid(uuid, name)
    if request.consumers:
        for uuid in request.consumers:
            normalize_uuid(uuid, "consumers")
        if len(set(request.consumers)) != len(request.consumers):
            raise InvalidInput("consumers must be distinct", field="consumers")
    return request


__all__ = [
    "InstancePlacement",
    "ScheduleResult",
    "ScheduleStats",
    "Scheduler",
    "validate_request",
]
