"""The OpenStack Placement-compatible API (microversions 1.0-1.39), served
from the same store as claimant's native API."""

from __future__ import annotations

from claimant.api.placement.framework import Authenticator, PlacementApp, noauth2
from claimant.store.base import Store

__all__ = ["PlacementApp", "create_placement_app"]


def create_placement_app(store: Store, auth: Authenticator | None = None) -> PlacementApp:
    """An ASGI app serving Placement's API at its root.

    ``auth(token)`` returns ``(is_admin, user_id, project_id)`` or None to
    refuse the token; the default is Placement's noauth2 (token ``admin`` is
    the admin). Placement's default policy gives every API but / to admins.
    """
    from claimant.api.placement.routes import ROUTES

    return PlacementApp(store, ROUTES, auth or noauth2)
