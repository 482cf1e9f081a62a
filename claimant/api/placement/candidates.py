"""GET /allocation_candidates."""

from __future__ import annotations

from claimant.api.placement.errors import PlacementError
from claimant.api.placement.framework import Req, Resp


def list_all(req: Req) -> Resp:
    raise PlacementError(501, "not yet")
