"""/v1/requests: a request is persisted and scheduled in one call."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from typing import Annotated, Any, Literal, cast

from fastapi import Query, Request
from fastapi.responses import JSONResponse

from claimant.api.auth import Context, Forbidden
from claimant.api.deps import (
    ContextDep,
    StoreDep,
    caller_project,
    check_resource_classes,
    check_traits,
    path_uuid,
    resolve_aggregates,
    visible,
)
from claimant.api.schemas.requests import FlavorBody, GroupBody, RequestCreate
from claimant.model import (
    AttributeConstraint,
    Claim,
    GroupPolicy,
    GroupPolicyKind,
    Hints,
    InvalidInput,
    NotFound,
    NoValidHost,
    RequestGroup,
    Span,
    Strategy,
    deadline,
    new_uuid,
)
from claimant.model import (
    Request as ClaimantRequest,
)
from claimant.model.codec import claim_to_dict, request_to_dict
from claimant.model.types import ResourceType, check_constraint, infer_spec
from claimant.scheduler import Scheduler, ScheduleResult, lifecycle
from claimant.scheduler.explain import explain
from claimant.store import Store, check_cell

# Only an admin (or the conductor) gets here without a project: a non-admin
# without one is refused first. A request charged to "" could never be read
# back through /v1/usages (issue 11), so it goes where noauth2's admin token
# puts its requests.
ADMIN_PROJECT = "admin"


def flavor_to_group(flavor: FlavorBody) -> RequestGroup:
    """Expand a flavor template into the unnamed request group."""
    resources = {"VCPU": flavor.vcpus, "MEMORY_MB": flavor.memory_mb}
    if flavor.disk_gb:
        resources["DISK_GB"] = flavor.disk_gb
    required: set[str] = set()
    forbidden: set[str] = set()
    for key, value in flavor.extra.items():
        if key.startswith("trait:"):
            if value not in ("required", "forbidden"):
                raise InvalidInput(f"flavor extra {key}: use required or forbidden", field=key)
            (required if value == "required" else forbidden).add(key[len("trait:") :])
            continue
        rc = key[len("resources:") :] if key.startswith("resources:") else key
        amount = int(value) if isinstance(value, str) and value.isdigit() else value
        if not isinstance(amount, int) or amount < 0 or not rc:
            raise InvalidInput(f"flavor extra {key}: amount must be an integer >= 0", field=key)
        if amount == 0:
            resources.pop(rc, None)  # Nova's resources:VCPU=0 removes the class
        else:
            resources[rc] = amount
    if not resources:
        raise InvalidInput("the flavor asks for no resources", field="flavor")
    return RequestGroup(
        resources=resources,
        required_traits=frozenset(required),
        forbidden_traits=frozenset(forbidden),
    )


def _constraints(store: Store, g: GroupBody) -> tuple[AttributeConstraint, ...]:
    rtype: ResourceType | None = None
    if g.provider_type:
        try:
            rtype = store.get_resource_type(g.provider_type)
        except NotFound:
            raise InvalidInput(
                f"no such resource type: {g.provider_type}", field="provider_type"
            ) from None
    out = []
    for a in g.attributes:
        c = AttributeConstraint(a.name, a.op, a.value)
        if rtype is not None:
            out.append(rtype.validate_constraint(c))
        else:
            out.append(check_constraint(infer_spec(a.name, a.value), c))
    return tuple(out)


def _group(store: Store, g: GroupBody) -> RequestGroup:
    return RequestGroup(
        name=g.name,
        resources=dict(g.resources),
        required_traits=frozenset(g.required_traits),
        forbidden_traits=frozenset(g.forbidden_traits),
        any_traits=tuple(frozenset(s) for s in g.any_traits),
        attributes=_constraints(store, g),
        member_of=tuple(frozenset(resolve_aggregates(store, s)) for s in g.member_of),
        forbidden_aggregates=frozenset(resolve_aggregates(store, g.forbidden_aggregates)),
        in_tree=g.in_tree,
        provider_type=g.provider_type,
        span=Span(g.span),
    )


def build_request(body: RequestCreate, ctx: Context, store: Store) -> ClaimantRequest:
    """Turn a validated body into a model ``Request``, checking every name
    against the store (unknown classes, traits, types are 400s)."""
    body.check_bounds()
    groups = [_group(store, g) for g in body.groups]
    if body.flavor is not None:
        groups.insert(0, flavor_to_group(body.flavor))
    if not groups:
        raise InvalidInput("a request needs groups or a flavor", field="groups")
    check_resource_classes(store, {rc for g in groups for rc in g.resources})
    check_traits(
        store,
        {
            t
            for g in groups
            for t in (g.required_traits | g.forbidden_traits | {t for s in g.any_traits for t in s})
        },
    )
    h = body.hints
    now = time.time()
    request = ClaimantRequest(
        uuid=body.uuid or new_uuid(),
        groups=tuple(groups),
        project_id=body.project_id or ctx.project_id or ADMIN_PROJECT,
        user_id=body.user_id if body.user_id is not None else ctx.user_id,
        group_policy=GroupPolicy(body.group_policy),
        same_subtree=tuple(frozenset(s) for s in body.same_subtree),
        hints=Hints(
            group=h.group,
            group_policy=GroupPolicyKind(h.group_policy) if h.group_policy else None,
            same_host=tuple(h.same_host),
            different_host=tuple(h.different_host),
            strategy=Strategy(h.strategy),
        ),
        count=body.count,
        all_or_nothing=body.all_or_nothing,
        consumers=tuple(body.consumers),
        cell=check_cell(store, body.cell) if body.cell is not None else None,
        created_at=now,
        updated_at=now,
    )
    if request.hints.group_policy and not request.hints.group:
        raise InvalidInput("hints.group_policy needs hints.group", field="hints.group")
    return request.validate()


def _placements(claims: list[Claim]) -> list[dict[str, Any]]:
    by_consumer: dict[str, list[dict[str, Any]]] = {}
    for c in claims:
        by_consumer.setdefault(c.consumer_uuid, []).append(claim_to_dict(c))
    return [{"consumer_uuid": k, "claims": v} for k, v in by_consumer.items()]


def request_body(request: ClaimantRequest, claims: list[Claim]) -> dict[str, Any]:
    out = request_to_dict(request)
    out["placements"] = _placements(claims)
    return out


async def create_request(
    body: RequestCreate,
    http: Request,
    store: StoreDep,
    ctx: ContextDep,
    dry_run: bool = False,
) -> JSONResponse:
    scope = caller_project(ctx)
    if scope is not None and body.project_id is not None and body.project_id != scope:
        raise Forbidden(
            f"only an admin may create a request for another project than {scope}",
            project_id=body.project_id,
        )
    if dry_run:
        # Reads only: nothing is recorded or claimed (claimant.scheduler.explain).
        run = contextvars.copy_context().run
        out = await asyncio.get_running_loop().run_in_executor(
            http.app.state.schedule_executor,
            run,
            _explain,
            http.app.state.scheduler,
            store,
            body,
            ctx,
        )
        return JSONResponse(out)
    # Everything that touches the store runs on the app's scheduling threads
    # (see ``create_app``), in one hop.
    executor = http.app.state.schedule_executor
    scheduler: Scheduler = http.app.state.scheduler
    metrics = http.app.state.metrics
    loop = asyncio.get_running_loop()
    gate = _StartGate()
    # The executor's threads do not inherit our context (the deadline).
    run = contextvars.copy_context().run
    job = loop.run_in_executor(executor, run, _schedule, gate, scheduler, store, body, ctx)
    try:
        result = await _outcome(job, gate)
    except NoValidHost as exc:
        metrics.observe_no_valid_host(exc.details.get("placed", 0), exc.details.get("count", 1))
        raise
    metrics.observe_schedule(result)
    claims = [c for p in result.placements for c in p.claims]
    return JSONResponse(
        request_body(result.request, claims),
        status_code=201,
        headers={"Location": f"/v1/requests/{result.request.uuid}"},
    )


class _StartGate:
    """Whether a queued scheduling job may still start: a caller whose
    deadline passed while the job waited for a thread abandons it, and an
    abandoned job never starts (so a 503 never hides a placement)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "queued"

    def start(self) -> bool:
        with self._lock:
            if self._state == "queued":
                self._state = "started"
            return self._state == "started"

    def abandon(self) -> bool:
        with self._lock:
            if self._state == "queued":
                self._state = "abandoned"
            return self._state == "abandoned"


