"""Placement's gabbi files whose fixtures pre-load data (the same data is
loaded through claimant's Placement API, tests/placement/placement_fixtures.py)
or set a policy. Marked slow (about three minutes): run with ``-m slow``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.placement import gabbi_support as gs

GABBITS = gs.gabbits_dir(fetch=True)
FILES = gs.preloaded_files(GABBITS) if GABBITS else []


@pytest.fixture(scope="module")
def server() -> Iterator[gs.LiveServer]:
    with gs.live_server() as s:
        yield s


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_gabbi_file(server: gs.LiveServer, path: Path) -> None:
    result = gs.run_file(server, path)
    assert result.testsRun > 0
    assert not (result.failures or result.errors), gs.describe(result)
