"""The real ``claimant serve`` process over a real port, and its refusals."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from claimant.cli.main import main
from tests import children

CLI = [sys.executable, "-c", "from claimant.cli.main import main; main()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path, token_file: Path) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = children.popen(
        [
            *CLI,
            "serve",
            "--store",
            "sqlite:///" + str(tmp_path / "served.db").lstrip("/"),
            "--port",
            str(port),
            "--auth",
            "tokens",
            "--token-file",
            str(token_file),
            "--no-access-log",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail("claimant serve exited: " + (tmp_path / "serve.log").read_text())
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("claimant serve did not start: " + (tmp_path / "serve.log").read_text())
            time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_real_server_schedules_over_http(server: str) -> None:
    admin = httpx.Client(base_url=server, headers={"x-auth-token": "admin-secret"})
    reader = httpx.Client(base_url=server, headers={"x-auth-token": "reader-secret"})
    r = admin.post("/v1/providers", json={"name": "cn1", "inventories": {"VCPU": {"total": 4}}})
    assert r.status_code == 201, r.text
    r = admin.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 3}}]})
    assert r.status_code == 201, r.text
    assert r.json()["placements"][0]["claims"][0]["amounts"] == {"VCPU": 3}
    again = admin.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 3}}]})
    assert again.status_code == 409 and again.json()["error"]["code"] == "no_valid_host"
    assert reader.post("/v1/providers", json={"name": "x"}).status_code == 403
    assert httpx.get(server + "/v1/providers").status_code == 401
    assert admin.get("/v1/openapi.json").json()["info"]["title"] == "claimant native API"
    metrics = httpx.get(server + "/metrics").text
    assert 'claimant_placements_total{result="placed"} 1.0' in metrics
    assert "claimant_no_valid_host_total 1.0" in metrics
    assert 'route="/v1/requests",status="201"' in metrics


@pytest.mark.parametrize(
    ("case", "args", "message"),
    [
        ("noauth2 on all addresses", ["--host", "0.0.0.0"], "refusing to bind 0.0.0.0"),
        ("noauth2 on a name", ["--host", "myhost.example"], "refusing to bind"),
        ("tokens without a file", ["--auth", "tokens"], "--token-file"),
    ],
)
def test_serve_refuses(tmp_path: Path, case: str, args: list[str], message: str) -> None:
    db = tmp_path / "never.db"
    result = CliRunner().invoke(
        main, ["serve", "--store", f"sqlite:///{db}".replace("////", "///"), *args]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not db.exists()
    assert "Traceback" not in result.output


def test_serve_rejects_bad_store_url(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--store", "mysql://x"])
    assert result.exit_code == 1
    # A store is a plugin named by the URL's scheme (issue 13): the known ones are listed.
    assert "unknown_plugin" in result.output and "Traceback" not in result.output
    assert "cassandra:// or sqlite://" in result.output


@pytest.mark.parametrize(
    ("case", "files", "args", "message"),
    [
        (
            "world-readable token file",
            {"tokens.json": ('{"t": "admin"}', 0o644)},
            ["--auth", "tokens", "--token-file", "{tokens.json}"],
            "chmod 600",
        ),
        (
            "policy file with a typo in a rule name",
            {"policy.yaml": ('"placement:resource_provider:delete": "@"\n', 0o600)},
            ["--policy-file", "{policy.yaml}"],
            "unknown rule",
        ),
        (
            "policy file that does not parse",
            {"policy.json": ('{"claimant:list_providers": "role:admin or"}', 0o600)},
            ["--policy-file", "{policy.json}"],
            "unexpected end",
        ),
    ],
)
def test_serve_refuses_bad_security_files(
    tmp_path: Path,
    case: str,
    files: dict[str, tuple[str, int]],
    args: list[str],
    message: str,
) -> None:
    """Issue 9: checked before serving, not in every worker (or never)."""
    paths = {}
    for name, (text, mode) in files.items():
        path = tmp_path / name
        path.write_text(text)
        path.chmod(mode)
        paths[name] = str(path)
    args = [paths.get(a.strip("{}"), a) for a in args]
    db = tmp_path / "never.db"
    result = CliRunner().invoke(
        main, ["serve", "--store", "sqlite:///" + str(db).lstrip("/"), *args]
    )
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
