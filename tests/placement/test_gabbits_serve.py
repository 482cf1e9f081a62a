"""Placement's 31 APIFixture gabbi files against a real ``claimant serve``
process (noauth2, claimant's default policy), not an app built by the test
harness: issue 9 found ``non admin forbidden`` passing only in the harness,
because ``claimant serve`` made any token a service caller.

Each file starts on an empty store: the test empties the served SQLite file
from this process (``Store.reset``), as the APIFixture empties Placement's
database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from claimant.store import open_store
from tests.api.serve_support import serve
from tests.placement import gabbi_support as gs

GABBITS = gs.gabbits_dir(fetch=True)
FILES = gs.api_fixture_files(GABBITS) if GABBITS else []


class ServedPlacement:
    """What ``gabbi_support.run_file`` needs of a server: a port and reset()."""

    def __init__(self, port: int, store_url: str) -> None:
        self.port = port
        self.store = open_store(store_url)

    def reset(self) -> None:
        self.store.reset()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedPlacement]:
    with serve(tmp_path_factory.mktemp("serve")) as srv:
        s = ServedPlacement(srv.port, srv.store_url)
        try:
            yield s
        finally:
            s.store.close()


@pytest.mark.skipif(not FILES, reason="openstack-placement wheel not available (pip download)")
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_gabbi_file_against_claimant_serve(served: ServedPlacement, path: Path) -> None:
    result = gs.run_file(served, path)  # type: ignore[arg-type]
    assert result.testsRun > 0 or path.name == "confirm-auth.yaml"
    assert not (result.failures or result.errors), gs.describe(result)
