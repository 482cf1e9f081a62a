"""The conductor: request -> scheduler -> agent -> confirmed allocations.

    submit/build(request)
      persist it (the scheduler saves it: pending, then scheduled with claims)
      -> status building
      -> each instance: send its claims to the agent of its host
           ok: the agent confirmed them into allocations
           failed: the agent released them; the host's failure feeds the
             build-failure weigher; reschedule that instance alone, at most
             ``max_attempts`` builds in all (Nova's default is 3)
      -> active (or failed, giving back what was built when all_or_nothing)

Every step is an event in the persisted request's history, so
``GET /v1/requests/{uuid}`` and ``claimant request show`` tell the story.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from claimant.agent.messages import (
    BuildMessage,
    BuildReply,
    DestroyMessage,
    DestroyReply,
    Failure,
)
from claimant.model import (
    Claim,
    ClaimantError,
    ClaimNotActive,
    InvalidInput,
    NotFound,
    NoValidHost,
    ProviderUsage,
    Request,
    RequestStatus,
)
from claimant.scheduler import InstancePlacement, Scheduler, ScheduleStats
from claimant.store.base import CandidateQuery, Store

log = logging.getLogger("claimant.conductor")

AGENT_FAILURE = "agent"  # the agent could not be reached (the conductor released the claims)


class AgentClient(Protocol):
    def build(self, msg: BuildMessage) -> BuildReply: ...

    def destroy(self, msg: DestroyMessage) -> DestroyReply: ...


class AgentDirectory:
    """Which agent builds on which provider (the first group's provider)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, AgentClient] = {}
        self._urls: dict[str, str] = {}

    def add(
        self, provider_uuids: list[str] | tuple[str, ...], client: AgentClient, url: str = ""
    ) -> None:
        with self._lock:
            for uuid in provider_uuids:
                self._clients[uuid] = client
                if url:
                    self._urls[uuid] = url

    def get(self, provider_uuid: str) -> AgentClient:
        with self._lock:
            client = self._clients.get(provider_uuid)
        if client is None:
            raise NotFound(f"no agent is registered for provider {provider_uuid}")
        return client

    def listing(self) -> dict[str, str]:
        with self._lock:
            return {p: self._urls.get(p, "in-process") for p in sorted(self._clients)}


class _RescheduleStore:
    """The store as the scheduler sees it while the conductor reschedules one
    instance.

    - ``save_request`` is held back: the scheduler persists every request it
      schedules, and the one-instance request it is handed here would
      overwrite the real record (count, consumers, history). The conductor
      writes the record instead.
    - Candidate queries leave out the hosts this instance already failed on
      (Nova's RetryFilter, as a query condition): the build-failure weigher
      alone would still let a random pick among the best few choose one again.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._local = threading.local()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @contextlib.contextmanager
    def excluding(self, providers: set[str]) -> Iterator[None]:
        self._local.exclude = frozenset(providers)
        try:
            yield
        finally:
            self._local.exclude = frozenset()

    def find_candidates(self, query: CandidateQuery) -> list[ProviderUsage]:
        tried: frozenset[str] = getattr(self._local, "exclude", frozenset())
        if tried:
            query = dataclasses.replace(query, exclude=query.exclude | tried)
        return self._store.find_candidates(query)

    def save_request(self, request: Request) -> Request:
        return request


@dataclass(slots=True)
class InstanceOutcome:
    consumer_uuid: str
    ok: bool = False
    provider_uuid: str | None = None
    allocations: tuple[str, ...] = ()
    attempts: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (failure, provider)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class BuildResult:
    request: Request
    instances: list[InstanceOutcome]
    stats: ScheduleStats
    no_valid_host: bool = False

    @property
    def placed(self) -> int:
        return sum(1 for i in self.instances if i.ok)

    @property
    def reschedules(self) -> int:
        return sum(max(0, i.attempts - 1) for i in self.instances)

    def failures(self, *, races_only: bool = False) -> int:
        races = {f.value for f in Failure if f.is_race}
        return sum(
            1 for i in self.instances for kind, _ in i.failures if not races_only or kind in races
        )


class Conductor:
    def __init__(
        self,
        store: Store,
        scheduler: Scheduler,
        agents: AgentDirectory,
        *,
        max_attempts: int = 3,
        build_workers: int = 8,
    ) -> None:
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise InvalidInput("max_attempts must be a positive integer", field="max_attempts")
        self.store = store
        self.scheduler = scheduler
        self.agents = agents
        self.max_attempts = max_attempts
        self._reschedule_store = _RescheduleStore(store)
        self._rescheduler = Scheduler(
            self._reschedule_store,  # type: ignore[arg-type]
            scheduler.config,
            rng=scheduler.rng,
        )
        # One failure memory for first choices and reschedules alike.
        self._rescheduler.failures = scheduler.failures
        self._pool = (
            ThreadPoolExecutor(build_workers, thread_name_prefix="conductor-build")
            if build_workers > 1
            else None
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    # -- building ----------------------------------------------------------
    def build(self, request: Request) -> BuildResult:
        """Schedule and build every instance; returns when the request is
        active or failed. The request's record is kept up to date meanwhile."""
        stats = ScheduleStats()
        try:
            scheduled = self.scheduler.schedule(request)
        except NoValidHost:
            # The scheduler saved the request as failed, with the reasons.
            return BuildResult(self.store.get_request(request.uuid), [], stats, no_valid_host=True)
        stats.add(scheduled.stats)
        req = self._event(scheduled.request, RequestStatus.BUILDING, {"event": "building"})
        lock = threading.Lock()

        def run(p: InstancePlacement) -> InstanceOutcome:
            return self._build_instance(req, p, stats, lock)

        if self._pool is not None and len(scheduled.placements) > 1:
            outcomes = list(self._pool.map(run, scheduled.placements))
        else:
            outcomes = [run(p) for p in scheduled.placements]
        return self._finish(req, outcomes, stats)

    def _build_instance(
        self,
        request: Request,
        placement: InstancePlacement,
        stats: ScheduleStats,
        lock: threading.Lock,
    ) -> InstanceOutcome:
        out = InstanceOutcome(placement.consumer_uuid)
        claims = placement.claims
        while True:
            out.attempts += 1
            host = claims[0].provider_uuid
            reply = self._send_build(request, placement.consumer_uuid, claims, out.attempts)
            now = self.store.clock()
            if reply.ok:
                self.scheduler.record_build_success(host)
                out.ok, out.provider_uuid, out.allocations = True, host, reply.allocations
                out.events.append(
                    {
                        "at": now,
                        "event": "built",
                        "consumer": placement.consumer_uuid,
                        "provider": host,
                        "attempt": out.attempts,
                    }
                )
                return out
            kind = reply.failure.value if reply.failure else AGENT_FAILURE
            out.failures.append((kind, host))
            self.scheduler.record_build_failure(host)
            out.events.append(
                {
                    "at": now,
                    "event": "build_failed",
                    "consumer": placement.consumer_uuid,
                    "provider": host,
                    "attempt": out.attempts,
                    "failure": kind,
                    "message": reply.message,
                }
            )
            if out.attempts >= self.max_attempts:
                out.events.append(
                    {
                        "at": now,
                        "event": "gave_up",
                        "consumer": placement.consumer_uuid,
                        "message": f"{out.attempts} build attempts failed",
                    }
                )
                return out
            one = request.evolve(
                count=1,
                consumers=(placement.consumer_uuid,),
                all_or_nothing=True,
                claims=(),
                history=(),
            )
            try:
                with self._reschedule_store.excluding({h for _, h in out.failures}):
                    again = self._rescheduler.schedule(one)
            except NoValidHost as exc:
                out.events.append(
                    {
                        "at": self.store.clock(),
                        "event": "reschedule_failed",
                        "consumer": placement.consumer_uuid,
                        "message": exc.message,
                    }
                )
                return out
            with lock:
                stats.add(again.stats)
            claims = again.placements[0].claims
            out.events.append(
                {
                    "at": self.store.clock(),
                    "event": "rescheduled",
                    "consumer": placement.consumer_uuid,
                    "provider": claims[0].provider_uuid,
                }
            )

    def _send_build(
        self, request: Request, consumer: str, claims: list[Claim], attempt: int
    ) -> BuildReply:
        host = claims[0].provider_uuid
        msg = BuildMessage(consumer, tuple(c.uuid for c in claims), request.uuid, attempt)
        try:
            return self.agents.get(host).build(msg)
        except ClaimantError as exc:
            # No agent answered: nobody will confirm these claims, give them back now
            # rather than let them hold capacity until they expire.
            self._release(c.uuid for c in claims)
            return BuildReply(consumer, False, host, message=exc.message)

    def _release(self, uuids: Iterator[str] | list[str] | tuple[str, ...]) -> None:
        for uuid in uuids:
            with contextlib.suppress(NotFound, ClaimNotActive):
                self.store.release_claim(uuid)

    def _finish(
        self, request: Request, outcomes: list[InstanceOutcome], stats: ScheduleStats
    ) -> BuildResult:
        events = sorted((e for o in outcomes for e in o.events), key=lambda e: e["at"])
        built = [o for o in outcomes if o.ok]
        request = request.evolve(history=(*request.history, *events))
        if len(built) == request.count:
            status, event = RequestStatus.ACTIVE, {"event": "active", "built": len(built)}
        elif built and not request.all_or_nothing:
            status = RequestStatus.ACTIVE
            event = {"event": "partial", "built": len(built), "count": request.count}
        else:
            for o in built:
                self._destroy_instance(o.consumer_uuid, o.provider_uuid)
                o.ok = False
            status = RequestStatus.FAILED
            event = {
                "event": "failed",
                "message": f"{request.count - len(built)} of {request.count} instance(s) "
                "could not be built"
                + ("; the built ones were destroyed (all_or_nothing)" if built else ""),
            }
        allocations = tuple(a for o in outcomes if o.ok for a in o.allocations)
        final = self._event(request.evolve(claims=allocations), status, event)
        return BuildResult(final, outcomes, stats)

    def _event(self, request: Request, status: RequestStatus, event: dict[str, Any]) -> Request:
        now = self.store.clock()
        updated = request.evolve(
            status=status, history=(*request.history, {"at": now, **event}), updated_at=now
        )
        return self.store.save_request(updated) or updated

    # -- destroying --------------------------------------------------------
    def _destroy_instance(self, consumer: str, host: str | None) -> list[str]:
        if host is not None:
            with contextlib.suppress(ClaimantError):
                return list(self.agents.get(host).destroy(DestroyMessage(consumer)).freed)
        # No agent to ask: free the ledger entries directly.
        held = [c.uuid for c in self.store.list_claims(consumer_uuid=consumer)]
        self._release(held)
        return held

    def destroy(self, request_uuid: str) -> Request:
        """Destroy every instance of a request and free its allocations."""
        request = self.store.get_request(request_uuid)
        if request.status == RequestStatus.DELETED:
            return request
        freed = 0
        for consumer in request.consumers:
            held = self.store.list_claims(consumer_uuid=consumer)
            hosts = {c.provider_uuid for c in held}
            host = next((h for h in hosts if h in self.agents.listing()), None)
            freed += len(self._destroy_instance(consumer, host))
        return self._event(
            request.evolve(claims=()), RequestStatus.DELETED, {"event": "deleted", "freed": freed}
        )


def run_in_background(
    pool: ThreadPoolExecutor, conductor: Conductor, request: Request, done: Callable[[Any], None]
) -> None:
    """Build in a worker thread; a crash is recorded on the request, not lost."""

    def work() -> None:
        try:
            conductor.build(request)
        except Exception as exc:  # the record must say what happened
            log.exception("build of request %s failed", request.uuid)
            with contextlib.suppress(Exception):
                saved = conductor.store.get_request(request.uuid)
                conductor._event(
                    saved,
                    RequestStatus.FAILED,
                    {"event": "error", "message": f"{type(exc).__name__}: {exc}"},
                )
        finally:
            done(request.uuid)

    pool.submit(work)
