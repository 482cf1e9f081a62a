"""Issue 9: credentials and TLS options of the Cassandra store URL, checked
when the store is opened (no node needed). The logins themselves are tested
against a real node with PasswordAuthenticator in tests/cluster/test_live_auth.py."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from claimant.model import InvalidInput
from claimant.store import open_store
from claimant.store.cassandra import CassandraStore


def _open(url: str) -> CassandraStore:
    st = open_store(url)
    assert isinstance(st, CassandraStore)
    return st


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text("s3cret\n")
    path.chmod(0o600)
    return path


def test_password_from_a_file(password_file: Path) -> None:
    st = _open(f"cassandra://127.0.0.1/ks?user=claimant&password_file={password_file}")
    assert (st.security.user, st.security.password) == ("claimant", "s3cret")
    assert "s3cret" not in repr(st.security)
    assert st.security.ssl_context is None


def test_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMANT_TEST_CASS_PW", "from-env")
    st = _open("cassandra://127.0.0.1/ks?user=u&password_env=CLAIMANT_TEST_CASS_PW")
    assert st.security.password == "from-env"


@pytest.mark.parametrize(
    ("case", "query", "needle"),
    [
        ("inline password", "user=u&password=hunter2", "must not carry credentials"),
        ("user without password", "user=u", "needs password_file"),
        ("password without user", "password_env=HOME", "needs user"),
        ("both sources", "user=u&password_env=HOME&password_file=/x", "not both"),
        ("unset variable", "user=u&password_env=CLAIMANT_NO_SUCH_VAR", "is not set"),
        ("missing file", "user=u&password_file=/nonexistent/pw", "cannot read"),
        ("tls flag", "tls=maybe", "true or false"),
        ("ca without tls", "tls=false&ca_file=/x", "need tls=true"),
        ("missing ca", "ca_file=/nonexistent/ca.pem", "no file"),
        ("cert without key", "tls=true&cert_file=/x", "go together"),
    ],
)
def test_bad_credentials_options(case: str, query: str, needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        open_store(f"cassandra://127.0.0.1/ks?{query}")


def test_credentials_in_the_netloc_are_refused() -> None:
    with pytest.raises(InvalidInput, match="must not carry credentials") as info:
        open_store("cassandra://claimant:hunter2@127.0.0.1/ks")
    assert "hunter2" not in str(info.value)


def test_a_readable_password_file_is_refused(password_file: Path) -> None:
    password_file.chmod(0o644)
    with pytest.raises(InvalidInput, match="readable by group or others"):
        open_store(f"cassandra://127.0.0.1/ks?user=u&password_file={password_file}")


def test_tls_verifies_hostnames_by_default(tmp_path: Path) -> None:
    st = _open("cassandra://127.0.0.1/ks?tls=true")
    ctx = st.security.ssl_context
    assert ctx is not None
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    st = _open("cassandra://127.0.0.1/ks?tls=true&verify_hostname=false")
    assert st.security.ssl_context is not None
    assert not st.security.ssl_context.check_hostname
    assert st.security.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_a_bad_ca_file_is_invalid_input(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    with pytest.raises(InvalidInput, match="TLS files are not usable"):
        open_store(f"cassandra://127.0.0.1/ks?ca_file={ca}")


@pytest.fixture
def client_pair(tmp_path: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl to make a client certificate")
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", "/CN=claimant", "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    key.chmod(0o600)
    return cert, key


def test_client_certificate(client_pair: tuple[Path, Path]) -> None:
    cert, key = client_pair
    st = _open(f"cassandra://127.0.0.1/ks?ca_file={cert}&cert_file={cert}&key_file={key}")
    assert st.security.ssl_context is not None
    key.chmod(0o644)
    with pytest.raises(InvalidInput, match=r"key_file: .* readable by group or others"):
        open_store(f"cassandra://127.0.0.1/ks?tls=true&cert_file={cert}&key_file={key}")
