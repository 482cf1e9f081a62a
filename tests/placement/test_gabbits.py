"""Placement's own gabbi files (the APIFixture-only ones) against claimant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.placement import gabbi_support as gs

GABBITS = gs.gabbits_dir(fetch=True)
FILES = gs.api_fixture_files(GABBITS) if GABBITS else []


@pytest.fixture(scope="module")
def server() -> Iterator[gs.LiveServer]:
    with gs.live_server() as s:
        yield s


@pytest.mark.skipif(not FILES, reason="openstack-placement wheel not available (pip download)")
def test_there_are_31_apifixture_files() -> None:
    assert len(FILES) == 31


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_gabbi_file(server: gs.LiveServer, path: Path) -> None:
    result = gs.run_file(server, path)
    assert result.testsRun > 0 or path.name == "confirm-auth.yaml"
    assert not (result.failures or result.errors), gs.describe(result)
