"""The front door of the conductor's and the agent's HTTP surfaces.

In this order, before a route runs and before FastAPI reads the body:

1. a ``Content-Length`` above ``max_body`` is answered 413 unread;
2. with no tokens configured, a ``Host`` that is not a loopback name or
   address is refused (400): a web page could otherwise reach a loopback
   service through DNS rebinding;
3. the ``X-Auth-Token`` is checked (401), and the caller's role against the
   method (403: ``reader`` may GET, ``service`` and ``admin`` may write);
4. a body must be ``application/json`` (415): a browser sends other types
   cross-site without asking first, so a page could otherwise POST to an
   open loopback service;
5. the body is read up to ``max_body`` (413 beyond it, chunked bodies too)
   and handed to the app.

Tokens are looked up by their SHA-256 digest with ``hmac.compare_digest``
over every known digest, so neither the lookup nor the comparison depends on
how much of a guessed token is right. Token files readable by group or
others are refused (docs/loop.md, "Security").
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claimant.api.auth import Role, Token, check_private, load_tokens
from claimant.api.errors import error_response
from claimant.http_client import TOKEN_HEADER
from claimant.model import errors as codes
from claimant.model.errors import InvalidInput
from claimant.model.provider import normalize_uuid

# Paths any caller may GET without a token (claimant.agent.observe): counts only.
PUBLIC_PATHS = frozenset({"/healthz", "/metrics"})

DEFAULT_MAX_BODY = 1024 * 1024
MIN_MAX_BODY = 1024
CALLER_KEY = "claimant_service_caller"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who called: ``identity`` names the owner of what it registers (the
    token file's user_id, else a digest of the token), ``token`` is what the
    conductor presents back to an agent that registered with it."""

    role: Role
    identity: str
    token: str | None = None
    # The providers (uuids or names) this caller may register; None: any
    # nobody else registered first.
    providers: frozenset[str] | None = None

    @property
    def is_admin(self) -> bool:
        return self.role >= Role.ADMIN


