"""What handlers receive: the store, the caller, checks of names against the store."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, Path, Request

from claimant.api.auth import Context, Forbidden
from claimant.api.gate import CONTEXT_KEY
from claimant.model.errors import UNKNOWN_AGGREGATE, InvalidInput, NotFound
from claimant.model.names import is_standard_resource_class, is_standard_trait
from claimant.model.provider import MAX_NAME, normalize_uuid
from claimant.store import ProviderFilter, Store
from claimant.store.base import aggregate_key


async def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def _context(request: Request) -> Context:
    # Set by the gate (claimant.api.gate), which authenticated the caller and
    # checked the route's policy before the body was read.
    ctx: Context = request.scope["state"][CONTEXT_KEY]
    return ctx


async def _heartbeat_timeout(request: Request) -> float | None:
    # The scheduler's: a provider past it is skipped, so it reads as stale.
    timeout: float | None = request.app.state.scheduler.config.heartbeat_timeout
    return timeout


StoreDep = Annotated[Store, Depends(_store)]
HeartbeatTimeoutDep = Annotated[float | None, Depends(_heartbeat_timeout)]
ContextDep = Annotated[Context, Depends(_context)]
# A provider in a path: its uuid or its name (claimant.api.openapi reads the mark).
ProviderPath = Annotated[
    str,
    Path(description="the provider's uuid or name", json_schema_extra={"x-name-or-uuid": True}),
]


def caller_project(ctx: Context) -> str | None:
    """The project a caller is confined to (None: an admin, who sees all).
    A non-admin without a project may use no project-scoped route."""
    if ctx.is_admin:
        return None
    if not ctx.project_id:
        raise Forbidden(
            "this caller has no project: requests, claims and usages are project-scoped",
        )
    return ctx.project_id


def visible(ctx: Context, project_id: str) -> bool:
    """Whether a record of ``project_id`` exists for this caller. Records of
    other projects answer 404, as if absent, so their uuids leak nothing."""
    scope = caller_project(ctx)
    return scope is None or scope == project_id


def path_uuid(value: str, what: str = "uuid") -> str:
    """A UUID from the URL path; a malformed one is a 400, not a 404."""
    return normalize_uuid(value, what)


def provider_ref(store: Store, value: str, what: str = "provider") -> str:
    """The uuid of a provider named by uuid or by name (as the openstack
    client does: a value that parses as a UUID is a uuid). An unknown name
    is a 404 that says how to list the names."""
    try:
        return normalize_uuid(value, what)
    except InvalidInput:
        pass
    found = [] if len(value) > MAX_NAME else store.list_providers(ProviderFilter(name=value))
    if not found:
        message = f"no provider named {value!r} (GET /v1/providers lists them)"
        if what != "provider":
            # a filter naming nothing is the caller's mistake, not an empty answer
            raise InvalidInput(message, field=what)
        raise NotFound(message, kind="provider")
    return found[0].uuid


def check_resource_classes(store: Store, names: Iterable[str]) -> None:
    """Unknown classes are the caller's mistake (400), as in Placement."""
    for name in names:
        if is_standard_resource_class(name):
            continue
        try:
            store.get_resource_class(name)
        except NotFound:
            raise InvalidInput(f"no such resource class: {name}", field=name) from None


def check_traits(store: Store, names: Iterable[str]) -> None:
    custom = {n for n in names if not is_standard_trait(n)}
    if not custom:
        return
    unknown = custom - set(store.list_traits())
    if unknown:
        raise InvalidInput(
            f"no such trait(s): {', '.join(sorted(unknown))}", traits=sorted(unknown)
        )


def resolve_aggregates(store: Store, refs: Iterable[str], field: str = "member_of") -> set[str]:
    """Aggregate uuids for uuids or names (the native API's edge: the store
    and the Placement API see uuids only). An unknown name is a 400."""
    out = set()
    for ref in refs:
        kind, key = aggregate_key(ref)
        if kind == "uuid":
            out.add(key)
            continue
        try:
            out.add(store.get_aggregate(ref).uuid)
        except NotFound:
            raise InvalidInput(
                f"{field}: no aggregate named {ref!r}: name it with"
                f" `claimant aggregate create {ref}` (POST /v1/aggregates) or give its uuid",
                code=UNKNOWN_AGGREGATE,
                field=field,
                name=ref,
            ) from None
    return out
