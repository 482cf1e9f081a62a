"""THE route table of the native API (paths relative to /v1). Each line: method,
path, handler, the weakest role allowed, the success status. 405 responses and
their Allow header are derived from this table (see ``errors.allowed_methods``).
Each route's policy rule (``claimant:<handler>``) defaults to the base rule of
its role (``claimant.api.policy``); the gate checks it before the body is read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from claimant.api import (
    aggregates,
    capacity,
    claims,
    events,
    inventories,
    providers,
    requests,
    resource_classes,
    resource_types,
    traits,
    usages,
)
from claimant.api.auth import Role
from claimant.api.policy import ADMIN_API, READER_API, SERVICE_API, Rule

READ, WRITE, ADMIN = Role.READER, Role.SERVICE, Role.ADMIN


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Callable[..., Any]
    role: Role
    status: int = 200

    @property
    def rule(self) -> str:
        return f"claimant:{self.handler.__name__}"

    @property
    def default_rule(self) -> str:
        return RULE_OF_ROLE[self.role]


RULE_OF_ROLE = {Role.READER: READER_API, Role.SERVICE: SERVICE_API, Role.ADMIN: ADMIN_API}


ROUTES: tuple[Route, ...] = (
    Route("GET", "/providers", providers.list_providers, READ),
    Route("POST", "/providers", providers.create_provider, WRITE, 201),
    Route("GET", "/providers/{uuid}", providers.get_provider, READ),
    Route("PUT", "/providers/{uuid}", providers.update_provider, WRITE),
    Route("DELETE", "/providers/{uuid}", providers.delete_provider, ADMIN, 204),
    Route("GET", "/providers/{uuid}/inventories", inventories.get_inventories, READ),
    Route("PUT", "/providers/{uuid}/inventories", inventories.set_inventories, WRITE),
    Route("GET", "/providers/{uuid}/traits", traits.get_provider_traits, READ),
    Route("PUT", "/providers/{uuid}/traits", traits.set_provider_traits, WRITE),
    Route("GET", "/providers/{uuid}/aggregates", aggregates.get_provider_aggregates, READ),
    Route("PUT", "/providers/{uuid}/aggregates", aggregates.set_provider_aggregates, WRITE),
    Route("GET", "/providers/{uuid}/usages", usages.get_provider_usages, READ),
    Route("GET", "/providers/{uuid}/claims", claims.list_provider_claims, READ),
    Route("GET", "/providers/{uuid}/events", events.provider_events, READ),
    Route("GET", "/resource_classes", resource_classes.list_resource_classes, READ),
    Route("POST", "/resource_classes", resource_classes.create_resource_class, ADMIN, 201),
    Route("GET", "/resource_classes/{name}", resource_classes.get_resource_class, READ),
    Route("DELETE", "/resource_classes/{name}", resource_classes.delete_resource_class, ADMIN, 204),
    Route("GET", "/traits", traits.list_traits, READ),
    Route("GET", "/traits/{name}", traits.get_trait, READ),
    Route("PUT", "/traits/{name}", traits.create_trait, ADMIN, 201),
    Route("DELETE", "/traits/{name}", traits.delete_trait, ADMIN, 204),
    Route("GET", "/resource_types", resource_types.list_resource_types, READ),
    Route("POST", "/resource_types", resource_types.create_resource_type, ADMIN, 201),
    Route("GET", "/resource_types/{name}", resource_types.get_resource_type, READ),
    Route("DELETE", "/resource_types/{name}", resource_types.delete_resource_type, ADMIN, 204),
    Route("GET", "/aggregates", aggregates.list_aggregates, READ),
    Route("POST", "/aggregates", aggregates.create_aggregate, ADMIN, 201),
    Route("GET", "/aggregates/{name_or_uuid}", aggregates.get_aggregate, READ),
    Route("DELETE", "/aggregates/{name_or_uuid}", aggregates.delete_aggregate, ADMIN, 204),
    Route("GET", "/requests", requests.list_requests, READ),
    Route("POST", "/requests", requests.create_request, WRITE, 201),
    Route("GET", "/requests/{uuid}", requests.get_request, READ),
    Route("GET", "/requests/{uuid}/events", events.request_events, READ),
    Route("GET", "/claims/{uuid}", claims.get_claim, READ),
    Route("POST", "/claims/{uuid}/confirm", claims.confirm_claim, WRITE),
    Route("DELETE", "/claims/{uuid}", claims.release_claim, WRITE, 204),
    Route("GET", "/usages", usages.get_project_usages, READ),
    Route("GET", "/capacity", capacity.get_capacity, READ),
)


# Success statuses a route has besides its own (documented in OpenAPI).
EXTRA_RESPONSES: dict[str, dict[int | str, dict[str, Any]]] = {
    "create_request": {
        200: {"description": "?dry_run=true: where it would go and why; nothing is recorded"}
    },
}


def native_rules() -> list[Rule]:
    return [Rule(r.rule, r.default_rule, f"{r.method} /v1{r.path}") for r in ROUTES]


def add_routes(app: FastAPI) -> None:
    # Added to the app itself, not through include_router: 405 handling reads
    # the app's own route list.
    for r in ROUTES:
        tag = r.path.strip("/").split("/")[0]
        app.add_api_route(
            r.path,
            r.handler,
            methods=[r.method],
            status_code=r.status,
            tags=[tag],
            name=r.handler.__name__,
            summary=f"{r.handler.__name__.replace('_', ' ')} ({r.role.name.lower()})",
            openapi_extra={"x-policy-rule": r.rule},
            responses=EXTRA_RESPONSES.get(r.handler.__name__),
        )
