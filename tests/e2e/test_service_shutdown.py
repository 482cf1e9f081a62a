"""Issue 16 for ``claimant agent run`` and ``claimant conductor serve``:
SIGTERM with a request in flight exits within ``--graceful-timeout`` (uvicorn
alone waits for it for ever), and the option reaches both services."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner

from claimant.api.server import Shutdown
from claimant.cli.main import main
from claimant.model import ClaimStatus, new_uuid
from claimant.store import ClaimSpec, open_store
from tests import children
from tests.api.serve_support import CLI, free_port

GRACEFUL = 2.0


def test_agent_sigterm_during_a_build_exits_within_the_graceful_timeout(tmp_path: Path) -> None:
    url = "sqlite:///" + str(tmp_path / "agent.db").lstrip("/")
    store = open_store(url)
    store.migrate()
    config = tmp_path / "agent.toml"
    # A build takes 60 s: far longer than the graceful timeout.
    config.write_text(
        '[provider]\nname = "host-a"\n[provider.inventories]\nVCPU = 4\nMEMORY_MB = 4096\n'
        '[driver]\nname = "fake"\nbuild_time = 60\n'
    )
    port = free_port()
    log = tmp_path / "agent.log"
    proc = children.popen(
        [
            *CLI,
            "agent",
            "run",
            "--config",
            str(config),
            "--store",
            url,
            "--port",
            str(port),
            "--graceful-timeout",
            str(GRACEFUL),
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        until = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail("agent exited: " + log.read_text())
            try:
                if httpx.get(base + "/state", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < until, log.read_text()
            time.sleep(0.2)
        provider = store.list_providers()[0]
        claim = store.claim(
            ClaimSpec(provider.uuid, provider.generation, {"VCPU": 1}, consumer_uuid=new_uuid())
        )
        replies: list[Any] = []

        def build() -> None:
            body = {"consumer_uuid": claim.consumer_uuid, "claims": [claim.uuid]}
            try:
                replies.append(httpx.post(base + "/build", json=body, timeout=120).status_code)
            except httpx.TransportError as exc:
                replies.append(type(exc).__name__)

        t = threading.Thread(target=build, daemon=True)
        t.start()
        time.sleep(1.0)  # the build is under way
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=GRACEFUL + 60)
        took = time.monotonic() - signalled
        t.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Without the bound, uvicorn waited out the 60 s build.
    assert took < GRACEFUL + 1.0, log.read_text()
    # The build was cut by the exit: its claim was never confirmed, so it
    # expires at its TTL like any claim whose agent went away.
    assert store.get_claim(claim.uuid).status == ClaimStatus.CLAIMED
    store.close()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def record(app: Any, **kw: Any) -> None:
        calls.append({"app": app, **kw})

    monkeypatch.setattr(uvicorn, "run", record)
    monkeypatch.delenv("CLAIMANT_LOOP_TOKEN", raising=False)
    return calls


def test_graceful_timeout_reaches_the_conductor_and_the_agent(
    tmp_path: Path, served: list[dict[str, Any]]
) -> None:
    url = "sqlite:///" + str(tmp_path / "svc.db").lstrip("/")
    r = CliRunner().invoke(main, ["conductor", "serve", "--store", url, "--graceful-timeout", "4"])
    assert r.exit_code == 0, r.output
    config = tmp_path / "agent.toml"
    config.write_text('[provider]\nname = "h"\n[provider.inventories]\nVCPU = 4\n')
    r = CliRunner().invoke(
        main,
        ["agent", "run", "--config", str(config), "--store", url, "--graceful-timeout", "4"],
    )
    assert r.exit_code == 0, r.output
    bound = Shutdown(4.0)
    assert [c["timeout_graceful_shutdown"] for c in served] == [bound.uvicorn_timeout] * 2
    assert 0 < bound.drain < bound.uvicorn_timeout < bound.graceful
    assert 0 < bound.final_wait < bound.graceful - bound.uvicorn_timeout
