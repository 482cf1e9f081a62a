"""The OpenStack Placement-compatible API (microversions 1.0-1.39), served
from the same store as claimant's native API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from claimant.api.placement.framework import Authenticator, Caller, PlacementApp, noauth2
from claimant.model.errors import ClaimantError
from claimant.store.base import Store

__all__ = ["Caller", "PlacementApp", "create_placement_app"]


def create_placement_app(
    store: Store,
    auth: Any = None,
    *,
    cors_origins: Iterable[str] = (),
    cors_headers: Iterable[str] = ("openstack-api-version",),
) -> PlacementApp:
    """An ASGI app serving Placement's API at its root.

    ``auth`` is claimant's ``AuthConfig`` (anything with ``authenticate(headers)``
    returning a context with ``role``, ``user_id``, ``project_id``; claimant's
    reader/service/admin roles are Placement's roles of the same names), or a
    function ``auth(headers)`` returning a ``Caller`` or None to refuse it. The
    default is Placement's noauth2 (token ``admin``, or roles from ``X-Roles``).
    Placement's default policy: admin or service for everything but /, and a
    project reader for its own project's /usages.

    ``cors_origins`` turns CORS on for those origins (as oslo.middleware's
    ``[cors] allowed_origin``); ``cors_headers`` are the request headers a
    preflight may ask for.
    """
    from claimant.api.placement.routes import ROUTES

    app = PlacementApp(store, ROUTES, _authenticator(auth))
    app.cors_origins = frozenset(cors_origins)
    app.cors_headers = frozenset(h.lower() for h in cors_headers)
    return app


def _authenticator(auth: Any) -> Authenticator:
    if auth is None:
        return noauth2
    authenticate = getattr(auth, "authenticate", None)
    if authenticate is None:
        return auth  # type: ignore[no-any-return]

    def check(headers: Mapping[str, str]) -> Caller | None:
        try:
            ctx = authenticate(headers)
        except ClaimantError:
            return None
        role = getattr(ctx.role, "name", str(ctx.role)).lower()
        return Caller(frozenset({role}), str(ctx.user_id), str(ctx.project_id))

    return check
