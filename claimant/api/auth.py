"""Who is calling and what they may do.

Two modes:

- ``noauth2`` (the default, loopback only): as OpenStack's noauth2, the token
  is trusted as is. ``x-auth-token: admin`` is the admin; any other token is a
  ``service`` caller whose project and user come from the ``openstack-project-id``
  / ``openstack-user-id`` headers, or else from the token itself.
- ``tokens``: a JSON or YAML file maps tokens to a role and, optionally, a
  project and user. Unknown tokens are refused.

Roles, weakest first: ``reader`` (GET only), ``service`` (may write),
``admin`` (may also manage resource classes, types, traits and delete providers).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from claimant.model.errors import FORBIDDEN, UNAUTHORIZED, ClaimantError, InvalidInput

TOKEN_HEADER = "x-auth-token"
PROJECT_HEADER = "openstack-project-id"
USER_HEADER = "openstack-user-id"
NOAUTH2 = "noauth2"
TOKENS = "tokens"
MODES = (NOAUTH2, TOKENS)


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


class Unauthorized(ClaimantError):
    code = UNAUTHORIZED


class Forbidden(ClaimantError):
    code = FORBIDDEN


@dataclass(frozen=True, slots=True)
class Token:
    role: Role
    project_id: str = ""
    user_id: str = ""


@dataclass(frozen=True, slots=True)
class Context:
    """The caller of one HTTP request."""

    role: Role
    project_id: str = ""
    user_id: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role >= Role.ADMIN

    def require(self, role: Role) -> None:
        if self.role < role:
            raise Forbidden(
                f"this action needs the {role.name.lower()} role; "
                f"the caller has {self.role.name.lower()}",
                required=role.name.lower(),
            )


@dataclass(frozen=True, slots=True)
class AuthConfig:
    mode: str = NOAUTH2
    tokens: Mapping[str, Token] = field(default_factory=dict)

    @classmethod
    def noauth2(cls) -> AuthConfig:
        return cls(NOAUTH2)

    @classmethod
    def from_token_file(cls, path: str | Path) -> AuthConfig:
        return cls(TOKENS, load_tokens(path))

    def authenticate(self, headers: Mapping[str, str]) -> Context:
        """``headers`` is case-insensitive (Starlette's Headers)."""
        token = headers.get(TOKEN_HEADER)
        if not token:
            raise Unauthorized(f"missing {TOKEN_HEADER} header")
        if self.mode == NOAUTH2:
            if token == "admin":
                return Context(Role.ADMIN, headers.get(PROJECT_HEADER, ""), "admin")
            return Context(
                Role.SERVICE,
                headers.get(PROJECT_HEADER) or token,
                headers.get(USER_HEADER) or token,
            )
        known = self.tokens.get(token)
        if known is None:
            raise Unauthorized("unknown token")
        return Context(
            known.role,
            known.project_id or headers.get(PROJECT_HEADER, ""),
            known.user_id or headers.get(USER_HEADER, ""),
        )


def load_tokens(path: str | Path) -> dict[str, Token]:
    """Read a token file: ``{"tokens": {TOKEN: {"role": ..., "project_id": ...,
    "user_id": ...}}}`` (or the inner mapping alone), as JSON or YAML."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read token file {p}: {exc.strerror}") from None
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # json and yaml raise unrelated error types
        raise InvalidInput(f"token file {p} is not valid JSON/YAML: {exc}") from None
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
