"""Fixtures of the end-to-end tests: ``store`` is a real store per backend
(``any_store``, tests/conftest.py; ``sqlite_store`` is one SQLite file),
agents with the fake driver, a conductor, and loopback HTTP servers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn

from claimant.agent import Agent, AgentConfig, FakeDriver
from claimant.store import Store


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


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
