"""Issue 9: a real node started with ``--auth --tls`` (PasswordAuthenticator,
TLS-only native port), and the Cassandra store logging in to it.

One node on 127.0.0.12 (its own address: tests/addresses.py), shared by the
module (about 45 s to start on 2 busy cores) and destroyed at the end. Runs
where the Cassandra tests run (CLAIMANT_TEST_CASSANDRA set: Java and the jars
are there); skipped without Java or when its ports are taken.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from claimant.cli.cluster import cluster
from claimant.cluster import ClusterError, cql, security
from claimant.cluster import node as proc
from claimant.model import StoreUnavailable
from claimant.store import Store, open_store
from tests.addresses import LIVE_AUTH

ADDRESS = LIVE_AUTH.base

pytestmark = pytest.mark.cassandra


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(cluster dir, the store URL `cluster up` printed)."""
    try:
        proc.check_java(proc.find_java())
    except ClusterError as exc:
        pytest.skip(str(exc))
    if proc.port_in_use(ADDRESS, 9042):
        pytest.skip(f"{ADDRESS}:9042 is busy")
    directory = tmp_path_factory.mktemp("auth") / "c1"
    run = CliRunner()
    args = ["up", "-n", "1", "--dir", str(directory), "--base-address", ADDRESS]
    try:
        up = run.invoke(cluster, [*args, "--auth", "--tls"])
        assert up.exit_code == 0, up.output
        url = next(
            line.split()[-1] for line in up.output.splitlines() if line.startswith("store URL")
        )
        yield directory, url
    finally:
        run.invoke(cluster, ["destroy", "--yes", "--dir", str(directory)])


def _options(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


def _other_keyspace(url: str, keyspace: str) -> str:
    return url.replace("/claimant?", f"/{keyspace}?")


def test_url_names_files_not_secrets(secured: tuple[Path, str]) -> None:
    directory, url = secured
    opts = _options(url)
    password_file = Path(opts["password_file"])
    assert opts["user"] == "claimant"
    assert Path(opts["ca_file"]) == security.ca_path(directory)
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password_file.read_text().strip() not in url
    url_cmd = CliRunner().invoke(cluster, ["url", "--dir", str(directory)])
    assert url_cmd.output.strip() == url
    for secret in (password_file, security.keystore_path(directory)):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    yaml_file = directory / "node1" / "conf" / "cassandra.yaml"
    assert stat.S_IMODE(yaml_file.stat().st_mode) == 0o600  # it holds the keystore password


@pytest.fixture(scope="module")
def migrated(secured: tuple[Path, str]) -> Iterator[Store]:
    """The store migrated once over TLS with the generated login (a schema
    costs 20-30 s here), shared by the tests below."""
    _, url = secured
    st = open_store(_other_keyspace(url, "auth_store"))
    try:
        st.migrate()
        yield st
    finally:
        st.close()  # no drop: the whole cluster is destroyed after the module


def test_store_logs_in_over_tls(migrated: Store) -> None:
    assert migrated.list_requests() == []
    assert "VCPU" in {rc.name for rc in migrated.list_resource_classes()}


def test_the_default_superuser_is_gone(secured: tuple[Path, str]) -> None:
    directory, _ = secured
    mine = security.access(directory, auth=True, tls=True)
    with pytest.raises(cql.AuthError):
        cql.query(
            ADDRESS, "SELECT * FROM system.local", access=mine.login("cassandra", "cassandra")
        )
    roles = cql.query(ADDRESS, "SELECT role FROM system_auth.roles", access=mine)
    assert [r["role"] for r in roles] == ["claimant"]


@pytest.mark.parametrize(
    ("case", "change", "message", "reason"),
    [
        (
            "wrong password",
            {"password_file": None, "password_env": "CLAIMANT_TEST_WRONG_PW"},
            "authentication failed for user 'claimant'",
            "authentication_failed",
        ),
        (
            "no login",
            {"user": None, "password_file": None},
            "requires authentication",
            "authentication_required",
        ),
        ("system CAs", {"ca_file": None, "tls": "true"}, "TLS handshake", "tls_failed"),
    ],
)
def test_clear_connect_errors(
    secured: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    change: dict[str, str | None],
    message: str,
    reason: str,
) -> None:
    monkeypatch.setenv("CLAIMANT_TEST_WRONG_PW", "not-the-password")
    _, url = secured
    opts = {**_options(url), **change}
    query = "&".join(f"{k}={v}" for k, v in opts.items() if v is not None)
    st = open_store(f"cassandra://{ADDRESS}/auth_errors?{query}")
    try:
        with pytest.raises(StoreUnavailable) as info:
            st.migrate()
    finally:
        st.close()
    assert message in info.value.message
    assert info.value.details["reason"] == reason
    for driver_text in ("Provided username", "code=0100", "NoHostAvailable", "_ssl.c"):
        assert driver_text not in info.value.message


def test_status_and_a_second_up_log_in(secured: tuple[Path, str]) -> None:
    directory, url = secured
    run = CliRunner()
    check = run.invoke(cluster, ["status", "--check", "--dir", str(directory)])
    assert check.exit_code == 0, check.output
    # Resuming a running secured cluster needs neither the default role nor
    # the flags again, and prints the same URL.
    again = run.invoke(cluster, ["up", "-n", "1", "--dir", str(directory)])
    assert again.exit_code == 0, again.output
    assert url in again.output


def test_a_role_without_permissions_gets_a_clear_error(
    secured: tuple[Path, str], migrated: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, url = secured
    mine = security.access(directory, auth=True, tls=True)
    cql.query(
        ADDRESS,
        "CREATE ROLE IF NOT EXISTS app WITH PASSWORD = 'app-pw' AND LOGIN = true",
        access=mine,
    )
    monkeypatch.setenv("CLAIMANT_TEST_APP_PW", "app-pw")
    opts = {**_options(url), "user": "app", "password_env": "CLAIMANT_TEST_APP_PW"}
    del opts["password_file"]
    query = "&".join(f"{k}={v}" for k, v in opts.items())
    app = open_store(f"cassandra://{ADDRESS}/auth_store?{query}")
    try:
        with pytest.raises(StoreUnavailable) as info:
            app.list_requests()
        assert info.value.details["reason"] == "unauthorized"
        assert "permission" in info.value.message
        assert "SELECT" not in info.value.message  # the driver's text stays in the log
        for grant in ("SELECT", "MODIFY"):
            cql.query(ADDRESS, f"GRANT {grant} ON KEYSPACE auth_store TO app", access=mine)
        # What serving needs (migrate needs CREATE). Nodes cache permissions
        # for 2 s (permissions_validity): a grant shows up within that.
        deadline = time.monotonic() + 60
        while True:
            try:
                assert app.list_requests() == []
                break
            except StoreUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        app.close()
