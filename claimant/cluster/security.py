"""A local cluster with logins and client TLS (``claimant cluster up --auth --tls``).

``--auth``: PasswordAuthenticator and CassandraAuthorizer. Once the nodes
answer, the default ``cassandra``/``cassandra`` superuser (which every new
cluster has, password known to the world) is replaced by a role ``claimant``
with a random password kept in ``DIR/auth/password`` (0600).

``--tls``: the native port speaks TLS only, with a key pair made by the
JDK's keytool (``DIR/tls/keystore.p12``); its self-signed certificate,
``DIR/tls/ca.pem``, is what clients trust. It names every node's address, so
clients keep hostname verification on.
"""

from __future__ import annotations

import os
import secrets
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from claimant.cluster import ClusterError, cql

ROLE = "claimant"
DEFAULT_ROLE = ("cassandra", "cassandra")


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def password_path(directory: Path) -> Path:
    return directory / "auth" / "password"


def ca_path(directory: Path) -> Path:
    return directory / "tls" / "ca.pem"


def keystore_path(directory: Path) -> Path:
    return directory / "tls" / "keystore.p12"


def keystore_password_path(directory: Path) -> Path:
    return directory / "tls" / "keystore.password"


def make_password(directory: Path) -> None:
    """The claimant role's password, once per cluster (kept across restarts)."""
    path = password_path(directory)
    if not path.exists():
        _private_dir(path.parent)
        # URL-safe characters only: it is pasted into CREATE ROLE's literal.
        _write_secret(path, secrets.token_urlsafe(24) + "\n")


def read_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ClusterError(f"cannot read {path}: {exc.strerror}") from exc


def keytool(java: str) -> str:
    """The keytool of the JDK that runs the nodes."""
    tool = Path(os.path.realpath(java)).parent / "keytool"
    if not os.access(tool, os.X_OK):
        raise ClusterError(f"--tls needs keytool next to {java} (a full JDK 17)")
    return str(tool)


def make_keystore(java: str, directory: Path, addresses: list[str]) -> None:
    """A PKCS12 keystore for the nodes and its certificate in PEM for clients."""
    store = keystore_path(directory)
    if store.exists():
        return
    _private_dir(store.parent)
    password = secrets.token_urlsafe(24)
    _write_secret(keystore_password_path(directory), password + "\n")
    san = ",".join([*(f"ip:{a}" for a in addresses), "dns:localhost"])
    tool = keytool(java)
    common = ["-storetype", "PKCS12", "-keystore", str(store), "-storepass", password]
    steps = [
        [
            tool,
            "-genkeypair",
            "-alias",
            "node",
            "-keyalg",
            "EC",
            "-groupname",
            "secp256r1",
            "-validity",
            "3650",
            "-dname",
            "CN=claimant local cluster",
            "-ext",
            f"SAN={san}",
            *common,
            "-keypass",
            password,
        ],
        [tool, "-exportcert", "-rfc", "-alias", "node", "-file", str(ca_path(directory)), *common],
    ]
    for args in steps:
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ClusterError(f"keytool failed: {exc}") from exc
        if done.returncode != 0:
            store.unlink(missing_ok=True)
            raise ClusterError(f"keytool failed: {(done.stderr or done.stdout).strip()}")
    store.chmod(0o600)


def yaml_settings(directory: Path, *, auth: bool, tls: bool) -> dict[str, Any]:
    """cassandra.yaml keys for the two options (replacing AllowAll*)."""
    out: dict[str, Any] = {}
    if auth:
        out["authenticator"] = {"class_name": "PasswordAuthenticator"}
        out["authorizer"] = {"class_name": "CassandraAuthorizer"}
    if tls:
        out["client_encryption_options"] = {
            "enabled": True,
            "optional": False,  # TLS only: no plain-text client on the native port
            "keystore": str(keystore_path(directory)),
            "keystore_password": read_secret(keystore_password_path(directory)),
            "store_type": "PKCS12",
            "require_client_auth": False,
        }
    return out


def access(directory: Path, *, auth: bool, tls: bool) -> cql.Access:
    """How the launcher's own CQL client logs in to the cluster in DIR."""
    context = None
    if tls:
        context = ssl.create_default_context(cafile=str(ca_path(directory)))
    if not auth:
        return cql.Access(tls=context)
    return cql.Access(ROLE, read_secret(password_path(directory)), context)


def url_options(directory: Path, *, auth: bool, tls: bool) -> str:
    """The store URL's query options for the cluster in DIR (no secret in it)."""
    parts = []
    if auth:
        parts.append(f"user={ROLE}&password_file={quote(str(password_path(directory)))}")
    if tls:
        parts.append(f"ca_file={quote(str(ca_path(directory)))}")
    return "".join("&" + p for p in parts)


def auth_replication_cql(replication: dict[str, int]) -> str:
    """``ALTER KEYSPACE system_auth`` to ``replication``: {dc: rf}, every DC."""
    per_dc = "".join(f", '{dc}': {rf}" for dc, rf in replication.items())
    return (
        "ALTER KEYSPACE system_auth WITH replication ="
        f" {{'class': 'NetworkTopologyStrategy'{per_dc}}}"
    )


def replace_default_role(
    address: str, mine: cql.Access, replication: dict[str, int], timeout: float
) -> None:
    """Make the ``claimant`` role and drop ``cassandra``; a no-op once done.

    A new node creates the default role some seconds after it first answers
    CQL (CassandraRoleManager's setup delay), so its login is retried."""
    deadline = time.monotonic() + timeout
    default = mine.login(*DEFAULT_ROLE)
    while True:
        try:
            cql.query(address, "SELECT role FROM system_auth.roles LIMIT 1", access=mine)
            break  # ours works: done before (the default role is gone then too)
        except cql.AuthError:
            pass
        except (OSError, cql.CQLError) as exc:
            if time.monotonic() > deadline:
                raise ClusterError(f"cannot log in to {address}: {exc}") from exc
        try:
            # Roles are read at QUORUM: replicate them to every node of a small
            # cluster before the first one is written.
            cql.query(
                address,
                auth_replication_cql(replication),
                access=default,
                timeout=30,
            )
            cql.query(
                address,
                f"CREATE ROLE IF NOT EXISTS {ROLE} WITH PASSWORD = '{mine.password}'"
                " AND LOGIN = true AND SUPERUSER = true",
                access=default,
                timeout=30,
            )
        except (OSError, cql.CQLError) as exc:
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"could not replace the default superuser on {address} within"
                    f" {timeout:.0f}s: {exc}"
                ) from exc
            time.sleep(1.0)
            continue
    # Logged in as ourselves: the well-known login goes (idempotent).
    cql.query(address, "DROP ROLE IF EXISTS cassandra", access=mine, timeout=30)
