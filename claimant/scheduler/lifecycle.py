"""A request's life on record: created once, then every step is a status and
a history event. The native API, the conductor and the simulator all go
through here, so a request's record is written one way.

    create(store, request)          pending; insert-if-absent (AlreadyExists)
    schedule(scheduler, request)    place, then record scheduled / partial /
                                    failed / error: one write, insert-if-absent
                                    (unless already created)
    record(store, request, ...)     one more status + history event
    follow(store, request)          scheduled or partial, but every claim
                                    expired: record it expired

The record's ``claims`` always name what the request holds: on a failure,
the claims that could not be given back (an outage; they expire at their
TTL), never fewer.

Under a deadline (``claimant.model.deadline``) only the placement can be cut:
once it ended, one way or the other, the outcome is recorded shielded, so a
request is finished or rolled back, never left half-done.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from typing import Any

from claimant.model import (
    AlreadyExists,
    Claim,
    ClaimantError,
    NotFound,
    NoValidHost,
    Request,
    RequestStatus,
    deadline,
    new_uuid,
)
from claimant.model.events import EVENTS_PER_SUBJECT, EXPIRED, RELEASED, Event, Subject
from claimant.scheduler.scheduler import Scheduler, ScheduleResult, validate_request
from claimant.store.base import Store, check_cell


def prepare(request: Request, now: float, history: Iterable[dict[str, Any]] = ()) -> Request:
    """The request as first recorded: validated, one consumer per instance,
    ``pending``, holding nothing."""
    request = validate_request(request)
    consumers = request.consumers or tuple(new_uuid() for _ in range(request.count))
    return request.evolve(
        status=RequestStatus.PENDING,
        consumers=consumers,
        claims=(),
        history=tuple(history),
        created_at=request.created_at or now,
        updated_at=now,
    )


def create(store: Store, request: Request, *, event: dict[str, Any] | None = None) -> Request:
    """Record a new request (``pending``). A uuid already recorded is
    ``AlreadyExists``: a retried create never rewrites a request's history."""
    if request.cell is not None:
        check_cell(store, request.cell)  # before anything is recorded
    now = store.clock()
    history = [{"at": now, **event}] if event else []
    pending = prepare(request, now, history)
    return store.create_request(pending) or pending


def record(
    store: Store,
    request: Request,
    status: RequestStatus,
    event: dict[str, Any],
    *,
    claims: Iterable[str] | None = None,
    events: Iterable[dict[str, Any]] = (),
    new: bool = False,
) -> Request:
    """Save ``request`` with a new status, ``events`` (already stamped) and
    ``event`` (stamped now) appended to its history, and, if given, the
    claims it now holds. ``new``: the request has no record yet; it is
    created insert-if-absent (``AlreadyExists``)."""
    updated = _updated(store, request, status, event, claims=claims, events=events)
    if new:
        return store.create_request(updated) or updated
    return store.save_request(updated) or updated


def _updated(
    store: Store,
    request: Request,
    status: RequestStatus,
    event: dict[str, Any],
    *,
    claims: Iterable[str] | None = None,
    events: Iterable[dict[str, Any]] = (),
    at: float | None = None,
) -> Request:
    """``request`` as ``record`` writes it (stamped ``at``, default now)."""
    now = store.clock() if at is None else at
    changes: dict[str, Any] = {
        "status": status,
        "history": (*request.history, *events, {"at": now, **event}),
        "updated_at": now,
        "reason": str(event.get("message", "")) if status in _EXPLAINED else "",
    }
    if claims is not None:
        changes["claims"] = tuple(claims)
    return request.evolve(**changes)


def schedule(scheduler: Scheduler, request: Request, *, created: bool = False) -> ScheduleResult:
    """Place a request and record the outcome. Unless ``created`` (its record
    exists already, pending), the outcome is the request's first record,
    written insert-if-absent: one write per placement instead of two (a
    pending record, then the outcome), the cost that matters on SQLite. A
    uuid already recorded is ``AlreadyExists``, checked before placing (a
    retried create places nothing) and again by the insert (a concurrent
    create with the same uuid: its claims are given back). Raises what
    ``Scheduler.place`` raises, after recording it."""
    store = scheduler.store
    if created:
        request = prepare(request, store.clock(), request.history).evolve(
            created_at=request.created_at
        )
    else:
        request = prepare(request, store.clock())
        _refuse_recorded(store, request.uuid)
    new = not created
    held: list[Claim] = []
    scheduled = {"event": "scheduled", "placed": 1, "count": request.count}

    def placed(claims: list[Claim]) -> Request:
        # Stamped just after its claim (the store's time for it), so a
        # request's events read claimed, then scheduled.
        at = math.nextafter(max(c.created_at for c in claims), math.inf)
        uuids = [c.uuid for c in claims]
        return _updated(store, request, RequestStatus.SCHEDULED, scheduled, claims=uuids, at=at)

    try:
        # A new request whose only claim is its last step is recorded with
        # that claim, in one write.
        result = scheduler.place(request, held=held, record=placed if new else None)
    except AlreadyExists:
        raise  # recorded by another caller meanwhile; the scheduler gave back its claims
    except BaseException as exc:
        _record_failure(store, request, exc, held, new=new)
        raise
    if result.recorded is not None:
        result.request = result.recorded
        return result
    return _record_placed(scheduler, request, result, new=new)


