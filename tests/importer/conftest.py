"""Fixtures of the importer tests: a Placement 16 database made by Placement
itself (``data/placement16.sql``, see its header), loaded into a SQLite file;
``store``, every backend (tests/conftest.py)."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from claimant.api import AuthConfig, create_app
from claimant.store import Store

DUMP = Path(__file__).parent / "data" / "placement16.sql"


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


@pytest.fixture
def placement_db(tmp_path: Path) -> Path:
    path = tmp_path / "placement.db"
    conn = sqlite3.connect(path)
    conn.executescript(DUMP.read_text())
    conn.close()
    return path


@pytest.fixture
def placement_url(placement_db: Path) -> str:
    return "sqlite:///" + str(placement_db)


@contextmanager
def serving(st: Store) -> Iterator[str]:
    """claimant's app over ``st`` on a real loopback port (uvicorn in a thread)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(st, auth=AuthConfig.noauth2()),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)
