"""The OpenStack Placement-compatible API (microversions 1.0-1.39), served
from the same store as claimant's native API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from claimant.api.auth import IdentityUnavailable
from claimant.api.limits import DEFAULT_MAX_BODY
from claimant.api.placement.errors import PlacementError
from claimant.api.placement.framework import Authenticator, Caller, PlacementApp, noauth2
from claimant.api.placement.options import CandidateOptions
from claimant.api.policy import Policy
from claimant.model.errors import ClaimantError
from claimant.store.base import Store

__all__ = ["Caller", "PlacementApp", "create_placement_app"]


def create_placement_app(
    store: Store,
    auth: Any = None,
    *,
    policy: Policy | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    cors_origins: Iterable[str] = (),
    cors_headers: Iterable[str] = ("openstack-api-version",),
    candidates: CandidateOptions | None = None,
) -> PlacementApp:
    """An ASGI app serving Placement's API at its root.

    ``auth`` is claimant's ``AuthConfig`` (anything with ``authenticate(headers)``
    returning a ``Caller``; claimant's reader/service/admin roles are
    Placement's roles of the same names), or a function ``auth(headers)``
    returning a ``Caller`` or None to refuse it. The default is noauth2
    (token ``admin``, or roles from ``X-Roles``). ``policy``: claimant's one
    policy (``claimant.api.policy``; default: its defaults). ``max_body``: the
    largest body in bytes (413 beyond).

    ``candidates``: Placement's ``[placement]`` candidate options.

    ``cors_origins`` turns CORS on for those origins (as oslo.middleware's
    ``[cors] allowed_origin``); ``cors_headers`` are the request headers a
    preflight may ask for.
    """
    from claimant.api.placement.routes import ROUTES

    app = PlacementApp(store, ROUTES, _authenticator(auth), policy, max_body)
    app.cors_origins = frozenset(cors_origins)
    app.cors_headers = frozenset(h.lower() for h in cors_headers)
    if candidates is not None:
        app.candidates = candidates
    return app


def _authenticator(auth: Any) -> Authenticator:
    if auth is None:
        return noauth2
    authenticate = getattr(auth, "authenticate", None)
    if authenticate is None:
        return auth  # type: ignore[no-any-return]

    def check(headers: Mapping[str, str]) -> Caller | None:
        try:
            ctx: Caller = authenticate(headers)
        except IdentityUnavailable as exc:
            # Not a 401: the token may be good, and a client drops refused ones.
            raise PlacementError(503, exc.message) from None
        except ClaimantError:
            return None
        return ctx

    return check
