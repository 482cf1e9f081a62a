"""Who is calling, in every mode the same ``Context``: roles, project, user.

Modes:

- ``noauth2`` (loopback only), as OpenStack's: the token is trusted as is and
  reads ``user[:project]``. The token ``admin`` has the admin role; any other
  token has **no role** unless an ``x-roles`` header lists some (``admin``,
  ``service``, ``reader``; others are ignored). The project comes from
  ``x-project-id`` / ``openstack-project-id``, else the token's ``:project``
  part, else the user. For tests and development, never for a real cloud.
- ``tokens``: a JSON or YAML file maps tokens to a role and, optionally, a
  project and user. Unknown tokens are refused. Headers never add a project,
  a user or a role: the file is the only truth.
- ``keystone``: Keystone tokens validated by keystonemiddleware
  (``claimant.api.keystone``); roles, project and user come from the token.

Roles, weakest first: ``reader`` (reads), ``service`` (may write claims,
allocations, inventories, providers), ``admin`` (may also change the catalogue:
resource classes, types, traits; and delete providers). What each route needs
is ``claimant.api.policy``'s business.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Protocol

from claimant.model.errors import (
    FORBIDDEN,
    IDENTITY_UNAVAILABLE,
    UNAUTHORIZED,
    ClaimantError,
    InvalidInput,
)

TOKEN_HEADER = "x-auth-token"
ROLES_HEADER = "x-roles"
PROJECT_HEADERS = ("x-project-id", "openstack-project-id")
USER_HEADERS = ("x-user-id", "openstack-user-id")
SYSTEM_SCOPE_HEADER = "openstack-system-scope"
NOAUTH2 = "noauth2"
TOKENS = "tokens"
KEYSTONE = "keystone"
MODES = (NOAUTH2, TOKENS, KEYSTONE)


class Role(IntEnum):
    """Ordered: a role may do whatever a weaker one may."""

    READER = 1
    SERVICE = 2
    ADMIN = 3

    @classmethod
    def parse(cls, value: Any) -> Role:
        try:
            return cls[str(value).upper()]
        except KeyError:
            raise InvalidInput(
                f"unknown role {value!r}: use one of reader, service, admin"
            ) from None


ROLE_NAMES = frozenset(r.name.lower() for r in Role)


class Unauthorized(ClaimantError):
    code = UNAUTHORIZED


class Forbidden(ClaimantError):
    code = FORBIDDEN


class IdentityUnavailable(ClaimantError):
    """The identity service could not say whether a token is valid (503)."""

    code = IDENTITY_UNAVAILABLE


@dataclass(frozen=True, slots=True)
class Token:
    role: Role
    project_id: str = ""
    user_id: str = ""


@dataclass(frozen=True, slots=True)
class Context:
    """The caller of one HTTP request, as policy rules see it."""

    roles: frozenset[str] = frozenset()
    project_id: str = ""
    user_id: str = ""
    # a system-scoped token (noauth2's openstack-system-scope): Placement's
    # rules are project-scoped and refuse it
    system_scope: bool = False

    @property
    def role(self) -> Role | None:
        """The strongest of claimant's roles the caller has, if any."""
        known = [Role[r.upper()] for r in self.roles if r in ROLE_NAMES]
        return max(known) if known else None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def _first(headers: Mapping[str, str], names: tuple[str, ...]) -> str:
    for name in names:
        value = headers.get(name)
        if value:
            return value
    return ""


def noauth2_context(headers: Mapping[str, str]) -> Context | None:
    """OpenStack's noauth2 (see the module docstring); None without a token."""
    token = headers.get(TOKEN_HEADER)
    if not token:
        return None
    user, _, project = token.partition(":")
    if ROLES_HEADER in headers:
        roles = frozenset(r.strip().lower() for r in headers[ROLES_HEADER].split(",") if r.strip())
    else:
        roles = frozenset({"admin"}) if user == "admin" else frozenset()
    system = bool(headers.get(SYSTEM_SCOPE_HEADER))
    project = "" if system else _first(headers, PROJECT_HEADERS) or project or user
    return Context(roles, project, _first(headers, USER_HEADERS) or user, system)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class Authenticator(Protocol):
    blocking: bool

    def authenticate(self, headers: Mapping[str, str]) -> Context: ...


