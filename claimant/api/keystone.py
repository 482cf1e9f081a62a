"""Keystone tokens, validated by ``keystonemiddleware.auth_token`` as every
OpenStack service validates them.

``claimant serve --auth keystone --config-file FILE`` reads the
``[keystone_authtoken]`` section of FILE (a ``placement.conf`` works as it
is): where Keystone is, the service user that validates tokens, caching.
The middleware's own options and defaults apply, so an operator's existing
section means what it meant for Placement.

A validated token gives the caller its roles (Keystone's effective roles,
implied ones included: ``admin`` implies ``member`` implies ``reader``),
project and user. Headers never add any of them: the middleware strips
``X-Roles``, ``X-Project-Id`` and friends from the request before it
validates. Keystone unreachable is a 503 ``identity_unavailable``, never a
401 (a client would drop a good token) nor a 200.

The middleware is WSGI; it is driven through its public WSGI interface with
a minimal environ holding only the token headers, so nothing of the request
body is read before the caller is known.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from claimant.api.auth import Context, IdentityUnavailable, Unauthorized
from claimant.model.errors import InvalidInput

log = logging.getLogger(__name__)

SECTION = "keystone_authtoken"
# The request headers the middleware reads; nothing else is passed to it.
_TOKEN_HEADERS = ("x-auth-token", "x-service-token")


class KeystoneAuth:
    """Authenticates requests by their Keystone token (``authenticate``)."""

    #: validating may call Keystone: callers on an event loop use a thread
    blocking = True

    def __init__(self, config_file: str | Path) -> None:
        path = Path(config_file)
        if not path.is_file():
            raise InvalidInput(f"cannot read config file {path}")
        try:
            from keystonemiddleware import auth_token
            from oslo_config import cfg
        except ImportError:
            raise InvalidInput(
                "--auth keystone needs keystonemiddleware: pip install 'claimant[keystone]'"
            ) from None
        conf = cfg.ConfigOpts()
        try:
            conf(args=[], project="claimant", default_config_files=[str(path)])
            sections = set(conf.list_all_sections())
        except cfg.Error as exc:
            raise InvalidInput(f"config file {path}: {exc}") from None
        if SECTION not in sections:
            # Without it every request would fail at Keystone: say so at start.
            raise InvalidInput(
                f"config file {path} has no [{SECTION}] section (www_authenticate_uri, "
                "auth_type, auth_url and the service user that validates tokens)"
            )
        self.config_file = path
        self._protocol = auth_token.AuthProtocol(_downstream, {"oslo_config_config": conf})

    def authenticate(self, headers: Mapping[str, str]) -> Context:
        token = headers.get("x-auth-token")
        if not token:
            raise Unauthorized("missing x-auth-token header")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/",
            "SERVER_NAME": "claimant",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": io.StringIO(),
        }
        for name in _TOKEN_HEADERS:
            value = headers.get(name)
            if value:
                environ["HTTP_" + name.upper().replace("-", "_")] = value
        status: list[str] = []

        def start_response(s: str, _h: Any, _exc: Any = None) -> None:
            status.append(s)

        try:
            _consume(self._protocol(environ, start_response))
        except Exception:
            # The middleware raises what keystoneauth raises (a catalog
            # without the endpoint, TLS, ...): that is an identity problem,
            # never a 500 with a traceback for the client.
            log.exception("keystonemiddleware failed to validate a token")
            raise IdentityUnavailable(
                "could not validate the token: the identity service failed"
            ) from None
        token_auth = environ.get("keystone.token_auth")
        user = getattr(token_auth, "user", None) if status[:1] == ["204 No Content"] else None
        if user is None or environ.get("HTTP_X_IDENTITY_STATUS") != "Confirmed":
            code = int(status[0].split()[0]) if status else 500
            if code == 401:
                raise Unauthorized("the token is not valid (Keystone refused it or it expired)")
            raise IdentityUnavailable("could not validate the token: the identity service failed")
        return Context(
            roles=frozenset(r.lower() for r in user.role_names),
            project_id=user.project_id or "",
            user_id=user.user_id or "",
            system_scope=bool(user.system_scoped),
        )


def _downstream(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    # Reached only with a valid token; the environ now holds what it proved.
    start_response("204 No Content", [])
    return [b""]


def _consume(body: Iterable[bytes]) -> None:
    for _ in body:
        pass
    close = getattr(body, "close", None)
    if close is not None:
        close()