# No token configured (loopback only, as the CLIs enforce): everyone is admin.
OPEN = Caller(Role.ADMIN, "anonymous")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class ServiceAuth:
    """The tokens one service accepts (none: open)."""

    def __init__(
        self,
        tokens: Mapping[str, Token] | None = None,
        providers: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        """``providers``: token -> the providers it alone may register."""
        self._by_digest: list[tuple[bytes, Caller]] = []
        for token, entry in (tokens or {}).items():
            if not token:
                raise InvalidInput("a token must not be empty")
            digest = _digest(token)
            identity = entry.user_id or "token-" + digest.hex()[:16]
            allowed = (providers or {}).get(token)
            self._by_digest.append((digest, Caller(entry.role, identity, token, allowed)))
        # Providers some token lists: no other token may register them.
        self.listed: frozenset[str] = frozenset().union(*(providers or {}).values())

    @property
    def open(self) -> bool:
        return not self._by_digest

    @classmethod
    def shared(cls, token: str | None) -> ServiceAuth:
        """One token every caller and agent shares (one identity, admin)."""
        return cls({token: Token(Role.ADMIN, "", "shared")} if token else None)

    @classmethod
    def from_file(cls, path: str | Path) -> ServiceAuth:
        """``claimant serve``'s token file format: token -> role, project_id,
        user_id; here a token may also list the ``providers`` (uuids or
        names) it may register."""
        check_private(path, "token file")
        return cls(load_tokens(path), _provider_lists(Path(path)))

    def authenticate(self, given: str | None) -> Caller | None:
        if self.open:
            return OPEN
        if not given:
            return None
        digest = _digest(given)
        found: Caller | None = None
        for known, caller in self._by_digest:
            # No early exit: every digest is compared whatever matches.
            if hmac.compare_digest(known, digest):
                found = caller
        return found


def _provider_lists(path: Path) -> dict[str, frozenset[str]]:
    """The ``providers`` of each token entry (``load_tokens`` has checked the
    rest of the file and ignores this key)."""
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if isinstance(data, dict) and isinstance(data.get("tokens"), dict):
        data = data["tokens"]
    out: dict[str, frozenset[str]] = {}
    for token, entry in data.items():
        if not isinstance(entry, dict) or "providers" not in entry:
            continue
        names = entry["providers"]
        if (
            not isinstance(names, list)
            or not names
            or not all(isinstance(n, str) and n for n in names)
        ):
            raise InvalidInput(
                f"token file {path}: providers must be a non-empty list of provider uuids or names"
            )
        out[str(token)] = frozenset(_canonical(n) for n in names)
    return out


def _canonical(name_or_uuid: str) -> str:
    try:
        return normalize_uuid(name_or_uuid)
    except InvalidInput:
        return name_or_uuid


def read_token_file(path: str | Path) -> str:
    """A file holding one token (its first line, stripped); private to its owner."""
    p = Path(path)
    check_private(p, "token file")
    try:
        lines = p.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read token file {p}: {exc}") from None
    token = lines[0].strip() if lines else ""
    if not token:
        raise InvalidInput(f"token file {p} is empty: write the token on its first line")
    return token


def check_service_url(url: object, what: str = "url") -> str:
    """An http(s) URL with a host, a valid port and nothing else to hide:
    no credentials, query or fragment, only printable ASCII."""
    if not isinstance(url, str) or not url:
        raise InvalidInput(f"{what} must be an http:// or https:// URL", field=what)
    # ASCII only (an IDN host is written in punycode): no spaces, controls or
    # lone surrogates, which the HTTP client could not encode.
    if not all(33 <= ord(c) < 127 for c in url):
        raise InvalidInput(
            f"{what} must be printable ASCII, without spaces (punycode for IDN hosts)",
            field=what,
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidInput(f"{what} is not a valid URL", field=what) from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(f"{what} must be an http:// or https:// URL", field=what)
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(f"{what} must not carry credentials", field=what)
    if not parts.hostname:
        raise InvalidInput(f"{what} must name a host", field=what)
    if parts.query or parts.fragment:
        raise InvalidInput(f"{what} must not have a query or a fragment", field=what)
    return url


def is_loopback_host(host_header: str) -> bool:
    """A Host header naming ``localhost`` or a loopback address (any port)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def caller_of(scope: Scope) -> Caller:
    caller = scope.get("state", {}).get(CALLER_KEY)
    return caller if isinstance(caller, Caller) else OPEN


def _declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None  # uvicorn refuses a malformed length before the app sees it


class ServiceGate:
    """The ASGI middleware of the module docstring."""

    def __init__(self, app: ASGIApp, *, auth: ServiceAuth, max_body: int) -> None:
        if max_body < MIN_MAX_BODY:
            raise InvalidInput(f"max_body must be at least {MIN_MAX_BODY} bytes", field="max_body")
        self.app = app
        self.auth = auth
        self.max_body = max_body

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            codes.PAYLOAD_TOO_LARGE,
            f"the request body is larger than {self.max_body} bytes",
            {"max_body": self.max_body},
            # The unread rest is still on the wire: close, don't drain it.
            headers={"connection": "close"},
        )
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = _declared_length(headers)
        if length is not None and length > self.max_body:
            await self._too_large(scope, receive, send)
            return
        if self.auth.open and not is_loopback_host(headers.get("host", "")):
            response = error_response(
                400,
                codes.INVALID_HOST,
                "without a token this service answers loopback Host names only "
                "(localhost, 127.0.0.1, [::1])",
            )
            await response(scope, receive, send)
            return
        if scope["method"] == "GET" and scope.get("path") in PUBLIC_PATHS:
            # Health and metrics, as the API serves them: no token needed.
            await self.app(scope, receive, send)
            return
        caller = self.auth.authenticate(headers.get(TOKEN_HEADER))
        if caller is None:
            response = error_response(
                401,
                codes.UNAUTHORIZED,
                f"a valid {TOKEN_HEADER} header is required",
                headers={"WWW-Authenticate": TOKEN_HEADER.lower()},
            )
            await response(scope, receive, send)
            return
        needed = Role.READER if scope["method"] in _READ_METHODS else Role.SERVICE
        if caller.role < needed:
            response = error_response(
                403,
                codes.FORBIDDEN,
                f"this action needs the {needed.name.lower()} role; "
                f"the caller has {caller.role.name.lower()}",
                {"required": needed.name.lower()},
            )
            await response(scope, receive, send)
            return
        has_body = (length or 0) > 0 or "transfer-encoding" in headers
        if has_body and not _is_json(headers.get("content-type", "")):
            response = error_response(
                415,
                codes.UNSUPPORTED_MEDIA_TYPE,
                "a request body must be JSON (Content-Type: application/json)",
                headers={"connection": "close"},
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[CALLER_KEY] = caller
        body = await self._read(receive)
        if body is None:
            await self._too_large(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body (at most ``max_body`` bytes, joined once), or None
        past the limit. Every route here takes a small JSON body or none."""
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees an empty body
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # http.disconnect, when the app waits for it

    return replay


async def json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
        raise InvalidInput("the request body is not valid JSON") from None


__all__ = [
    "CALLER_KEY",
    "DEFAULT_MAX_BODY",
    "OPEN",
    "TOKEN_HEADER",
    "Caller",
    "ServiceAuth",
    "ServiceGate",
    "caller_of",
    "check_private",
    "check_service_url",
    "is_loopback_host",
    "json_body",
    "read_token_file",
]
