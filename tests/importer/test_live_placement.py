"""The acceptance test of issue 14's data part: a real Placement 16 on
MariaDB, filled through its API with a realistic cloud (fill_placement.py),
imported into each store backend; ``--verify`` then finds no difference
between Placement and claimant serving the import.

Needs a running Placement and its database; skipped otherwise:

    MARIADB_PORT=3308 bash bench/placement_reference/setup.sh STATE 8781 1
    CLAIMANT_TEST_PLACEMENT_URL=http://127.0.0.1:8781 \\
    CLAIMANT_TEST_PLACEMENT_DB='mysql+pymysql://placement:placement@127.0.0.1:3308/placement' \\
        .venv/bin/pytest tests/importer/test_live_placement.py

An empty Placement is filled first (6 hosts); one already filled is used as
it is (a larger cloud: fill_placement.py --hosts N).
"""

from __future__ import annotations

import os

import httpx
import pytest

from claimant.importer.placement import import_placement
from claimant.importer.source import PlacementSource
from claimant.importer.verify import verify
from claimant.store import Store

from .conftest import serving
from .fill_placement import fill, http_caller

URL_ENV, DB_ENV = "CLAIMANT_TEST_PLACEMENT_URL", "CLAIMANT_TEST_PLACEMENT_DB"


@pytest.fixture(scope="module")
def placement() -> tuple[str, str]:
    url, db = os.environ.get(URL_ENV, ""), os.environ.get(DB_ENV, "")
    if not url or not db:
        pytest.skip(f"no Placement to compare with: set {URL_ENV} and {DB_ENV} (see the docstring)")
    pytest.importorskip("pymysql", reason="reading MariaDB needs PyMySQL (extra placement-import)")
    try:
        listing = httpx.get(
            url + "/resource_providers", headers={"x-auth-token": "admin"}, timeout=10
        ).json()
    except (httpx.HTTPError, ValueError) as exc:
        pytest.skip(f"Placement at {url} does not answer: {exc}")
    if not listing.get("resource_providers"):
        fill(http_caller(url), hosts=6)
    return url, db


def test_import_then_verify_finds_no_difference(store: Store, placement: tuple[str, str]) -> None:
    url, db = placement
    source = PlacementSource(db)
    report = import_placement(source, store)
    source.close()
    assert report.providers == report.counts.providers > 0
    with serving(store) as claimant:
        result = verify(url, claimant, sample=100)
    assert result.candidate_queries > 10
    assert result.consumers > 0
    shown = "\n".join(
        f"{d.path} {d.where}: Placement {d.source} / claimant {d.target}"
        for d in result.differences[:40]
    )
    assert result.differences == [], shown
