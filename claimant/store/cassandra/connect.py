"""Credentials and TLS for the Cassandra store, from its URL's options.

``user`` with ``password_file`` or ``password_env`` (PasswordAuthenticator);
``tls``, ``ca_file``, ``cert_file`` / ``key_file`` and ``verify_hostname``
(client encryption). A password is never accepted in the URL itself: URLs end
up in process lists, shell history and logs.
"""

from __future__ import annotations

import logging
import os
import ssl
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cassandra import AuthenticationFailed
from cassandra.auth import PlainTextAuthProvider

from claimant.model import InvalidInput, StoreUnavailable

log = logging.getLogger(__name__)

OPTIONS: Final = (
    "user",
    "password_file",
    "password_env",
    "tls",
    "ca_file",
    "cert_file",
    "key_file",
    "verify_hostname",
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Security:
    """How the store logs in and encrypts; both optional."""

    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl_context: ssl.SSLContext | None = None

    def cluster_options(self) -> dict[str, Any]:
        """Keyword arguments for the driver's ``Cluster``."""
        out: dict[str, Any] = {}
        if self.user is not None:
            out["auth_provider"] = PlainTextAuthProvider(self.user, self.password)
        if self.ssl_context is not None:
            # The driver checks the certificate against each host's address
            # when the context checks hostnames (nodes are contacted by IP).
            out["ssl_context"] = self.ssl_context
        return out


def _flag(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise InvalidInput(f"store URL option {name} must be true or false, got {value!r}")


def _private_file(name: str, path: str) -> str:
    """Read a secret file; refuse one that group or others may read."""
    try:
        st = os.stat(path)
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise InvalidInput(
                f"store URL option {name}: {path} is readable by group or others;"
                f" chmod 600 it (it holds a secret)"
            )
        return Path(path).read_text()
    except OSError as exc:
        raise InvalidInput(
            f"store URL option {name}: cannot read {path} ({exc.strerror})"
        ) from None


def _readable(name: str, path: str) -> str:
    if not os.path.isfile(path):
        raise InvalidInput(f"store URL option {name}: no file {path}")
    return path


def refuse_inline_password(query_keys: set[str], netloc: str) -> None:
    """A password in the URL is an error, wherever it was put."""
    if "password" in query_keys or "@" in netloc:
        raise InvalidInput(
            "a Cassandra store URL must not carry credentials (URLs show in process lists"
            " and logs): use ?user=NAME&password_file=PATH or &password_env=VARIABLE"
        )


def parse(options: dict[str, str]) -> Security:
    """The connection's security from the URL options (others are ignored)."""
    user = options.get("user") or None
    sources = [k for k in ("password_file", "password_env") if options.get(k)]
    if len(sources) > 1:
        raise InvalidInput("store URL: give password_file or password_env, not both")
    password: str | None = None
    if sources == ["password_file"]:
        # One line; the newline an editor or `echo` adds is not part of it.
        password = _private_file("password_file", options["password_file"]).rstrip("\r\n")
    elif sources == ["password_env"]:
        var = options["password_env"]
        password = os.environ.get(var)
        if not password:
            raise InvalidInput(f"store URL option password_env: ${var} is not set or empty")
    if user is None and password is not None:
        raise InvalidInput("store URL: a password needs user=NAME")
    if user is not None and not password:
        raise InvalidInput(
            f"store URL: user {user!r} needs password_file=PATH or password_env=VARIABLE"
        )

    ca_file = options.get("ca_file") or None
    cert_file = options.get("cert_file") or None
    key_file = options.get("key_file") or None
    tls = _flag("tls", options["tls"]) if "tls" in options else bool(ca_file or cert_file)
    verify_hostname = _flag("verify_hostname", options.get("verify_hostname", "true"))
    tls_only = [k for k in ("ca_file", "cert_file", "key_file", "verify_hostname") if k in options]
    if not tls:
        if tls_only:
            raise InvalidInput(f"store URL: {', '.join(tls_only)} need tls=true")
        return Security(user, password)
    if bool(cert_file) != bool(key_file):
        raise InvalidInput("store URL: cert_file and key_file go together")
    try:
        # Verifies the chain always; with ca_file, against that CA only.
        context = ssl.create_default_context(
            cafile=_readable("ca_file", ca_file) if ca_file else None
        )
        context.check_hostname = verify_hostname
        if cert_file and key_file:
            _private_file("key_file", key_file)
            context.load_cert_chain(_readable("cert_file", cert_file), key_file)
    except ssl.SSLError as exc:
        raise InvalidInput(
            f"store URL: the TLS files are not usable ({exc.reason or 'bad PEM'})"
        ) from None
    return Security(user, password, context)


def connect_error(exc: BaseException, security: Security, where: str) -> StoreUnavailable:
    """A connection failure as one clear sentence; the driver's text goes to
    the log only."""
    log.warning("cannot connect to Cassandra at %s: %r", where, exc)
    causes: list[BaseException] = [exc, *getattr(exc, "errors", {}).values()]
    for cause in causes:
        if isinstance(cause, AuthenticationFailed):
            if security.user is None:
                return StoreUnavailable(
                    f"Cassandra at {where} requires authentication: add"
                    " user=NAME&password_file=PATH to the store URL",
                    reason="authentication_required",
                )
            return StoreUnavailable(
                f"Cassandra authentication failed for user {security.user!r} at {where}",
                reason="authentication_failed",
            )
    for cause in causes:
        # The driver wraps a failed handshake in an OSError that only says
        # "[SSL: ...]" in its text.
        text = str(cause)
        if isinstance(cause, ssl.SSLError) or (
            security.ssl_context is not None and ("SSL" in text or "certificate" in text.lower())
        ):
            return StoreUnavailable(
                f"TLS handshake with Cassandra at {where} failed: check ca_file,"
                " cert_file and verify_hostname in the store URL",
                reason="tls_failed",
            )
    return StoreUnavailable(f"cannot reach Cassandra at {where}", reason="unreachable")
