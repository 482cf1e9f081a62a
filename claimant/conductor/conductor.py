"""The conductor: request -> scheduler -> agent -> confirmed allocations.

    submit/build(request)
      record and schedule it (claimant.scheduler.lifecycle: pending, then
      scheduled with its claims)
      -> status building
      -> each instance: send its claims to the agent of its host
           ok: the agent confirmed them into allocations
           failed: the agent released them; the host's failure feeds the
             build-failure weigher; reschedule that instance alone
             (``Scheduler.place`` leaving out the hosts it failed on), at
             most ``max_attempts`` builds in all (Nova's default is 3)
           no reply: resend (builds are idempotent) and read the claims
             until one of them tells what happened (see ``_deliver``)
      -> active (or failed, giving back what was built when all_or_nothing)

Every step is an event in the persisted request's history, so
``GET /v1/requests/{uuid}`` and ``claimant request show`` tell the story.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from claimant import logs
from claimant.agent.http import AgentUnavailable
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
    ClaimStatus,
    InvalidInput,
    NotFound,
    NoValidHost,
    Request,
    RequestStatus,
    StoreUnavailable,
)
from claimant.model.events import Event, Subject
from claimant.scheduler import InstancePlacement, Scheduler, ScheduleStats, lifecycle
from claimant.store.base import Store

log = logging.getLogger("claimant.conductor")

# Resending a build whose reply was lost: the first pause, doubling up to the last.
_RESEND_PAUSE = (0.05, 2.0)


class AgentClient(Protocol):
    def build(self, msg: BuildMessage) -> BuildReply: ...

    def destroy(self, msg: DestroyMessage) -> DestroyReply: ...


class AgentDirectory:
    """Which agent builds on which provider (the first group's provider), who
    registered it (``owner``) and the token the conductor calls it with.

    Held in memory only: agents announce themselves with every heartbeat, so
    a restarted conductor knows the live ones again within one heartbeat.
    For ``grace`` seconds after it is made, ``wait`` lets a build for a host
    not announced yet wait for its agent instead of failing."""

    def __init__(self, *, grace: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._announced = threading.Condition(self._lock)
        self._grace_until = time.monotonic() + grace
        self._clients: dict[str, AgentClient] = {}
        self._urls: dict[str, str] = {}
        self._owners: dict[str, str] = {}
        self._tokens: dict[str, str | None] = {}

    def add(
        self,
        provider_uuids: list[str] | tuple[str, ...],
        client: AgentClient,
        url: str = "",
        *,
        owner: str | None = None,
        token: str | None = None,
    ) -> None:
        with self._lock:
            for uuid in provider_uuids:
                self._clients[uuid] = client
                if url:
                    self._urls[uuid] = url
                if owner is not None:
                    self._owners[uuid] = owner
                self._tokens[uuid] = token
            self._announced.notify_all()

    def get(self, provider_uuid: str) -> AgentClient:
        with self._lock:
            client = self._clients.get(provider_uuid)
        if client is None:
            raise NotFound(f"no agent is registered for provider {provider_uuid}")
        return client

    def in_grace(self) -> bool:
        return time.monotonic() < self._grace_until

    def wait(self, provider_uuid: str) -> AgentClient:
        """The provider's agent, waiting for it to announce until the grace
        period ends (then NotFound)."""
        with self._announced:
            while provider_uuid not in self._clients:
                left = self._grace_until - time.monotonic()
                if left <= 0:
                    raise NotFound(f"no agent is registered for provider {provider_uuid}")
                self._announced.wait(left)
            return self._clients[provider_uuid]

    def owner(self, provider_uuid: str) -> str | None:
        """The identity that registered the provider (None: nobody yet, or in-process)."""
        with self._lock:
            return self._owners.get(provider_uuid)

    def registered(
        self, provider_uuid: str, url: str, owner: str | None, token: str | None
    ) -> bool:
        """Is the provider registered exactly so (an agent's repeated announce)?"""
        with self._lock:
            return (
                provider_uuid in self._clients
                and self._urls.get(provider_uuid) == url
                and self._owners.get(provider_uuid) == owner
                and self._tokens.get(provider_uuid) == token
            )

    def token(self, provider_uuid: str) -> str | None:
        with self._lock:
            return self._tokens.get(provider_uuid)

    def listing(self) -> dict[str, str]:
        with self._lock:
            return {p: self._urls.get(p, "in-process") for p in sorted(self._clients)}


@dataclass(slots=True)
class InstanceOutcome:
    consumer_uuid: str
    ok: bool = False
    provider_uuid: str | None = None
    allocations: tuple[str, ...] = ()
    attempts: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (failure, provider)
    held: list[str] = field(default_factory=list)  # claims it may hold though not built
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
        expiry_grace: float = 5.0,
    ) -> None:
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise InvalidInput("max_attempts must be a positive integer", field="max_attempts")
        self.store = store
        # Counted for /metrics: finished requests by final status, reschedules.
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.rescheduled = 0
        self._counts = threading.Lock()
        self.scheduler = scheduler
        self.agents = agents
        self.max_attempts = max_attempts
        # How long past the claims' expiry a lost reply is waited on before
        # its outcome is called unknown (clocks of store clients differ a bit).
        self.expiry_grace = expiry_grace
        self.sleep: Callable[[float], None] = time.sleep
        self._pool = (
            ThreadPoolExecutor(build_workers, thread_name_prefix="conductor-build")
            if build_workers > 1
            else None
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    # -- building ----------------------------------------------------------
    def build(self, request: Request, *, created: bool = False) -> BuildResult:
        """Schedule and build every instance; returns when the request is
        active or failed. The request's record is kept up to date meanwhile.
        ``created``: the request is already recorded (pending)."""
        with logs.request_id(logs.REQUEST_ID.get() or request.uuid):
            return self._build(request, created)

    def _build(self, request: Request, created: bool) -> BuildResult:
        stats = ScheduleStats()
        try:
            scheduled = lifecycle.schedule(self.scheduler, request, created=created)
        except NoValidHost as exc:
            # The lifecycle recorded the request as failed, with the reasons.
            log.warning("no valid host: %s", exc.message, extra={"request_id": request.uuid})
            self._count(RequestStatus.FAILED.value)
            return BuildResult(self.store.get_request(request.uuid), [], stats, no_valid_host=True)
        stats.add(scheduled.stats)
        req = lifecycle.record(
            self.store, scheduled.request, RequestStatus.BUILDING, {"event": "building"}
        )
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
        consumer = placement.consumer_uuid
        claims = placement.claims
        while True:
            out.attempts += 1
            host = self._host_of(claims)
            reply = self._deliver(request, consumer, claims, out.attempts)
            now = self.store.clock()
            if reply.ok:
                self.scheduler.record_build_success(host)
                out.ok, out.provider_uuid, out.allocations = True, host, reply.allocations
                out.events.append(
                    {
                        "at": now,
                        "event": "built",
                        "consumer": consumer,
                        "provider": host,
                        "attempt": out.attempts,
                    }
                )
                return out
            event = self._failed(request, out, host, reply, now)
            if reply.failure == Failure.UNKNOWN:
                # It may be running there: building it elsewhere could run it
                # twice, and its claims are not ours to free.
                out.held.extend(c.uuid for c in claims)
                event["event"] = "build_unknown"
                return out
            # The agent gave up on these claims and will never confirm them; it
            # released them, unless the store refused it or the message went
            # to the wrong agent. Whatever is left is freed (or recorded) here.
            out.held.extend(self._free(c.uuid for c in claims))
            self.scheduler.record_build_failure(host)
            if out.attempts >= self.max_attempts:
                out.events.append(
                    {
                        "at": now,
                        "event": "gave_up",
                        "consumer": consumer,
                        "message": f"{out.attempts} build attempts failed",
                    }
                )
                return out
            rescheduled = self._reschedule(request, out, host, stats, lock)
            if rescheduled is None:
                return out
            claims = rescheduled

    def _failed(
        self, request: Request, out: InstanceOutcome, host: str, reply: BuildReply, now: float
    ) -> dict[str, Any]:
        """Record a failed build attempt: the outcome, the log, the provider's events."""
        consumer = out.consumer_uuid
        kind = reply.failure.value if reply.failure else Failure.AGENT.value
        out.failures.append((kind, host))
        event = {
            "at": now,
            "event": "build_failed",
            "consumer": consumer,
            "provider": host,
            "attempt": out.attempts,
            "failure": kind,
            "message": reply.message,
        }
        out.events.append(event)
        log.warning(
            "build of %s on %s failed (%s, attempt %d): %s",
            consumer,
            host,
            kind,
            out.attempts,
            reply.message,
            extra={"request_id": request.uuid},
        )
        self._provider_event(host, event, request)
        return event

    def _reschedule(
        self,
        request: Request,
        out: InstanceOutcome,
        host: str,
        stats: ScheduleStats,
        lock: threading.Lock,
    ) -> list[Claim] | None:
        """Claims for another try of a failed build elsewhere; None if none."""
        consumer = out.consumer_uuid
        # Nova's RetryFilter, as a query condition: never the same host again.
        one = request.evolve(
            count=1, consumers=(consumer,), all_or_nothing=True, claims=(), history=()
        )
        held: list[Claim] = []
        try:
            again = self.scheduler.place(one, exclude={h for _, h in out.failures}, held=held)
        except ClaimantError as exc:
            out.held.extend(c.uuid for c in held)
            out.events.append(
                {
                    "at": self.store.clock(),
                    "event": "reschedule_failed",
                    "consumer": consumer,
                    "message": exc.message,
                }
            )
            return None
        with lock:
            stats.add(again.stats)
        claims = again.placements[0].claims
        self._count(rescheduled=1)
        log.info(
            "rescheduled %s from %s to %s (attempt %d)",
            consumer,
            host,
            claims[0].provider_uuid,
            out.attempts + 1,
        )
        out.events.append(
            {
                "at": self.store.clock(),
                "event": "rescheduled",
                "consumer": consumer,
                "provider": claims[0].provider_uuid,
            }
        )
        return claims

    def _count(self, outcome: str | None = None, *, rescheduled: int = 0) -> None:
        with self._counts:
            if outcome is not None:
                self.outcomes[outcome] += 1
            self.rescheduled += rescheduled

    def _provider_event(self, host: str, event: dict[str, Any], request: Request) -> None:
        details = {k: v for k, v in event.items() if k not in ("at", "event", "provider")}
        with contextlib.suppress(ClaimantError):  # the store logs an event it drops
            self.store.add_events(
                [
                    Event(
                        Subject.PROVIDER,
                        host,
                        event["at"],
                        event["event"],
                        {
                            **details,
                            "request_uuid": request.uuid,
                            "project_id": request.project_id,
                        },
                    )
                ]
            )

    def _deliver(
        self, request: Request, consumer: str, claims: list[Claim], attempt: int
    ) -> BuildReply:
        """Send the build and get its answer, even when the agent's reply is
        lost: the message is idempotent, so it is resent (the agent answers
        what it did), and meanwhile the claims tell what happened: all
        confirmed means built, all gone means not built (an agent never
        confirms a released or expired claim). Claims are freed here only
        when the message surely never reached an agent."""
        host = self._host_of(claims)
        msg = BuildMessage(consumer, tuple(c.uuid for c in claims), request.uuid, attempt)
        try:
            client = self._agent(host)
        except NotFound as exc:
            return self._undelivered(consumer, host, exc.message)
        deadline = max(c.expires_at or 0.0 for c in claims) + self.expiry_grace
        pause, longest = _RESEND_PAUSE
        delivered = False
        while True:
            try:
                return client.build(msg)
            except ClaimantError as exc:
                delivered = delivered or getattr(exc, "delivered", True)
                error = exc
            if not delivered:
                return self._undelivered(consumer, host, error.message)
            settled = self._settled(consumer, host, claims)
            if settled is not None:
                return settled
            if self.store.clock() > deadline:
                return BuildReply(
                    consumer,
                    False,
                    host,
                    failure=Failure.UNKNOWN,
                    message=f"no answer from the agent ({error.message}) and its claims "
                    "could not be read: the outcome is unknown",
                )
            log.warning(
                "build of %s on %s: no answer (%s); asking again", consumer, host, error.message
            )
            self.sleep(pause)
            pause = min(pause * 2, longest)

    def _undelivered(self, consumer: str, host: str, why: str) -> BuildReply:
        # No agent saw the message, so nobody will confirm these claims: the
        # caller gives them back now rather than let them hold capacity until
        # they expire.
        return BuildReply(consumer, False, host, failure=Failure.AGENT, message=why)

    def _settled(self, consumer: str, host: str, claims: list[Claim]) -> BuildReply | None:
        """What the claims say about a build whose reply was lost, or None."""
        confirmed = gone = 0
        try:
            for c in claims:
                try:
                    status = self.store.get_claim(c.uuid).status
                except NotFound:
                    gone += 1
                    continue
                confirmed += status == ClaimStatus.CONFIRMED
        except ClaimantError:
            return None
        if confirmed == len(claims):
            return BuildReply(
                consumer,
                True,
                host,
                allocations=tuple(c.uuid for c in claims),
                message="the agent's reply was lost; its claims are confirmed",
            )
        if gone == len(claims):
            return BuildReply(
                consumer,
                False,
                host,
                failure=Failure.AGENT,
                message="the agent's reply was lost and the claims are gone: not built",
            )
        return None  # still building, or failing part-way: ask again

    def _free(self, uuids: Iterable[str]) -> list[str]:
        """Release what is still held; returns the claims the store would not
        release (they stay on the request's record until they expire)."""
        stuck = []
        for uuid in uuids:
            try:
                self.store.release_claim(uuid)
            except (NotFound, ClaimNotActive):
                pass
            except ClaimantError as exc:
                log.warning("could not release claim %s: %s", uuid, exc)
                stuck.append(uuid)
        return stuck

    def _finish(
        self, request: Request, outcomes: list[InstanceOutcome], stats: ScheduleStats
    ) -> BuildResult:
        events = sorted((e for o in outcomes for e in o.events), key=lambda e: e["at"])
        built = [o for o in outcomes if o.ok]
        held = [u for o in outcomes for u in o.held]
        request = request.evolve(history=(*request.history, *events))
        if len(built) == request.count:
            status, event = RequestStatus.ACTIVE, {"event": "active", "built": len(built)}
        elif built and not request.all_or_nothing:
            status = RequestStatus.PARTIAL
            event = {
                "event": "partial",
                "built": len(built),
                "count": request.count,
                "message": f"{len(built)} of {request.count} instance(s) built",
            }
        else:
            for o in built:
                if self._destroy_instance(o.consumer_uuid, o.provider_uuid) is None:
                    held.extend(o.allocations)  # still there: the record says so
                o.ok = False
            status = RequestStatus.FAILED
            event = {
                "event": "failed",
                "message": f"{request.count - len(built)} of {request.count} instance(s) "
                "could not be built"
                + ("; the built ones were destroyed (all_or_nothing)" if built else ""),
            }
        allocations = [a for o in outcomes if o.ok for a in o.allocations]
        final = lifecycle.record(self.store, request, status, event, claims=[*allocations, *held])
        self._count(status.value)
        if status != RequestStatus.ACTIVE:
            log.warning(
                "request %s: %s", status.value, final.reason, extra={"request_id": request.uuid}
            )
        return BuildResult(final, outcomes, stats)

    def _host_of(self, claims: list[Claim]) -> str:
        """The host that builds: the root of the first claim's provider. A
        request spanning a tree may claim nothing on the root itself (VCPU on
        a NUMA child, a VGPU on a GPU child), and its agent builds it."""
        first = claims[0].provider_uuid
        try:
            return self.store.get_provider(first).root_uuid or first
        except (NotFound, StoreUnavailable):
            return first

    def _agent(self, host: str) -> AgentClient:
        """The host's agent. Just after the conductor (re)started, a host
        that has heartbeated is waited for: its agent is about to announce
        itself again (AgentDirectory)."""
        try:
            return self.agents.get(host)
        except NotFound:
            if not self.agents.in_grace():
                raise
            try:
                alive = self.store.get_provider(host).heartbeat_at is not None
            except ClaimantError:
                alive = False
            if not alive:
                raise
            return self.agents.wait(host)

    def _event(self, request: Request, status: RequestStatus, event: dict[str, Any]) -> Request:
        return lifecycle.record(self.store, request, status, event)

    # -- destroying --------------------------------------------------------
    def _destroy_instance(self, consumer: str, host: str | None) -> list[str] | None:
        """Ask the host's agent to destroy the instance (it frees the
        allocations); None if no agent answered. Only the agent can say the
        instance is gone, so a confirmed allocation is never freed without it;
        unconfirmed claims may be, since no agent confirms a released claim."""
        if host is not None:
            try:
                return list(self._agent(host).destroy(DestroyMessage(consumer)).freed)
            except ClaimantError as exc:
                log.warning("destroy of %s on %s failed: %s", consumer, host, exc)
        held = self.store.list_claims(consumer_uuid=consumer)
        unconfirmed = [c.uuid for c in held if c.status != ClaimStatus.CONFIRMED]
        stuck = self._free(unconfirmed)
        if stuck or len(unconfirmed) != len(held):
            return None
        return unconfirmed

    def destroy(self, request_uuid: str) -> Request:
        """Destroy every instance of a request and free its allocations."""
        request = self.store.get_request(request_uuid)
        if request.status == RequestStatus.DELETED:
            return request
        freed = 0
        stuck: list[str] = []
        for consumer in request.consumers:
            held = self.store.list_claims(consumer_uuid=consumer)
            if not held:
                continue
            known = self.agents.listing()
            host = next((c.provider_uuid for c in held if c.provider_uuid in known), None)
            out = self._destroy_instance(consumer, host)
            if out is None:
                stuck.append(consumer)
            else:
                freed += len(out)
        if stuck:
            self._event(
                request,
                request.status,
                {"event": "destroy_failed", "consumers": stuck, "freed": freed},
            )
            raise AgentUnavailable(
                f"{len(stuck)} instance(s) of request {request_uuid} could not be destroyed "
                "(no agent answered); their allocations are kept: try again"
            )
        return lifecycle.record(
            self.store,
            request,
            RequestStatus.DELETED,
            {"event": "deleted", "freed": freed},
            claims=(),
        )


def run_in_background(
    pool: ThreadPoolExecutor, conductor: Conductor, request: Request, done: Callable[[Any], None]
) -> None:
    """Build in a worker thread; a crash is recorded on the request, not lost."""

    def work() -> None:
        try:
            conductor.build(request, created=True)
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
