"""The version document at /."""

from __future__ import annotations

from claimant.api.placement.framework import Req, Resp
from claimant.api.placement.microversion import MAX_VERSION, MIN_VERSION


def home(req: Req) -> Resp:
    body = {
        "versions": [
            {
                "id": f"v{MIN_VERSION}",
                "max_version": str(MAX_VERSION),
                "min_version": str(MIN_VERSION),
                "status": "CURRENT",
                "links": [{"rel": "self", "href": ""}],
            }
        ]
    }
    return Resp(200, body).modified(req, None)
