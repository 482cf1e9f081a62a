"""Issue 9: the conductor keeps agent registrations in memory only. Real
``claimant conductor serve`` and ``claimant agent run`` processes: after the
conductor restarts, a build for the host whose agent registered with the old
conductor process must still be built (it failed with "no agent is
registered" until the agent's next resync, a minute later)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from claimant.store import open_store
from tests import children
from tests.api.serve_support import CLI, free_port


def _wait_until(check: object, what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: {log.read_text()}")
        time.sleep(0.1)


@contextmanager
def _process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("a") as out:
        proc = children.popen([*CLI, *args], stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_build_after_the_conductor_restarts(tmp_path: Path) -> None:
    store_url = "sqlite:///" + str(tmp_path / "loop.db").lstrip("/")
    st = open_store(store_url)
    st.migrate()
    st.close()
    config = tmp_path / "agent.toml"
    # Heartbeats are frequent (the test need not wait), resyncs rare: the old
    # agent announced itself only at start-up and on resync.
    config.write_text(
        '[provider]\nname = "host-a"\n[provider.inventories]\nVCPU = 4\nMEMORY_MB = 4096\n'
        "[agent]\nheartbeat_interval = 0.2\nresync_interval = 3600\n"
    )
    c_port, a_port = free_port(), free_port()
    conductor_url = f"http://127.0.0.1:{c_port}"
    conductor_args = ["conductor", "serve", "--store", store_url, "--port", str(c_port)]
    agent_args = ["agent", "run", "--config", str(config), "--store", store_url]
    agent_args += ["--port", str(a_port), "--conductor", conductor_url]
    log = tmp_path / "services.log"

    def agents() -> dict[str, str]:
        listed: dict[str, str] = httpx.get(conductor_url + "/v1/agents", timeout=5).json()["agents"]
        return listed

    def conductor_up() -> bool:
        return httpx.get(conductor_url + "/v1/agents", timeout=5).status_code == 200

    def agent_up() -> bool:
        return httpx.get(f"http://127.0.0.1:{a_port}/state", timeout=5).status_code == 200

    body = {"groups": [{"resources": {"VCPU": 1, "MEMORY_MB": 512}}]}
    with ExitStack() as stack:
        first_conductor = stack.enter_context(ExitStack())
        first_conductor.enter_context(_process(conductor_args, log))
        _wait_until(conductor_up, "the conductor did not start", log)
        stack.enter_context(_process(agent_args, log))
        # It announces itself before its server listens (a miss is rescheduled).
        _wait_until(agent_up, "the agent did not start", log)
        _wait_until(lambda: len(agents()) == 1, "the agent did not register", log)
        first = httpx.post(conductor_url + "/v1/builds?wait=true", json=body, timeout=120)
        assert first.status_code == 201, first.text
        assert first.json()["status"] == "active", first.text

        # The agent runs on; the conductor goes away and comes back empty.
        first_conductor.close()
        stack.enter_context(_process(conductor_args, log))
        _wait_until(conductor_up, "the conductor did not restart", log)
        again = httpx.post(conductor_url + "/v1/builds?wait=true", json=body, timeout=120)
        assert again.status_code == 201, again.text
        assert again.json()["status"] == "active", again.text
        assert len(agents()) == 1
