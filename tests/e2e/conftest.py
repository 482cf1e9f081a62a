"""Fixtures of the end-to-end tests: a real store per backend (SQLite file;
Cassandra when CLAIMANT_TEST_CASSANDRA names a node, as in tests/store),
agents with the fake driver, a conductor, and loopback HTTP servers."""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from claimant.agent import Agent, AgentConfig, FakeDriver
from claimant.store import Store, open_store

CASSANDRA_ENV = "CLAIMANT_TEST_CASSANDRA"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("cassandra", id="cassandra", marks=pytest.mark.cassandra),
]


@pytest.fixture(scope="session")
def cassandra_session_store() -> Iterator[Store]:
    hosts = os.environ.get(CASSANDRA_ENV, "").strip()
    if not hosts:
        pytest.skip(f"Cassandra backend not tested: set {CASSANDRA_ENV}=host[,host...] to run it")
    st = open_store(f"cassandra://{hosts}/claimant_e2e_{secrets.token_hex(4)}?rf=1")
    try:
        st.migrate()
        yield st
    finally:
        with contextlib.suppress(Exception):
            st.drop()
        st.close()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        st = open_store("sqlite:///" + str(tmp_path / "e2e.db").lstrip("/"))
        st.migrate()
        try:
            yield st
        finally:
            st.close()
        return
    st = request.getfixturevalue("cassandra_session_store")
    st.reset()
    yield st


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    st = open_store("sqlite:///" + str(tmp_path / "one.db").lstrip("/"))
    st.migrate()
    try:
        yield st
    finally:
        st.close()


AgentFactory = Callable[..., Agent]


@pytest.fixture
def make_agent() -> Iterator[AgentFactory]:
    started: list[Agent] = []

    def make(
        store: Store,
        name: str,
        *,
        memory_mb: int = 4096,
        vcpu: int = 4,
        failure_rate: float = 0.0,
        extra: dict[str, Any] | None = None,
    ) -> Agent:
        provider = {"name": name, "inventories": {"VCPU": vcpu, "MEMORY_MB": memory_mb}}
        provider.update(extra or {})
        agent = Agent(
            store,
            AgentConfig(provider=provider),
            FakeDriver(failure_rate=failure_rate, seed=1),
        )
        agent.start(background=False)
        started.append(agent)
        return agent

    yield make
    for a in started:
        a.stop()


# TestClient's default Host (testserver) is refused by an open (tokenless)
# conductor or agent: they answer loopback Host names only.
LOOPBACK = "http://127.0.0.1"


class LoopbackServer:
    """A uvicorn server on 127.0.0.1 and a free port, in a thread."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("loopback server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
