"""Provider aggregates: /resource_providers/{uuid}/aggregates."""

from __future__ import annotations

from typing import Any

from claimant.api.placement import errors
from claimant.api.placement.common import get_provider
from claimant.api.placement.errors import conflict
from claimant.api.placement.framework import Req, Resp
from claimant.model import GenerationConflict, Provider

_LIST: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "format": "uuid"},
    "uniqueItems": True,
}
PUT_SCHEMA_1_1 = _LIST
# 1.19: a body with the provider generation, checked
PUT_SCHEMA_1_19: dict[str, Any] = {
    "type": "object",
    "properties": {"aggregates": _LIST, "resource_provider_generation": {"type": "integer"}},
    "required": ["aggregates", "resource_provider_generation"],
    "additionalProperties": False,
}


def _send(req: Req, p: Provider, aggregates: list[str]) -> Resp:
    body: dict[str, Any] = {"aggregates": aggregates}
    if req.want(19):
        body["resource_provider_generation"] = p.generation
    return Resp(200, body).modified(req, None)


def show(req: Req) -> Resp:
    p = get_provider(req, req.args["uuid"])
    return _send(req, p, sorted(p.aggregates))


def update(req: Req) -> Resp:
    p = get_provider(req, req.args["uuid"])
    if req.want(19):
        data = req.json(PUT_SCHEMA_1_19)
        if data["resource_provider_generation"] != p.generation:
            raise conflict(
                "Resource provider's generation already changed. Please update the "
                "generation and try again.",
                errors.CONCURRENT_UPDATE,
            )
        aggregates = data["aggregates"]
        expected: int | None = p.generation
    else:
        aggregates = req.json(PUT_SCHEMA_1_1)
        expected = None
    try:
        p = req.store.set_aggregates(p.uuid, expected, aggregates)
    except GenerationConflict as exc:
        raise conflict(f"Update conflict: {exc.message}", errors.CONCURRENT_UPDATE) from None
    return _send(req, p, list(aggregates))