async def _outcome(job: asyncio.Future[ScheduleResult | None], gate: _StartGate) -> ScheduleResult:
    d = deadline.current()
    if d is not None:
        done, _ = await asyncio.wait({job}, timeout=max(d.remaining(), 0.0))
        if not done and gate.abandon():
            # Still queued behind other placements (one at a time on SQLite):
            # answer now, not when a thread frees up.
            raise d.exceeded("waiting to be scheduled")
    # Started: it stops at its own next check, and gives back what it took.
    # None only for an abandoned job, and abandoning raised above.
    return cast(ScheduleResult, await job)


def _schedule(
    gate: _StartGate, scheduler: Scheduler, store: Store, body: RequestCreate, ctx: Context
) -> ScheduleResult | None:
    if not gate.start():
        return None  # its caller already answered 503
    # A request that waited for a scheduling thread past its deadline stops here.
    deadline.check("waiting to be scheduled")
    request = build_request(body, ctx, store)
    # Recorded insert-if-absent (a retried POST with the same uuid is a 409 and
    # never rewrites history), then placed; the record says how it ended.
    return lifecycle.schedule(scheduler, request)


def _explain(
    scheduler: Scheduler, store: Store, body: RequestCreate, ctx: Context
) -> dict[str, Any]:
    deadline.check("waiting to be explained")
    request = build_request(body, ctx, store)
    return {"request": request_to_dict(request), **explain(scheduler, request)}


def get_request(uuid: str, store: StoreDep, ctx: ContextDep) -> dict[str, Any]:
    request = store.get_request(path_uuid(uuid))
    if not visible(ctx, request.project_id):
        # another project's request is absent, not forbidden: uuids leak nothing
        raise NotFound(f"no request {request.uuid}", kind="request", uuid=request.uuid)
    request = lifecycle.follow(store, request)
    return request_body(request, store.list_claims(request_uuid=request.uuid))


def list_requests(
    store: StoreDep,
    ctx: ContextDep,
    status: Literal[
        "pending", "scheduled", "partial", "building", "active", "failed", "expired", "deleted"
    ]
    | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    # A non-admin sees its own project's requests only (None: every project).
    requests = store.list_requests(status=status, project_id=caller_project(ctx), limit=limit)
    return {"requests": [request_to_dict(r) for r in requests]}
