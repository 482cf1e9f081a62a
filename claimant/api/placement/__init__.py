"""The OpenStack Placement-compatible API (microversions 1.0-1.39), served
from the same store as claimant's native API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from claimant.api.placement.framework import Authenticator, PlacementApp, noauth2
from claimant.model.errors import ClaimantError
from claimant.store.base import Store

__all__ = ["PlacementApp", "create_placement_app"]


def create_placement_app(store: Store, auth: Any = None) -> PlacementApp:
    """An ASGI app serving Placement's API at its root.

    ``auth`` is claimant's ``AuthConfig`` (anything with ``authenticate(headers)``
    returning a context with ``is_admin``), or a function ``auth(headers)``
    returning ``(is_admin, user_id, project_id)`` or None to refuse the caller;
    the default is Placement's noauth2 (token ``admin`` is the admin).
    Placement's default policy gives every API but / to admins only.
    """
    from claimant.api.placement.routes import ROUTES

    return PlacementApp(store, ROUTES, _authenticator(auth))


def _authenticator(auth: Any) -> Authenticator:
    if auth is None:
        return noauth2
    authenticate = getattr(auth, "authenticate", None)
    if authenticate is None:
        return auth  # type: ignore[no-any-return]

    def check(headers: Mapping[str, str]) -> tuple[bool, str, str] | None:
        try:
            ctx = authenticate(headers)
        except ClaimantError:
            return None
        return bool(ctx.is_admin), str(ctx.user_id), str(ctx.project_id)

    return check
