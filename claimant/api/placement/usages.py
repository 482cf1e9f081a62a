"""Usages: /resource_providers/{uuid}/usages and /usages."""

from __future__ import annotations

import copy
from typing import Any

from claimant.api.placement.common import get_provider
from claimant.api.placement.framework import Req, Resp

LIST_SCHEMA_1_9: dict[str, Any] = {
    "type": "object",
    "properties": {
        "project_id": {"type": "string", "minLength": 1, "maxLength": 255},
        "user_id": {"type": "string", "minLength": 1, "maxLength": 255},
    },
    "required": ["project_id"],
    "additionalProperties": False,
}
# 1.38: consumer_type filter; the answer is grouped by consumer type
LIST_SCHEMA_1_38 = copy.deepcopy(LIST_SCHEMA_1_9)
LIST_SCHEMA_1_38["properties"]["consumer_type"] = {
    "type": "string",
    "pattern": "^[A-Z0-9_]+$|^all|^unknown$",
    "minLength": 1,
    "maxLength": 255,
}


def for_provider(req: Req) -> Resp:
    uuid = req.args["uuid"]
    p = get_provider(req, uuid, f"No resource provider with uuid {uuid} found: ")
    usage = req.store.get_usage(uuid)
    body = {
        "resource_provider_generation": p.generation,
        "usages": {rc: usage.usages[rc].used if rc in usage.usages else 0 for rc in p.inventories},
    }
    return Resp(200, body).modified(req, None)


def totals(req: Req) -> Resp:
    by_type = req.want(38)
    q = req.validate_query(LIST_SCHEMA_1_38 if by_type else LIST_SCHEMA_1_9)
    ctype = q.get("consumer_type") if by_type else None
    found = req.store.usages_by_project(q["project_id"], q.get("user_id"), ctype)
    if by_type:
        return Resp(200, {"usages": found}).modified(req, None)
    merged: dict[str, int] = {}
    for per_class in found.values():
        for rc, n in per_class.items():
            if rc != "consumer_count":
                merged[rc] = merged.get(rc, 0) + n
    return Resp(200, {"usages": merged}).modified(req, None)