def _record_failure(
    store: Store, request: Request, exc: BaseException, held: list[Claim], *, new: bool
) -> None:
    """Record a placement that raised, with the claims it could not give back."""
    claims = [c.uuid for c in held]
    if isinstance(exc, NoValidHost):
        event = {"event": "failed", "message": exc.message, "details": exc.details}
        with deadline.shielded():
            record(store, request, RequestStatus.FAILED, event, claims=claims, new=new)
        return
    # The store may be what failed: record it if we can; the caller sees the
    # original error either way.
    with contextlib.suppress(ClaimantError), deadline.shielded():
        record(store, request, RequestStatus.FAILED, _error_event(exc), claims=claims, new=new)


def _record_placed(
    scheduler: Scheduler, request: Request, result: ScheduleResult, *, new: bool
) -> ScheduleResult:
    """Record a placement that ended (all placed, or partial) but was not
    recorded with its last claim."""
    store = scheduler.store
    placed_count = len(result.placements)
    status = RequestStatus.SCHEDULED
    if result.partial is not None:
        status = RequestStatus.PARTIAL
        event = {
            "event": "partial",
            "placed": placed_count,
            "count": request.count,
            "message": result.partial.message,
        }
    else:
        event = {"event": "scheduled", "placed": placed_count, "count": request.count}
    claims = [c for p in result.placements for c in p.claims]
    with deadline.shielded():
        try:
            saved = record(store, request, status, event, claims=[c.uuid for c in claims], new=new)
        except AlreadyExists:
            # Created meanwhile by another caller with the same uuid: that
            # record stands, and what this call took goes back.
            scheduler.release_claims(claims)
            raise
    result.request = saved
    return result


def _refuse_recorded(store: Store, uuid: str) -> None:
    try:
        store.get_request(uuid)
    except NotFound:
        return
    raise AlreadyExists(f"request {uuid} already exists", uuid=uuid)


def follow(store: Store, request: Request) -> Request:
    """The request as its claims say it is: a scheduled (or partial) request
    none of whose claims is held any more, and whose claims the store saw
    expire, is recorded ``expired``, with the reason. Anything else is
    returned as it is."""
    if request.status not in _FOLLOWED or not request.claims:
        return request
    if store.list_claims(request_uuid=request.uuid):
        return request
    mine = set(request.claims)

    def ends() -> dict[str, Event]:
        """Claim uuid -> the event that ended it (released or expired)."""
        return {
            e.details["claim_uuid"]: e
            for e in store.list_events(Subject.REQUEST, request.uuid, limit=EVENTS_PER_SUBJECT)
            if e.event in (EXPIRED, RELEASED) and e.details.get("claim_uuid") in mine
        }

    ended = ends()
    if len(ended) < len(mine):
        # Past their expiry but not swept yet: the sweep records them.
        store.expire_claims()
        ended = ends()
    expired = sorted((e for e in ended.values() if e.event == EXPIRED), key=lambda e: e.at)
    if not expired:
        return request  # given back (released), not expired: nothing is held either way
    message = (
        f"{len(expired)} of {len(mine)} claim(s) expired before they were confirmed"
        f" (the last at {expired[-1].at:.3f}); nothing is held"
    )
    event = {"event": "expired", "claims": len(expired), "message": message}
    return record(store, request, RequestStatus.EXPIRED, event, claims=())


_FOLLOWED = frozenset({RequestStatus.SCHEDULED, RequestStatus.PARTIAL})
# Statuses whose record says why (``Request.reason``, the event's message).
_EXPLAINED = frozenset({RequestStatus.FAILED, RequestStatus.PARTIAL, RequestStatus.EXPIRED})


def _error_event(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ClaimantError):
        # A stable code (deadline_exceeded, store_unavailable) says why.
        return {"event": "error", "code": exc.code, "message": exc.message}
    return {"event": "error", "message": f"{type(exc).__name__}: {exc}"}


__all__ = ["create", "follow", "prepare", "record", "schedule"]
