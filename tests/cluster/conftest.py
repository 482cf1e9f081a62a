"""Fixtures shared by the launcher tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from claimant.cluster import config
from claimant.cluster import node as proc
from claimant.cluster.launcher import Cluster

FAKE = Path(__file__).with_name("fake_cassandra.py")


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fake jar cache, a fake java, and nodes moved to 127.0.2.I."""
    cache = tmp_path / "cache"
    lib = cache / "cassandra-5.0.8" / "lib"
    lib.mkdir(parents=True)
    (lib / "cassandra-all-5.0.8.jar").write_bytes(b"")
    (lib / ".complete").write_text("5.0.8\n")
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    java.chmod(0o755)
    monkeypatch.setenv("CLAIMANT_CASSANDRA_CACHE", str(cache))
    monkeypatch.setenv("CLAIMANT_JAVA", str(java))
    monkeypatch.setattr(config.NodeSpec, "address", property(lambda s: f"127.0.2.{s.index}"))
    monkeypatch.setattr(config.NodeSpec, "jmx_port", property(lambda s: 17000 + 100 * s.index))
    for i in (1, 2, 3):
        if proc.port_in_use(f"127.0.2.{i}", 9042):
            pytest.skip(f"127.0.2.{i}:9042 is busy")
    yield tmp_path
    # Never leave a fake node behind.
    for state_file in tmp_path.glob("**/cluster.json"):
        Cluster(state_file.parent).stop(timeout=5)