@dataclass(frozen=True, slots=True)
class AuthConfig:
    mode: str = NOAUTH2
    tokens: Mapping[str, Token] = field(default_factory=dict)
    _by_digest: Mapping[bytes, Token] = field(default_factory=dict, repr=False)
    #: the external validator (``keystone`` mode)
    external: Authenticator | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInput(f"unknown auth mode {self.mode!r}: use one of {', '.join(MODES)}")
        if (self.mode == KEYSTONE) != (self.external is not None):
            raise InvalidInput("keystone mode needs its validator (a config file), others none")
        if self.tokens and not self._by_digest:
            object.__setattr__(self, "_by_digest", {_digest(t): v for t, v in self.tokens.items()})

    @classmethod
    def noauth2(cls) -> AuthConfig:
        return cls(NOAUTH2)

    @classmethod
    def from_token_file(cls, path: str | Path) -> AuthConfig:
        return cls(TOKENS, load_tokens(path))

    @classmethod
    def keystone(cls, config_file: str | Path) -> AuthConfig:
        from claimant.api.keystone import KeystoneAuth

        return cls(KEYSTONE, external=KeystoneAuth(config_file))

    @property
    def blocking(self) -> bool:
        """Whether authenticate() may wait on the network (run it in a thread)."""
        return self.external is not None and self.external.blocking

    def authenticate(self, headers: Mapping[str, str]) -> Context:
        """``headers`` is case-insensitive (Starlette's Headers) or lower-case."""
        token = headers.get(TOKEN_HEADER)
        if not token:
            raise Unauthorized(f"missing {TOKEN_HEADER} header")
        if self.external is not None:
            return self.external.authenticate(headers)
        if self.mode == NOAUTH2:
            ctx = noauth2_context(headers)
            if ctx is None:  # pragma: no cover - the token was checked above
                raise Unauthorized(f"missing {TOKEN_HEADER} header")
            return ctx
        known = self._lookup(token)
        if known is None:
            raise Unauthorized("unknown token")
        # Never from headers: a header must not give a token a project.
        return Context(frozenset({known.role.name.lower()}), known.project_id, known.user_id)

    def _lookup(self, token: str) -> Token | None:
        """Look the token up by its SHA-256 digest and compare digests with
        ``hmac.compare_digest``: neither the dict probe nor the comparison
        depends on how much of a guessed token is right."""
        digest = _digest(token)
        for known, entry in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return entry
        return None


def check_private(path: str | Path, what: str) -> None:
    """Refuse a secret file that group or others may read or write."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {p}: {exc.strerror}") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InvalidInput(
            f"{what} {p} is readable by group or others (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {p}"
        )


def read_mapping_file(path: str | Path, what: str) -> Any:
    """A JSON or YAML file (by its suffix), parsed; errors name the file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {p}: {exc.strerror}") from None
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except Exception as exc:  # json and yaml raise unrelated error types
        raise InvalidInput(f"{what} {p} is not valid JSON/YAML: {exc}") from None


def load_tokens(path: str | Path) -> dict[str, Token]:
    """Read a token file: ``{"tokens": {TOKEN: {"role": ..., "project_id": ...,
    "user_id": ...}}}`` (or the inner mapping alone), as JSON or YAML."""
    p = Path(path)
    check_private(p, "token file")
    data = read_mapping_file(p, "token file")
    if isinstance(data, dict) and isinstance(data.get("tokens"), dict):
        data = data["tokens"]
    if not isinstance(data, dict) or not data:
        raise InvalidInput(f"token file {p} must map tokens to {{role, project_id, user_id}}")
    out: dict[str, Token] = {}
    for token, entry in data.items():
        if isinstance(entry, str):
            entry = {"role": entry}
        if not isinstance(entry, dict):
            raise InvalidInput(f"token file {p}: entry for a token must be a mapping")
        out[str(token)] = Token(
            Role.parse(entry.get("role", "")),
            str(entry.get("project_id", "")),
            str(entry.get("user_id", "")),
        )
    return out
