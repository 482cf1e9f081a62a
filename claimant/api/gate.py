"""The native API's front door: who is calling and whether the policy lets
them call this route, decided from the headers before the body is read."""

from __future__ import annotations

from typing import Any, get_args, get_origin
from urllib.parse import parse_qsl

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from claimant.api.auth import AuthConfig, IdentityUnavailable, Unauthorized
from claimant.api.errors import error_response
from claimant.api.policy import Policy
from claimant.model import errors as codes

CONTEXT_KEY = "claimant_context"
RULE_PREFIX = "claimant:"


def route_path(scope: Scope) -> str:
    root: str = scope.get("root_path", "")
    path: str = scope["path"]
    return path[len(root) :] if root and path.startswith(root) else path


class AuthGate:
    """Authenticates every request but the ``public`` paths (401; an entry
    ending in "/" is a prefix), checks the matched route's rule (403) and its
    query parameters (400), and leaves the caller in ``scope["state"]``.
    Routes are the app's own (``app.routes``), named by handler."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes_of: ASGIApp,
        auth: AuthConfig,
        policy: Policy,
        public: frozenset[str],
    ) -> None:
        self.app = app
        self.routes_of = routes_of
        self.auth = auth
        self.policy = policy
        self.public = public
        self.public_prefixes = tuple(p for p in public if p.endswith("/"))
        self._known: dict[int, dict[str, bool]] = {}

    def _is_public(self, path: str) -> bool:
        return path in self.public or path.startswith(self.public_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_public(route_path(scope)):
            await self.app(scope, receive, send)
            return
        try:
            headers = Headers(scope=scope)
            if self.auth.blocking:
                # Keystone validation is network I/O: off the event loop.
                ctx = await anyio.to_thread.run_sync(self.auth.authenticate, headers)
            else:
                ctx = self.auth.authenticate(headers)
        except Unauthorized as exc:
            response = error_response(
                401, exc.code, exc.message, headers={"WWW-Authenticate": "x-auth-token"}
            )
            await response(scope, receive, send)
            return
        except IdentityUnavailable as exc:
            await error_response(503, exc.code, exc.message)(scope, receive, send)
            return
        route = self._route(scope)
        rule = RULE_PREFIX + str(route.name) if route is not None else None
        if rule is not None and not self.policy.allowed(rule, ctx):
            roles = ", ".join(sorted(ctx.roles)) or "none"
            response = error_response(
                403,
                codes.FORBIDDEN,
                f"policy does not allow {rule} for this caller (roles: {roles})",
                {"rule": rule},
            )
            await response(scope, receive, send)
            return
        unknown = self._unknown_query(route, scope)
        if unknown:
            response = error_response(
                400,
                codes.INVALID_INPUT,
                f"unknown or repeated query parameter(s): {', '.join(unknown)}",
                {"fields": unknown},
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[CONTEXT_KEY] = ctx
        await self.app(scope, receive, send)

    def _route(self, scope: Scope) -> Any:
        for route in getattr(self.routes_of, "routes", ()):
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route
        return None  # no such route: the router answers 404 / 405

    def _unknown_query(self, route: Any, scope: Scope) -> list[str]:
        """Query parameters the route does not declare, or repeats of one that
        takes a single value: refused, as bodies' unknown fields are (a
        misspelt filter must not silently match everything)."""
        dependant = getattr(route, "dependant", None)
        raw = scope.get("query_string", b"")
        if dependant is None or not raw:
            return []
        known = self._known.get(id(route))
        if known is None:
            known = self._known[id(route)] = _query_names(dependant)
        seen: set[str] = set()
        bad: set[str] = set()
        for key, _ in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            if key not in known or (key in seen and not known[key]):
                bad.add(key)
            seen.add(key)
        return sorted(bad)


def _query_names(dependant: Any) -> dict[str, bool]:
    """Query parameter -> whether it may repeat (a list)."""
    names = {p.alias: _is_list(p.field_info.annotation) for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) in (list, tuple, set, frozenset):
        return True
    return any(_is_list(a) for a in get_args(annotation) if a is not type(None))


def _host_only(host: str) -> str:
    if host.startswith("["):
        return host[: host.find("]") + 1].lower()
    return host.rsplit(":", 1)[0].lower() if host.count(":") == 1 else host.lower()


class TrustedHostMiddleware:
    """Refuses requests whose Host header is not one of ``hosts`` (any port):
    with noauth2 a page on another site could otherwise reach a loopback
    server through DNS rebinding and act as admin."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = frozenset(h.lower() for h in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = _host_only(Headers(scope=scope).get("host", ""))
            if host not in self.hosts:
                response = error_response(
                    400,
                    codes.INVALID_HOST,
                    "the Host header is not one this server answers to "
                    "(noauth2 serves loopback names only)",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
