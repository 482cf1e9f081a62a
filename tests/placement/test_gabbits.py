"""Placement's own gabbi files (the APIFixture-only ones) against claimant,
each on an empty store: a fresh SQLite file, or one Cassandra keyspace emptied
before each file (set CLAIMANT_TEST_CASSANDRA=host[,host...])."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.placement import gabbi_support as gs

GABBITS = gs.gabbits_dir(fetch=True)
FILES = gs.api_fixture_files(GABBITS) if GABBITS else []


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("cassandra", id="cassandra", marks=pytest.mark.cassandra),
    ],
)
def server(request: pytest.FixtureRequest) -> Iterator[gs.LiveServer]:
    url = None
    if request.param == "cassandra":
        hosts = request.getfixturevalue("cassandra_hosts")
        url = f"cassandra://{hosts}/claimant_gabbi_{secrets.token_hex(4)}?rf=1"
    with gs.live_server(url) as s:
        try:
            yield s
        finally:
            if url:
                s.app.store.drop()


@pytest.mark.skipif(not FILES, reason="openstack-placement wheel not available (pip download)")
def test_there_are_31_apifixture_files() -> None:
    assert len(FILES) == 31


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_gabbi_file(server: gs.LiveServer, path: Path) -> None:
    result = gs.run_file(server, path)
    assert result.testsRun > 0 or path.name == "confirm-auth.yaml"
    assert not (result.failures or result.errors), gs.describe(result)
